package connections

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
)

// randomToken is 256 random bits, URL-safe: RelayState, OIDC state, nonce.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pendingKey is the OnceCache key of a started login.
func pendingKey(kind, token string) string { return "login:" + kind + ":" + token }

func xmlMarshal(v any) ([]byte, error) {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}
