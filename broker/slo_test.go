package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestSLOMeasurements signs in through the broker, failing once, and
// redeems a code and a refresh token, the second time refused: each answer
// is measured for the tenant as a sign-in completion or a token answer,
// with its outcome, and another tenant's figures stay empty.
func TestSLOMeasurements(t *testing.T) {
	st := storetest.SQLite(t)
	rec, err := slo.New(slo.Config{Store: st, Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	mem := sessions.NewMemory()
	n := newNodeServer(t, st, mem, mem, "", httpserver.Config{}, func(c *broker.Config) { c.SLO = rec })
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	other := n.tenant("Other", "other.test", alice("other.test"))
	a := n.app(store.Application{})

	n.idp.mu.Lock()
	n.idp.fail[tn.ConnID] = errors.New("signature invalid")
	n.idp.mu.Unlock()
	if resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("failed sign-in: status %d", resp.StatusCode)
	}
	n.idp.mu.Lock()
	delete(n.idp.fail, tn.ConnID)
	n.idp.mu.Unlock()

	tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	ctx := context.Background()
	refreshed, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v", err)
	}
	// The spent refresh token again: refused, and still the tenant's.
	if _, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a spent refresh token was accepted")
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	tenant, err := st.Tenant(store.WithTenant(ctx, tn.ID))
	if err != nil {
		t.Fatal(err)
	}
	got, err := slo.Report(ctx, st, tenant, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in, tk := got.SignIn.Windows["1h"], got.Token.Windows["1h"]
	if in.Requests != 2 || in.Succeeded != 1 || in.ClientErrors != 1 || in.ServerErrors != 0 {
		t.Errorf("sign-ins = %+v, want one succeeded and one refused", in)
	}
	if tk.Requests != 3 || tk.Succeeded != 2 || tk.ClientErrors != 1 || tk.ServerErrors != 0 {
		t.Errorf("tokens = %+v, want two issued and one refused", tk)
	}
	o, err := slo.Report(ctx, st, store.Tenant{ID: other.ID}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if o.SignIn.Windows["30d"].Requests != 0 || o.Token.Windows["30d"].Requests != 0 {
		t.Errorf("another tenant's figures: %+v", o)
	}
}
