// Package portal is the self-serve admin portal: the pages a tenant's IT
// administrator reaches through a one-time link the SaaS vendor sends, to
// set up SSO, directory sync and domain verification alone, and to read
// the tenant's sign-in and audit logs.
//
// A link (POST /api/v1/portal_links, see CreateLink) is single-use and
// must be opened within five minutes; opening it starts a portal session
// of one hour, bound to the link's tenant and intent, in an HttpOnly
// cookie scoped to /portal. Every page takes its tenant from that session
// and nothing else: another tenant's ids in a URL are 404. Pages carry a
// strict Content-Security-Policy (no inline script or style), and every
// state-changing form carries a CSRF token derived from the session's
// secret; a POST without it is refused with 403.
//
// Test logins ("Test connection") go through the connection's real IdP and
// every check of a real login, then come back here (Complete) instead of
// reaching the broker: they open no session and reach no application.
package portal
