// Package safehttp is the one HTTP client idbroker uses to reach URLs that a
// tenant or an operator typed in: IdP metadata URLs, OIDC discovery and JWKS,
// webhooks and back-channel logout endpoints.
//
// Such URLs are an SSRF vector: "https://idp.example.com" may resolve to
// 127.0.0.1, 10.0.0.5 or the cloud metadata service. The client therefore
// checks the IP address actually dialed — after DNS resolution, inside
// net.Dialer.Control — so neither a hostile DNS answer nor a rebinding
// between two lookups nor a redirect can reach a forbidden network. It also
// limits redirects, total time and response size.
//
//	c := safehttp.NewClient(safehttp.Options{Timeout: 10 * time.Second})
//	resp, err := c.Get(url)
//	...
//	body, err := safehttp.ReadBody(resp, 1<<20)
//
// Options.AllowPrivate lifts the address rule for self-hosted IdPs and tests
// (IDBROKER_ALLOW_PRIVATE_NETWORKS=true, contract section 7).
package safehttp
