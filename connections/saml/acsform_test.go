package saml

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/connections"
)

// readACSFormStdlib is the ACS form reader as it was, on r.ParseForm: the
// reference readACSForm must agree with.
func readACSFormStdlib(r *http.Request) (xmlBytes []byte, relay string, err error) {
	if r.Method != http.MethodPost {
		return nil, "", fmt.Errorf("%w: the ACS accepts only the HTTP-POST binding", connections.ErrMalformed)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, MaxACSBodyBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", fmt.Errorf("%w: ACS body larger than %d bytes", connections.ErrMalformed, MaxACSBodyBytes)
		}
		return nil, "", fmt.Errorf("%w: ACS form: %v", connections.ErrMalformed, err)
	}
	if r.PostForm.Has("SAMLart") || r.PostForm.Has("Signature") || r.PostForm.Has("SigAlg") {
		return nil, "", fmt.Errorf("%w: only the HTTP-POST binding is accepted (no Artifact or SimpleSign)", connections.ErrMalformed)
	}
	if len(r.PostForm["SAMLResponse"]) != 1 || len(r.PostForm["RelayState"]) > 1 {
		return nil, "", fmt.Errorf("%w: expected exactly one SAMLResponse", connections.ErrMalformed)
	}
	enc := r.PostForm.Get("SAMLResponse")
	if strings.ContainsAny(enc, " \t") {
		enc = strings.Join(strings.Fields(enc), "")
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, "", fmt.Errorf("%w: SAMLResponse is not base64", connections.ErrMalformed)
	}
	return b, r.PostForm.Get("RelayState"), nil
}

// compareACSForm runs both readers on the same request and fails when they
// differ: in what they return, in whether they refuse, and in the refusal's
// message (except the detail of a form syntax error, which is ParseForm's
// own wording).
func compareACSForm(t *testing.T, method, contentType, query string, body []byte) {
	t.Helper()
	req := func() *http.Request {
		r := httptest.NewRequest(method, "/sso/saml/c/acs?"+query, bytes.NewReader(body))
		if query == "" {
			r.URL.RawQuery = ""
		}
		if contentType != "-" {
			r.Header.Set("Content-Type", contentType)
		}
		return r
	}
	gotXML, gotRelay, gotErr := readACSForm(req())
	wantXML, wantRelay, wantErr := readACSFormStdlib(req())
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %.200q: readACSForm error = %v, ParseForm's = %v", body, gotErr, wantErr)
	}
	if gotErr != nil {
		g, w := gotErr.Error(), wantErr.Error()
		if strings.Contains(w, "ACS form:") {
			g, _, _ = strings.Cut(g, "ACS form:")
			w, _, _ = strings.Cut(w, "ACS form:")
		}
		if g != w || !errors.Is(gotErr, connections.ErrMalformed) {
			t.Fatalf("body %.200q: readACSForm error = %q, ParseForm's = %q", body, gotErr, wantErr)
		}
		return
	}
	if !bytes.Equal(gotXML, wantXML) || gotRelay != wantRelay {
		t.Fatalf("body %.200q: readACSForm = %q, %q; ParseForm's = %q, %q", body, gotXML, gotRelay, wantXML, wantRelay)
	}
}

func TestReadACSFormMatchesParseForm(t *testing.T) {
	resp := base64.StdEncoding.EncodeToString([]byte("<samlp:Response>\xff\xfe?>/+</samlp:Response>"))
	esc := url.QueryEscape(resp)
	big := strings.Repeat("a", MaxACSBodyBytes)
	tests := []struct {
		name, method, contentType, query, body string
	}{
		{"a login", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + "&RelayState=abc"},
		{"relay first, charset", "POST", "application/x-www-form-urlencoded; charset=utf-8", "", "RelayState=a%20b+c&SAMLResponse=" + esc},
		{"no relay", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc},
		{"unescaped base64", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + resp},
		{"wrapped with CRLF", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + url.QueryEscape(resp[:8]+"\r\n"+resp[8:])},
		{"wrapped with spaces and tabs", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + url.QueryEscape(resp[:8]+" \t"+resp[8:]+"\v")},
		{"plus as space", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + strings.ReplaceAll(esc, "%2B", "+")},
		{"empty pairs", "POST", "application/x-www-form-urlencoded", "", "&&SAMLResponse=" + esc + "&&RelayState=&"},
		{"other fields", "POST", "application/x-www-form-urlencoded", "", "x=1&SAMLResponse=" + esc + "&y"},
		{"two responses", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + "&SAMLResponse=" + esc},
		{"two relays", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + "&RelayState=a&RelayState=b"},
		{"no response", "POST", "application/x-www-form-urlencoded", "", "RelayState=a"},
		{"empty response", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=&RelayState=a"},
		{"escaped key", "POST", "application/x-www-form-urlencoded", "", "SAML%52esponse=" + esc},
		{"artifact", "POST", "application/x-www-form-urlencoded", "", "SAMLart=x&SAMLResponse=" + esc},
		{"SimpleSign", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + "&Signature=&SigAlg=rsa"},
		{"artifact with a bad escape", "POST", "application/x-www-form-urlencoded", "", "SAMLart=%zz&SAMLResponse=" + esc},
		{"bad escape in the response", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + "%4"},
		{"bad escape in the relay", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + "&RelayState=%g0"},
		{"bad escape in another key", "POST", "application/x-www-form-urlencoded", "", "%=1&SAMLResponse=" + esc},
		{"bad escape in another value", "POST", "application/x-www-form-urlencoded", "", "a=%%&SAMLResponse=" + esc},
		{"semicolon", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + ";RelayState=a"},
		{"not base64", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=%21%21%21"},
		{"too many parameters", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc + strings.Repeat("&", maxFormParams)},
		{"too large", "POST", "application/x-www-form-urlencoded", "", "SAMLResponse=" + big},
		{"bad URL query", "POST", "application/x-www-form-urlencoded", "a=%zz", "SAMLResponse=" + esc},
		{"good URL query", "POST", "application/x-www-form-urlencoded", "SAMLResponse=x&SAMLart=y", "SAMLResponse=" + esc},
		{"multipart", "POST", "multipart/form-data; boundary=x", "", "SAMLResponse=" + esc},
		{"text/plain", "POST", "text/plain", "", "SAMLResponse=" + esc},
		{"no content type", "POST", "-", "", "SAMLResponse=" + esc},
		{"bad content type", "POST", "application/x-www-form-urlencoded; =", "", "SAMLResponse=" + esc},
		{"GET", "GET", "application/x-www-form-urlencoded", "", "SAMLResponse=" + esc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compareACSForm(t, tt.method, tt.contentType, tt.query, []byte(tt.body))
		})
	}
}

// FuzzReadACSForm holds readACSForm to ParseForm's reading on arbitrary
// bodies.
func FuzzReadACSForm(f *testing.F) {
	esc := url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("<a>b</a>")))
	f.Add([]byte("SAMLResponse=" + esc + "&RelayState=x"))
	f.Add([]byte("SAMLResponse=" + esc + "+%20&SAMLart=&%41=%"))
	f.Add([]byte("RelayState=a;b&SAMLResponse=" + esc))
	f.Fuzz(func(t *testing.T, body []byte) {
		compareACSForm(t, "POST", "application/x-www-form-urlencoded", "", body)
	})
}

func BenchmarkReadACSForm(b *testing.B) {
	raw := bytes.Repeat([]byte("<saml:Attribute Name=\"groups\"><saml:AttributeValue>x/y+z</saml:AttributeValue></saml:Attribute>"), 80)
	body := "SAMLResponse=" + url.QueryEscape(base64.StdEncoding.EncodeToString(raw)) + "&RelayState=0123456789abcdef0123456789abcdef"
	for _, r := range []struct {
		name string
		read func(*http.Request) ([]byte, string, error)
	}{{"ParseForm", readACSFormStdlib}, {"readACSForm", readACSForm}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/acs", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if _, _, err := r.read(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
