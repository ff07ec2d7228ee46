package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// TestResetOperator: an enrolled operator who lost their authenticator (or
// whose credentials are due for a change) is reset: their open console
// session, password, authenticator and recovery codes stop at once; the new
// link enrols them again with new ones, which sign in; the reset is in the
// operators' trail; pending, disabled and unknown operators are refused,
// and the reset touches no other operator.
func TestResetOperator(t *testing.T) {
	h := start(t, "")
	ctx := context.Background()
	op := h.enrol(t, "reset@vendor.example", "the old long password")
	other := h.enrol(t, "other@vendor.example", "another long password")
	resp, _ := h.signInAs(t, op.email, op.password, h.code(t, op.secret))
	if !opensSession(resp) {
		t.Fatal("sign-in before the reset failed")
	}
	session := cookieNamed(resp, console.SessionCookie).Value
	h.clock.Advance(30 * time.Second)
	otherResp, _ := h.signInAs(t, other.email, other.password, h.code(t, other.secret))
	if !opensSession(otherResp) {
		t.Fatal("other operator's sign-in failed")
	}
	otherSession := cookieNamed(otherResp, console.SessionCookie).Value

	link, got, err := console.ResetOperator(ctx, h.db, h.url, "RESET@vendor.example", "cli")
	if err != nil || got.Status != store.OperatorPending || !strings.HasPrefix(link, h.url+"/console/enrol/") {
		t.Fatalf("reset = %q %+v %v", link, got, err)
	}
	if resp, _ := h.get(t, session, "/console/tenants"); resp.StatusCode == http.StatusOK {
		t.Error("the session opened before the reset still works")
	}
	if resp, _ := h.get(t, otherSession, "/console/tenants"); resp.StatusCode != http.StatusOK {
		t.Errorf("the reset ended another operator's session: %d", resp.StatusCode)
	}
	h.clock.Advance(30 * time.Second)
	if resp, _ := h.signInAs(t, op.email, op.password, h.code(t, op.secret)); opensSession(resp) {
		t.Error("the old password and authenticator still sign in")
	}
	if resp, _ := h.signInAs(t, op.email, op.password, op.recovery[0]); opensSession(resp) {
		t.Error("an old recovery code still signs in")
	}

	// The new link: a new authenticator key and password, which sign in.
	f := h.openForm(t, link)
	m := totpSecretShown.FindStringSubmatch(f.body)
	if m == nil || m[1] == op.secret {
		t.Fatalf("the new link shows no new authenticator key:\n%s", f.body)
	}
	h.clock.Advance(30 * time.Second)
	if resp, body := f.post(t, url.Values{"password": {"the new long password"}, "password2": {"the new long password"},
		"code": {h.code(t, m[1])}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("enrolling again = %d\n%s", resp.StatusCode, body)
	}
	h.clock.Advance(30 * time.Second)
	if resp, _ := h.signInAs(t, op.email, "the new long password", h.code(t, m[1])); !opensSession(resp) {
		t.Error("the new credentials do not sign in")
	}

	rows, _, err := h.db.OperatorAudit(ctx, "operator.reset", storePage())
	if err != nil || len(rows) != 1 || rows[0].Resource.ID != got.ID || rows[0].Actor.ID != "cli" {
		t.Fatalf("reset audit: %+v %v", rows, err)
	}
	if _, _, err := console.CreateOperator(ctx, h.db, h.url, "pending@vendor.example", "cli"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := console.ResetOperator(ctx, h.db, h.url, "pending@vendor.example", "cli"); err == nil || !strings.Contains(err.Error(), "operator create") {
		t.Errorf("reset of a pending operator = %v, want refused pointing at operator create", err)
	}
	if _, err := console.DisableOperator(ctx, h.db, other.email, "cli"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := console.ResetOperator(ctx, h.db, h.url, other.email, "cli"); err == nil {
		t.Error("a disabled operator was reset (and so enabled again)")
	}
	if _, _, err := console.ResetOperator(ctx, h.db, h.url, "nobody@vendor.example", "cli"); err == nil || !strings.Contains(err.Error(), "no operator") {
		t.Errorf("reset of nobody = %v", err)
	}
	pending, err := h.db.OperatorByEmail(ctx, "pending@vendor.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.ResetOperator(ctx, pending.ID, secrets.HashToken("x"), time.Now()); err == nil {
		t.Error("store reset of a pending operator succeeded")
	}
}
