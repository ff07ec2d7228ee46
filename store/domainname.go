package store

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
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
	d := strings.TrimSpace(domain)
	if d == "" || len(d) > 1024 || !utf8.ValidString(d) {
		return ""
	}
	var a string
	if isLowerASCIIHost(d) {
		// The common case (already stored form) skips the mapping but not
		// the label checks.
		if _, err := domainProfile.ToASCII(d); err != nil {
			return ""
		}
		a = d
	} else {
		x, err := domainProfile.ToASCII(d)
		if err != nil {
			return ""
		}
		a = strings.ToLower(x)
		// The result must come back unchanged through the same mapping
		// (in a URL, a login hint); a few code points map to labels that
		// do not.
		if again, err := domainProfile.ToASCII(a); err != nil || again != a {
			return ""
		}
	}
	// One root dot at the end, typed as "." or as what UTS #46 maps to it
	// (the ideographic "。", the full-width "．"), names the same domain;
	// a second is an empty label.
	a = strings.TrimSuffix(a, ".")
	if a == "" || strings.HasSuffix(a, ".") {
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

// NormalizeEmail returns the form in which an email address is stored and
// compared: trimmed, in lower case and Unicode NFC, its domain mapped as
// NormalizeDomain maps it (full-width forms, a trailing dot) and written
// in Unicode, as IdPs and directories mostly send it, so that the email
// claim of those users does not change.
// "Alice@Bücher.example.", "alice@xn--bcher-kva.example" and
// "alice@ｂücher.example" are then one address whether an IdP or a
// directory sends it, and one the database's lower() has nothing left to
// fold in. What has no valid domain
// (EmailDomain) is only trimmed.
func NormalizeEmail(email string) string {
	e := strings.TrimSpace(email)
	d, ok := EmailDomain(e)
	if !ok {
		return e
	}
	// NFC, as RFC 6532 §3.1 asks of addresses (and UTS #46 does of the
	// domain): "josé" typed on one system and decomposed on another is
	// one local part.
	return strings.ToLower(norm.NFC.String(e[:strings.LastIndexByte(e, '@')])) + "@" + unicodeDomain(d)
}

// BareAddress is the address in s when s wraps one the ways people and
// systems do: surrounding space, a "mailto:" scheme (any case), angle
// brackets with or without a display name before them ("Alice Lee
// <alice@acme.com>", as a mail client copies an address). Anything else
// comes back trimmed, for the caller's own checks. Only the bare address
// goes on, so a display name ("bob@other.example <alice@acme.com>") is
// never read as an address by anyone downstream.
func BareAddress(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, ">") {
		if i := strings.LastIndexByte(s, '<'); i >= 0 && !strings.ContainsAny(s[:i], "<>") {
			s = strings.TrimSpace(s[i+1 : len(s)-1])
		}
	}
	if len(s) > len("mailto:") && strings.EqualFold(s[:len("mailto:")], "mailto:") {
		s = strings.TrimSpace(s[len("mailto:"):])
	}
	return s
}

// EmailForms is the normalised address (NormalizeEmail) and, when its
// domain is internationalised, the address with the domain in ASCII, as
// rows written before addresses were normalised may hold it: a lookup by
// email matches either.
func EmailForms(email string) []string {
	n := NormalizeEmail(email)
	d, ok := EmailDomain(n)
	if !ok {
		return []string{n}
	}
	at := strings.LastIndexByte(n, '@')
	if ascii := n[:at+1] + d; ascii != n {
		return []string{n, ascii}
	}
	return []string{n}
}

// SameEmail reports whether a and b are one address once normalised.
func SameEmail(a, b string) bool {
	return NormalizeEmail(a) == NormalizeEmail(b)
}

// unicodeDomain is a normalised (ASCII) domain with its punycode labels
// decoded, as people write it.
func unicodeDomain(ascii string) string {
	if !strings.Contains(ascii, "xn--") {
		return ascii
	}
	u, err := domainProfile.ToUnicode(ascii)
	if err != nil {
		return ascii
	}
	return u
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
