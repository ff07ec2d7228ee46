package connections

import (
	"context"
	"net/http"
	"strings"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// A test login is one a tenant admin starts from the self-serve portal to
// check a connection, active or not yet: it runs the IdP round trip and
// every check of a real login, and then its Result goes to the portal
// instead of the broker, so it never opens a session nor reaches an
// application. The mark travels in the server-side login state (the
// broker's request id), never in anything the browser or the IdP could
// set.

// testRequestPrefix marks the request id of a test login. Broker request
// ids never contain a colon.
const testRequestPrefix = "portal-test:"

// IsTestLogin reports whether requestID (Result.RequestID) belongs to a
// login started with BeginTest.
func IsTestLogin(requestID string) bool { return strings.HasPrefix(requestID, testRequestPrefix) }

// BeginTest sends the browser to conn's IdP for a test login. Unlike a
// broker login it works on a draft or inactive connection whose settings
// are complete; the IdP is asked to authenticate afresh.
func (r *Registry) BeginTest(ctx context.Context, w http.ResponseWriter, req *http.Request, conn store.Connection) error {
	t, err := r.cfg.Types.lookup(conn.Type)
	if err != nil {
		return err
	}
	if m := t.Missing(conn); len(m) > 0 {
		return Invalid(string(conn.Type)+"."+m[0], "cannot test: missing %s", strings.Join(m, ", "))
	}
	cn, err := r.connector(ctx, conn)
	if err != nil {
		return err
	}
	return cn.Begin(ctx, w, req, LoginRequest{RequestID: testRequestPrefix + secrets.NewToken(""), ForceAuthn: true})
}
