package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/pquerna/otp/totp"

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
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: h.transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(h.url + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF field on the sign-in page")
	}
	code, err := totp.GenerateCode(dev.TOTPSecret, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.PostForm(h.url+"/console/signin", url.Values{"csrf_token": {string(m[1])}, "email": {dev.Email}, "password": {dev.Password}, "code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("disabled operator's sign-in = %d, want 401", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == console.SessionCookie && ck.Value != "" {
			t.Fatal("disabled operator got a session cookie")
		}
	}
}
