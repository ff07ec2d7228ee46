package saml

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"

	"github.com/idbroker/idbroker/connections"
)

// maxFormParams is net/url's default bound on the parameters of one query
// (GODEBUG urlmaxqueryparams): a form with more is refused, as ParseForm
// would refuse it.
const maxFormParams = 10000

// readACSForm reads SAMLResponse and RelayState from a capped POST body.
// The Artifact and SimpleSign bindings are not accepted.
//
// It accepts and refuses exactly what r.ParseForm and url.ParseQuery
// would (held by TestReadACSFormMatchesParseForm and its fuzz target), but
// decodes the response's percent-escaped base64, the one large value of
// every login, straight into bytes: ParseForm's string building was about
// 1 % of a login's CPU.
func readACSForm(r *http.Request) (xmlBytes []byte, relay string, err error) {
	if r.Method != http.MethodPost {
		return nil, "", fmt.Errorf("%w: the ACS accepts only the HTTP-POST binding", connections.ErrMalformed)
	}
	body, err := readFormBody(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", fmt.Errorf("%w: ACS body larger than %d bytes", connections.ErrMalformed, MaxACSBodyBytes)
		}
		return nil, "", fmt.Errorf("%w: ACS form: %v", connections.ErrMalformed, err)
	}
	f, err := parseACSForm(body)
	if err == nil && r.URL.RawQuery != "" {
		// ParseForm refuses a request whose URL query is malformed too.
		_, err = url.ParseQuery(r.URL.RawQuery)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: ACS form: %v", connections.ErrMalformed, err)
	}
	if f.otherBinding {
		return nil, "", fmt.Errorf("%w: only the HTTP-POST binding is accepted (no Artifact or SimpleSign)", connections.ErrMalformed)
	}
	if f.responses != 1 || f.relays > 1 {
		return nil, "", fmt.Errorf("%w: expected exactly one SAMLResponse", connections.ErrMalformed)
	}
	enc := f.response
	if bytes.ContainsAny(enc, " \t") {
		// DecodeString skips CR and LF itself; IdPs that wrap with other
		// white space are rare enough to pay for the copy.
		enc = bytes.Join(bytes.Fields(enc), nil)
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(b, enc)
	if err != nil {
		return nil, "", fmt.Errorf("%w: SAMLResponse is not base64", connections.ErrMalformed)
	}
	return b[:n], f.relay, nil
}

// readFormBody returns the body of an application/x-www-form-urlencoded
// request, capped at MaxACSBodyBytes, and nil for any other media type
// (whose fields ParseForm leaves unread).
func readFormBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, errors.New("missing form body")
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	ct, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, err
	}
	if ct != "application/x-www-form-urlencoded" {
		return nil, nil
	}
	body := http.MaxBytesReader(nil, r.Body, MaxACSBodyBytes)
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= MaxACSBodyBytes {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(body)
	return buf.Bytes(), err
}

// acsForm is what the ACS reads of its form.
type acsForm struct {
	response          []byte // the first SAMLResponse, unescaped
	relay             string // the first RelayState
	responses, relays int
	otherBinding      bool // SAMLart, Signature or SigAlg present
}

// parseACSForm parses body as url.ParseQuery does, with the same errors
// (a malformed escape in any key or value, a semicolon, too many
// parameters), keeping only the fields the ACS reads.
func parseACSForm(body []byte) (acsForm, error) {
	var f acsForm
	if bytes.Count(body, []byte("&"))+1 > maxFormParams {
		return f, errors.New("number of URL query parameters exceeded limit")
	}
	var err error
	for len(body) > 0 {
		var pair []byte
		pair, body, _ = bytes.Cut(body, []byte("&"))
		if bytes.IndexByte(pair, ';') >= 0 {
			err = errors.New("invalid semicolon separator in query")
			continue
		}
		if len(pair) == 0 {
			continue
		}
		k, v, _ := bytes.Cut(pair, []byte("="))
		key, ok := unescapeForm(make([]byte, len(k)), k)
		if !ok {
			if err == nil {
				err = errors.New("invalid URL escape in a form key")
			}
			continue
		}
		switch string(key) {
		case "SAMLResponse":
			// In place: the body is ours, and this value is a login's
			// largest.
			val, ok := unescapeForm(v, v)
			if !ok {
				break
			}
			if f.responses == 0 {
				f.response = val
			}
			f.responses++
			continue
		case "RelayState":
			val, ok := unescapeForm(make([]byte, len(v)), v)
			if !ok {
				break
			}
			if f.relays == 0 {
				f.relay = string(val)
			}
			f.relays++
			continue
		case "SAMLart", "Signature", "SigAlg":
			if !validEscapes(v) {
				break
			}
			f.otherBinding = true
			continue
		default:
			if validEscapes(v) {
				continue
			}
		}
		if err == nil {
			err = errors.New("invalid URL escape in a form value")
		}
	}
	return f, err
}

// unescapeForm decodes s as a form field into dst, which is at least as
// long as s and may be s itself (the decoding never writes ahead of what it
// reads): "+" is a space, "%XX" the byte XX. ok is false when a "%" is not
// followed by two hex digits, where url.QueryUnescape fails.
func unescapeForm(dst, s []byte) ([]byte, bool) {
	j := 0
	for i := 0; i < len(s); j++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return nil, false
			}
			dst[j] = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 3
		case '+':
			dst[j] = ' '
			i++
		default:
			dst[j] = c
			i++
		}
	}
	return dst[:j], true
}

// validEscapes reports whether every "%" in s starts a two-hex-digit escape.
func validEscapes(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
