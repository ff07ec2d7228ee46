package saml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// TestRedirectURLMatchesCrewjam: the pooled encoder sends the IdP the same
// AuthnRequest, RelayState and destination query as crewjam's own.
func TestRedirectURLMatchesCrewjam(t *testing.T) {
	sp := &saml.ServiceProvider{EntityID: "https://sp.test/sso/saml/c1",
		AcsURL: url.URL{Scheme: "https", Host: "sp.test", Path: "/sso/saml/c1/acs"}}
	for _, dest := range []string{"https://idp.test/sso", "https://idp.test/app/sso?tenant=a%20b"} {
		authn, err := sp.MakeAuthenticationRequest(dest, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
		if err != nil {
			t.Fatal(err)
		}
		relay := randomToken()
		want, err := authn.Redirect(relay, sp)
		if err != nil {
			t.Fatal(err)
		}
		// Twice, so that the second one runs on a pooled, reset compressor.
		for range 2 {
			got, err := redirectURL(authn, relay)
			if err != nil {
				t.Fatal(err)
			}
			if got.Scheme != want.Scheme || got.Host != want.Host || got.Path != want.Path {
				t.Fatalf("destination %v, want %v", got, want)
			}
			gq, wq := got.Query(), want.Query()
			for _, k := range []string{"RelayState", "tenant", "Signature", "SigAlg"} {
				if gq.Get(k) != wq.Get(k) {
					t.Errorf("%s = %q, want %q", k, gq.Get(k), wq.Get(k))
				}
			}
			if g, w := inflate(t, gq.Get("SAMLRequest")), inflate(t, wq.Get("SAMLRequest")); !bytes.Equal(g, w) {
				t.Fatalf("AuthnRequest\n%s\nwant\n%s", g, w)
			}
		}
	}
}

func inflate(t *testing.T, enc string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
	if err != nil || len(out) == 0 {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// BenchmarkRedirectURL is the HTTP-Redirect encoding of one unsigned
// AuthnRequest: pooled (ours) against crewjam's.
func BenchmarkRedirectURL(b *testing.B) {
	sp := &saml.ServiceProvider{EntityID: "https://sp.test/sso/saml/c1",
		AcsURL: url.URL{Scheme: "https", Host: "sp.test", Path: "/sso/saml/c1/acs"}}
	authn, err := sp.MakeAuthenticationRequest("https://idp.test/sso", saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		b.Fatal(err)
	}
	relay := randomToken()
	b.Run("pooled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := redirectURL(authn, relay); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crewjam", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := authn.Redirect(relay, sp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPostHTMLMatchesCrewjam: the form parsed once renders exactly what
// crewjam's Post renders, signed request or not, with markup-bearing values.
func TestPostHTMLMatchesCrewjam(t *testing.T) {
	key := testKey(0)
	cert := selfSigned(t, key, "sp.test", time.Now().Add(time.Hour))
	for _, signed := range []bool{false, true} {
		sp := &saml.ServiceProvider{EntityID: "https://sp.test/sso/saml/c1", Key: key, Certificate: cert,
			AcsURL: url.URL{Scheme: "https", Host: "sp.test", Path: "/sso/saml/c1/acs"}}
		if signed {
			sp.SignatureMethod = dsig.RSASHA256SignatureMethod
		}
		authn, err := sp.MakeAuthenticationRequest(`https://idp.test/sso?a=1&b="<x>"`, saml.HTTPPostBinding, saml.HTTPPostBinding)
		if err != nil {
			t.Fatal(err)
		}
		for _, relay := range []string{randomToken(), `"><script>`} {
			got, err := postHTML(authn, relay)
			if err != nil {
				t.Fatal(err)
			}
			if want := authn.Post(relay); !bytes.Equal(got, want) {
				t.Fatalf("signed %v:\n%s\nwant\n%s", signed, got, want)
			}
		}
	}
}
