package httpserver

import "net/http"

// HostPrefix is the cookie name prefix browsers accept only on a Secure
// cookie without Domain and with Path=/ (RFC 6265bis): a sibling subdomain
// or a plain http answer cannot set one.
const HostPrefix = "__Host-"

// Cookie is an HttpOnly cookie of name, scoped to path on a plain http
// issuer (development). On an https issuer (secure) it is Secure, carries
// HostPrefix and is scoped to /, so that no other host can plant it.
func Cookie(name, value, path string, maxAge int, secure bool, sameSite http.SameSite) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: secure, SameSite: sameSite}
	if secure {
		ck.Name, ck.Path = HostPrefix+name, "/"
	}
	return ck
}

// ReadCookie is r's cookie of name under the name Cookie gives it: on an
// https issuer only the prefixed one counts, since a bare one may have been
// planted.
func ReadCookie(r *http.Request, name string, secure bool) (*http.Cookie, error) {
	if secure {
		name = HostPrefix + name
	}
	return r.Cookie(name)
}
