package store

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// domainProfile maps a domain as typed (any case, full-width forms,
// Unicode) to its ASCII form and checks each label is a valid host name
// label of a valid length (UTS #46, non-transitional, as browsers do).
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// NormalizeDomain returns the one form in which email domains are stored,
// looked up and compared: ASCII (an internationalised domain becomes its
// punycode "xn--" form), lower case, without a trailing dot. It returns ""
// for what cannot be a domain name, which matches nothing. Every place
// that handles a domain (operator API, routing, SSO profiles, SCIM) goes
// through it, so that "Bücher.example", "xn--bcher-kva.example" and
// "bücher.example." are one domain everywhere.
func NormalizeDomain(domain string) string {
	d := strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if d == "" || len(d) > 1024 || !utf8.ValidString(d) {
		return ""
	}
	if isLowerASCIIHost(d) {
		// The common case (already stored form) skips the mapping but not
		// the label checks.
		if _, err := domainProfile.ToASCII(d); err != nil {
			return ""
		}
		return d
	}
	a, err := domainProfile.ToASCII(d)
	if err != nil {
		return ""
	}
	a = strings.ToLower(a)
	// The result must come back unchanged through the same mapping (in a
	// URL, a login hint); a few code points map to labels that do not.
	if again, err := domainProfile.ToASCII(a); err != nil || again != a {
		return ""
	}
	return a
}

// EmailDomain returns the normalised domain of an email address: the part
// after the last @, through NormalizeDomain. It reports false when there
// is none, or it is not a dotted domain name, or the local part holds an
// @ outside quotes: "ceo@other.example@acme.com" is no address, and an
// application splitting it at the first @ would read another domain than
// the one checked here.
func EmailDomain(email string) (string, bool) {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || len(email) > 320 {
		return "", false
	}
	if local := email[:at]; strings.IndexByte(local, '@') >= 0 && (len(local) < 2 || local[0] != '"' || local[len(local)-1] != '"') {
		return "", false
	}
	d := NormalizeDomain(email[at+1:])
	return d, d != "" && strings.Contains(d, ".")
}

func isLowerASCIIHost(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}
