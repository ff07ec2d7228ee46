// Package console is the operator console at {issuer}/console: the pages
// the SaaS vendor's support and operations staff use to find a tenant, see
// the health of its connections and directories, pause or resume it, hand
// its IT admin a portal link, read the event and audit streams and
// redeliver webhook deliveries. Its Support page answers a support call's
// first questions across tenants: the failed sign-in behind an error
// page's reference, the users with an email (their sessions ended from
// there), the tenant that verified a domain.
//
// Operators are people, not API keys. `idbroker operator create` makes a
// pending operator and a one-time enrolment link; enrolment sets an
// argon2id password and a TOTP authenticator (RFC 6238, 30 s, 6 digits)
// and hands out ten single-use recovery codes, stored hashed. Sign-in
// takes email, password and a code; a code's time step is recorded
// atomically in the database, so a code is accepted once even across
// nodes. Repeated failures lock the operator out with a growing delay.
//
// Every page sends a strict Content-Security-Policy (scripts and styles
// from 'self' only, frame-ancestors 'none'); every form carries a CSRF
// token (field csrf_token, as in the portal) and a POST without it is 403.
// The pages share the portal's head, skip link, footer and base stylesheet
// (package web) and keep their own header, navigation and console.css. Every action is audited with the
// operator as actor: in the tenant's own audit chain when it concerns a
// tenant, else in the operators' audit trail.
package console
