package scim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkJSONText refuses text that Go's JSON decoder would silently change
// or that a database refuses: invalid UTF-8 and lone UTF-16 surrogates
// (\ud800) become U+FFFD when decoded, and NUL (raw or \u0000) is refused
// by PostgreSQL's text type while SQLite keeps it. All three are answered
// 400 invalidValue, the same on every backend, before anything is stored.
func checkJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return badValue("the body is not valid UTF-8")
	}
	if bytes.IndexByte(body, 0) >= 0 {
		return badValue("strings must not contain NUL characters")
	}
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case !inString:
			if c == '"' {
				inString = true
			}
		case c == '"':
			inString = false
		case c == '\\' && i+1 < len(body):
			i++
			if body[i] != 'u' {
				continue
			}
			r, ok := hex4(body, i+1)
			if !ok {
				continue // the decoder reports the malformed escape
			}
			i += 4
			switch {
			case r == 0:
				return badValue("strings must not contain NUL characters")
			case r >= 0xDC00 && r <= 0xDFFF:
				return badValue("strings must not contain unpaired UTF-16 surrogates")
			case r >= 0xD800 && r <= 0xDBFF:
				// A high surrogate must be followed by a low one.
				if i+2 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
					if lo, ok := hex4(body, i+3); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						i += 6
						continue
					}
				}
				return badValue("strings must not contain unpaired UTF-16 surrogates")
			}
		}
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape starting at b[i].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// clientSchemas are schema URIs real clients put in "schemas" beside the
// core one, with no attributes of their own: Microsoft Entra ID's group
// and user bodies carry its ADSCIM URI.
var clientSchemas = []string{
	"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
	"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User",
}

// checkSchemas requires the resource's "schemas" to list its core schema
// and, beside it, only extensions: one the server publishes (known), one a
// real client is known to send (clientSchemas), or any other URN, a
// client's own extension, whether or not this body carries attributes of
// it. A client lists the extensions its mapping has, and a user with none
// of their attributes set (or a PUT that clears them, sending null) was
// refused as an "unknown schema" at every sync. Another resource's core
// schema and SCIM's message URNs are not extensions.
func checkSchemas(d doc, core string, known ...string) error {
	v, ok := d["schemas"]
	if !ok || v == nil {
		return badValue("schemas is required and must include %s", core)
	}
	list, ok := v.([]any)
	if !ok {
		return badSyntax("schemas must be an array of strings")
	}
	hasCore := false
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return badSyntax("schemas must be an array of strings")
		}
		switch {
		case strings.EqualFold(s, core):
			hasCore = true
		case containsFold(known, s), containsFold(clientSchemas, s):
		case isExtensionURN(s):
		default:
			return badValue("unknown schema %q", s)
		}
	}
	if !hasCore {
		return badValue("schemas must include %s", core)
	}
	return nil
}

// isExtensionURN: s may name a client's own schema extension: a URN, not
// one of SCIM's core resource schemas or API messages.
func isExtensionURN(s string) bool {
	ls := strings.ToLower(s)
	if !strings.HasPrefix(ls, "urn:") || len(ls) == len("urn:") || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	for _, reserved := range []string{"urn:ietf:params:scim:schemas:core:", "urn:ietf:params:scim:api:"} {
		if strings.HasPrefix(ls, reserved) {
			return false
		}
	}
	return true
}

// userStrings are the core User attributes of type string (RFC 7643 §4.1).
var userStrings = []string{"externalId", "userName", "displayName", "nickName", "profileUrl", "title", "userType",
	"preferredLanguage", "locale", "timezone", "password"}

// userMultiValued are the core User attributes that are arrays of
// complex values (RFC 7643 §4.1.2).
var userMultiValued = []string{"emails", "phoneNumbers", "ims", "photos", "addresses", "entitlements", "roles", "x509Certificates"}

// checkUserTypes refuses a User whose core or enterprise attributes have
// the wrong JSON type ("userName": 12345, "name": "x"), rather than
// storing a number as text or a value no reader expects, and makes every
// multi-valued attribute's primary a boolean. Names are canonical (see
// canonicalize).
func checkUserTypes(d doc) error {
	for _, name := range userStrings {
		if err := wantString(d, name, name); err != nil {
			return err
		}
	}
	if v, ok := d["name"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return badValue("name must be an object")
		}
		for k := range m {
			if err := wantString(m, k, "name."+k); err != nil {
				return err
			}
		}
	}
	for _, name := range userMultiValued {
		v, ok := d[name]
		if !ok || v == nil {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			return badValue("%s must be an array", name)
		}
		for i, x := range list {
			m, ok := x.(map[string]any)
			if !ok {
				return badValue("%s[%d] must be an object", name, i)
			}
			for k, sub := range m {
				if k == "primary" {
					b, ok := boolValue(sub)
					if !ok && sub != nil {
						return badValue("%s[%d].primary must be a boolean", name, i)
					}
					if ok {
						m[k] = b // Entra's "True" is stored (and returned) as true
					}
					continue
				}
				if err := wantString(m, k, name+"."+k); err != nil {
					return err
				}
			}
		}
	}
	if v, ok := d[SchemaEnterpriseUser]; ok && v != nil {
		ext, ok := v.(map[string]any)
		if !ok {
			return badValue("%s must be an object", SchemaEnterpriseUser)
		}
		for k, x := range ext {
			if k == "manager" {
				switch x.(type) {
				case nil, string, map[string]any:
				default:
					return badValue("manager must be an object")
				}
				continue
			}
			if err := wantString(ext, k, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// wantString checks that m[key], if present and not null, is a string.
func wantString(m map[string]any, key, name string) error {
	switch m[key].(type) {
	case nil, string:
		return nil
	}
	return badValue("%s must be a string", name)
}

// maxString bounds every string value of a resource, in bytes. It is far
// above any profile text a directory legitimately sends (names, titles,
// addresses run to tens or hundreds of bytes; userName, externalId and
// group names are held to 256 anyway) and far below the body limit: a
// 100 KB displayName would otherwise be stored and then copied into
// every event about the user and every operator API answer.
const maxString = 4096

// maxNumberLen bounds the text of a number: a double needs 24 characters,
// an integer it holds 309 digits.
const maxNumberLen = 400

// numberInRange reports whether n is a number every backend keeps: within
// what an IEEE double holds (RFC 8259 §6's advice for numbers meant to be
// interoperable), written in at most maxNumberLen characters with an
// exponent within ±1000. Beyond those PostgreSQL's jsonb refuses some
// (1e1000000, 1e-1000000 and 0e-9999 overflow its numeric), which would
// fail the write with a 500. Digits are kept as sent:
// 12345678901234567890 is in range.
func numberInRange(n json.Number) bool {
	s := strings.ToLower(string(n))
	if len(s) > maxNumberLen {
		return false
	}
	mantissa, exp, hasExp := strings.Cut(s, "e")
	if hasExp {
		if e, err := strconv.Atoi(exp); err != nil || e < -1000 || e > 1000 {
			return false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false
	}
	// A zero is zero; a non-zero number too small for a double is not.
	return f != 0 || strings.Trim(mantissa, "-+0.") == ""
}

// checkStrings refuses, naming the attribute, a string longer than
// maxString anywhere in v, the value of the attribute name ("" for a
// whole resource or a PATCH value without path). Certificates
// (x509Certificates.value, base64 DER) are exempt: a real one can exceed
// it, and the body limit still bounds it.
func checkStrings(v any, name string) error {
	return checkStringsIn(v, name, strings.HasPrefix(strings.ToLower(name), "urn:") && !strings.Contains(name[strings.LastIndex(name, ":"):], "."))
}

// checkStringsIn is checkStrings; extension says that name is a schema
// URN, whose attributes are named URN:attribute.
func checkStringsIn(v any, name string, extension bool) error {
	if strings.HasPrefix(strings.ToLower(name), "x509certificates") {
		return nil
	}
	switch v := v.(type) {
	case string:
		if len(v) > maxString {
			return badValue("%s is longer than %d bytes", orBody(name), maxString)
		}
	case json.Number:
		if !numberInRange(v) {
			return badValue("%s is a number out of range", orBody(name))
		}
	case map[string]any:
		for k, x := range v {
			sub := k
			switch {
			case name == "":
			case extension:
				sub = name + ":" + k
			default:
				sub = name + "." + k
			}
			if err := checkStringsIn(x, sub, name == "" && strings.HasPrefix(strings.ToLower(k), "urn:")); err != nil {
				return err
			}
		}
	case []any:
		for _, x := range v {
			if err := checkStringsIn(x, name, false); err != nil {
				return err
			}
		}
	}
	return nil
}
