package console_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/admin-portal/console"
)

// TestDisabledOperatorCannotSignIn: a disabled operator's right email,
// password and code open no session.
func TestDisabledOperatorCannotSignIn(t *testing.T) {
	h := start(t, "")
	dev, _, err := console.SeedDevOperator(context.Background(), h.db)
	if err != nil {
		t.Fatal(err)
	}
	op, err := h.db.OperatorByEmail(context.Background(), dev.Email)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.DisableOperator(context.Background(), op.ID); err != nil {
		t.Fatal(err)
	}
	resp, _ := h.signInAs(t, dev.Email, dev.Password, h.code(t, dev.TOTPSecret))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("disabled operator's sign-in = %d, want 401", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == console.SessionCookie && ck.Value != "" {
			t.Fatal("disabled operator got a session cookie")
		}
	}
}
