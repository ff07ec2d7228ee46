package connections

import (
	"strings"
	"unicode"
)

// OneLine renders text an IdP wrote (an error_description, a SAML
// StatusMessage) or any error text for the tenant admin as one line: runs
// of white space and control characters become one space (Entra's
// error_description carries "\r\nTrace ID: …" lines), invalid UTF-8 is
// dropped, and it is cut to max bytes on a character boundary, the cut
// marked with "…".
func OneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, ""), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
