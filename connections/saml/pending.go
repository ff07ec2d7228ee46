package saml

import (
	"time"

	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/internal/secrets"
)

// A started login is remembered server-side, in sessions.OnceCache, under a
// random RelayState that travels through the IdP and is spent when the IdP
// posts the browser back: any broker node can finish a login another
// began, and a RelayState works once. It replaces a cookie: the IdP's POST
// to the ACS is cross-site, so a SameSite=Lax cookie would not come with
// it.

// randomToken is a fresh 256-bit handle (43 URL-safe characters).
func randomToken() string { return secrets.NewToken("") }

// pendingKey is the OnceCache key of a started login.
func pendingKey(relay string) string { return "login:saml:" + relay }

// spentPendingKey keeps a started login's record once its response came
// back, so that the same response posted again is told apart from an
// answer to a login never started here (see samlConnector.replayed).
func spentPendingKey(relay string) string { return "login:saml:spent:" + relay }

// spentPendingTTL is how long a spent login's record is kept: as long
// as its response could still be accepted, which the SAML library stops
// saml.MaxIssueDelay after its IssueInstant (moved by up to the
// connection's clock skew, see libraryLag), with a minute to spare for
// the IdP's and the user's time. A response posted again later fails as
// answering no login (request_mismatch) before its age is read.
func (c *samlConnector) spentPendingTTL() time.Duration {
	return saml.MaxIssueDelay + c.skew + time.Minute
}
