package console_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/store"
)

// The sign-in tests go through the console's real forms over HTTP: the
// enrolment page an operator opens from the CLI's link, and the sign-in
// page. They are the fast counterpart of the browser test, for the bounds,
// recovery codes and lockout, which mutation testing runs once per mutant.

var (
	totpSecretShown = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	recoveryCodeLi  = regexp.MustCompile(`<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>`)
)

// operator is one enrolled through the enrolment page, with what it chose
// and was shown.
type operator struct {
	email, password, secret string
	recovery                []string
}

// form is a browser's view of one signed-out form: its page's URL, and a
// client whose jar holds the form's CSRF cookie.
type form struct {
	c    *http.Client
	page string
	csrf string
	body string
}

// openForm loads the page at path in a fresh client (no redirects
// followed) and reads its CSRF field.
func (h *harness) openForm(t *testing.T, path string) form {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	f := form{c: &http.Client{Transport: h.transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, page: path}
	resp, err := f.c.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	f.body = string(b)
	m := csrfField.FindStringSubmatch(f.body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s = %d, CSRF field %v:\n%s", path, resp.StatusCode, m, f.body)
	}
	f.csrf = m[1]
	return f
}

// post submits the form with values and its CSRF token, and returns the
// answer with its body read.
func (f form) post(t *testing.T, values url.Values) (*http.Response, string) {
	t.Helper()
	values.Set("csrf_token", f.csrf)
	resp, err := f.c.PostForm(f.page, values)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// enrol creates an operator as the CLI does and sets it up through the
// enrolment page with password, as a person would: the key read off the
// page, its current code typed in. The clock then moves on a step, so
// that the next code is not the enrolment's (spent).
func (h *harness) enrol(t *testing.T, email, password string) operator {
	t.Helper()
	link, _, err := console.CreateOperator(context.Background(), h.db, h.url, email, "cli")
	if err != nil {
		t.Fatal(err)
	}
	f := h.openForm(t, link)
	m := totpSecretShown.FindStringSubmatch(f.body)
	if m == nil {
		t.Fatalf("no key on the enrolment page:\n%s", f.body)
	}
	op := operator{email: email, password: password, secret: m[1]}
	resp, body := f.post(t, url.Values{"password": {password}, "password2": {password}, "code": {h.code(t, op.secret)}})
	if resp.StatusCode != http.StatusOK || cookieNamed(resp, console.SessionCookie) == nil {
		t.Fatalf("enrolment of %d-character email, %d-character password = %d:\n%s", len(email), len(password), resp.StatusCode, body)
	}
	for _, m := range recoveryCodeLi.FindAllStringSubmatch(body, -1) {
		op.recovery = append(op.recovery, m[1])
	}
	if len(op.recovery) != 10 {
		t.Fatalf("enrolment showed %d recovery codes:\n%s", len(op.recovery), body)
	}
	h.clock.Advance(30 * time.Second)
	return op
}

// code is the authenticator's code for secret now, on the console's clock.
func (h *harness) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signInAs posts the sign-in form, freshly loaded, with the three fields.
func (h *harness) signInAs(t *testing.T, email, password, code string) (*http.Response, string) {
	t.Helper()
	return h.openForm(t, h.url+"/console/signin").post(t, url.Values{"email": {email}, "password": {password}, "code": {code}})
}

// opensSession reports whether resp is a sign-in that opened a session.
func opensSession(resp *http.Response) bool {
	ck := cookieNamed(resp, console.SessionCookie)
	return resp.StatusCode == http.StatusSeeOther && ck != nil && ck.Value != ""
}

// TestLongestCredentialsSignIn: the longest email (320 characters) and
// password (1024) enrolment accepts also sign in; one character more is
// refused by the form's bounds (400) before any credential is checked.
func TestLongestCredentialsSignIn(t *testing.T) {
	h := start(t, "")
	const domain = "@vendor.example"
	email := strings.Repeat("e", 320-len(domain)) + domain
	password := strings.Repeat("p", 1024)

	// Enrolment refuses 1025 characters, and the link stays usable.
	link, _, err := console.CreateOperator(context.Background(), h.db, h.url, email, "cli")
	if err != nil {
		t.Fatalf("a 320-character email: %v", err)
	}
	f := h.openForm(t, link)
	secret := totpSecretShown.FindStringSubmatch(f.body)[1]
	long := password + "p"
	if resp, body := f.post(t, url.Values{"password": {long}, "password2": {long}, "code": {h.code(t, secret)}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "too long") {
		t.Fatalf("enrolment with a 1025-character password = %d:\n%s", resp.StatusCode, body)
	}
	if resp, body := f.post(t, url.Values{"password": {password}, "password2": {password}, "code": {h.code(t, secret)}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("enrolment with a 1024-character password = %d:\n%s", resp.StatusCode, body)
	}
	h.clock.Advance(30 * time.Second)

	for _, tc := range []struct {
		name            string
		email, password string
		want            int
	}{
		{"321-character email", email + "e", password, http.StatusBadRequest},
		{"1025-character password", email, long, http.StatusBadRequest},
		{"320 and 1024", email, password, http.StatusSeeOther},
	} {
		resp, body := h.signInAs(t, tc.email, tc.password, h.code(t, secret))
		if resp.StatusCode != tc.want {
			t.Errorf("%s: sign-in = %d, want %d:\n%s", tc.name, resp.StatusCode, tc.want, body)
		}
		if tc.want == http.StatusBadRequest && !strings.Contains(body, "Enter your email, password and a code") {
			t.Errorf("%s: not refused by the bounds:\n%s", tc.name, body)
		}
	}
	// The refusals were not failures: nothing counted toward the lockout.
	if got := actions(t, h, "operator.signin_failed"); len(got) != 0 {
		t.Errorf("bounds refusals audited as failures: %v", got)
	}
}

// TestSignInWithRecoveryCode: a recovery code, as typed (any case, spaces
// for dashes), signs in once in place of a TOTP code, says so, and is
// refused the second time; the other codes still work.
func TestSignInWithRecoveryCode(t *testing.T) {
	h := start(t, "")
	op := h.enrol(t, "ops@vendor.example", "a long enough password")
	typed := strings.ToUpper(strings.ReplaceAll(op.recovery[3], "-", " "))

	resp, body := h.signInAs(t, op.email, op.password, typed)
	loc := resp.Header.Get("Location")
	if !opensSession(resp) || !strings.HasPrefix(loc, "/console/tenants?notice=") || !strings.Contains(loc, "recovery") {
		t.Fatalf("sign-in with recovery code %q = %d → %q:\n%s", typed, resp.StatusCode, loc, body)
	}
	if got := actions(t, h, "operator.signed_in"); !slices.Equal(got, []string{`{"recovery_code":true}`}) {
		t.Fatalf("signed_in audit = %v", got)
	}

	resp, body = h.signInAs(t, op.email, op.password, op.recovery[3])
	if resp.StatusCode != http.StatusUnauthorized || opensSession(resp) || !strings.Contains(html.UnescapeString(body), "not right") {
		t.Fatalf("the spent recovery code again = %d:\n%s", resp.StatusCode, body)
	}
	if got := actions(t, h, "operator.signin_failed"); !slices.Equal(got, []string{`{"failures":1,"reason":"recovery_code"}`}) {
		t.Fatalf("signin_failed audit = %v", got)
	}
	// A recovery code is no bypass of the password.
	if resp, _ := h.signInAs(t, op.email, "not the password!", op.recovery[4]); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("recovery code with a wrong password = %d, want 401", resp.StatusCode)
	}
	if resp, body := h.signInAs(t, op.email, op.password, op.recovery[4]); !opensSession(resp) {
		t.Fatalf("another recovery code = %d:\n%s", resp.StatusCode, body)
	}
	// A TOTP sign-in is not announced as a recovery one.
	resp, _ = h.signInAs(t, op.email, op.password, h.code(t, op.secret))
	if loc := resp.Header.Get("Location"); !opensSession(resp) || loc != "/console/tenants" {
		t.Fatalf("TOTP sign-in = %d → %q", resp.StatusCode, loc)
	}
}

// TestLockout: five failures in a row, whatever was wrong (a replayed
// code, a wrong code, a wrong recovery code, the password), lock the
// operator out for a minute: the fifth answer says so, and the right
// credentials are refused, unchecked, until the minute has passed; then
// they sign in.
func TestLockout(t *testing.T) {
	h := start(t, "")
	op := h.enrol(t, "ops@vendor.example", "a long enough password")
	code := h.code(t, op.secret)
	if resp, body := h.signInAs(t, op.email, op.password, code); !opensSession(resp) {
		t.Fatalf("sign-in = %d:\n%s", resp.StatusCode, body)
	}
	wrong := []byte(code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	for i, tc := range []struct{ password, code string }{
		{op.password, code},                         // replayed
		{op.password, string(wrong)},                // wrong
		{op.password, "aaaa-bbbb-cccc-dddd"},        // not a recovery code
		{"not the password!", h.code(t, op.secret)}, // wrong password
		{"not the password!", op.recovery[0]},       // the fifth
	} {
		resp, body := h.signInAs(t, op.email, tc.password, tc.code)
		want, msg := http.StatusUnauthorized, "not right"
		if i == 4 {
			want, msg = http.StatusTooManyRequests, "locked"
		}
		if resp.StatusCode != want || opensSession(resp) || !strings.Contains(html.UnescapeString(body), msg) {
			t.Fatalf("failure %d = %d, want %d saying %q:\n%s", i+1, resp.StatusCode, want, msg, body)
		}
	}
	want := []string{
		`{"failures":5,"reason":"password"}`, `{"failures":4,"reason":"password"}`, `{"failures":3,"reason":"recovery_code"}`,
		`{"failures":2,"reason":"code"}`, `{"failures":1,"reason":"code_replayed"}`,
	}
	if got := actions(t, h, "operator.signin_failed"); !slices.Equal(got, want) {
		t.Fatalf("signin_failed audit (newest first) = %v, want %v", got, want)
	}
	if got := actions(t, h, "operator.locked_out"); len(got) != 1 || !strings.Contains(got[0], `"failures":5`) {
		t.Fatalf("locked_out audit = %v", got)
	}

	// Locked: the right password and a fresh code are refused, and so is
	// an unused recovery code.
	h.clock.Advance(30 * time.Second)
	for _, c := range []string{h.code(t, op.secret), op.recovery[1]} {
		if resp, body := h.signInAs(t, op.email, op.password, c); resp.StatusCode != http.StatusTooManyRequests || opensSession(resp) {
			t.Fatalf("locked operator's right credentials = %d:\n%s", resp.StatusCode, body)
		}
	}
	if got := actions(t, h, "operator.signin_refused"); len(got) != 2 || !strings.Contains(got[0], `"reason":"locked"`) {
		t.Fatalf("signin_refused audit = %v", got)
	}
	// Refused unchecked: the recovery code was not spent, and no failure
	// was counted.
	if got := actions(t, h, "operator.signin_failed"); len(got) != 5 {
		t.Fatalf("%d failures audited after the locked attempts, want 5", len(got))
	}

	h.clock.Advance(31 * time.Second) // 61 s after the fifth failure
	if resp, body := h.signInAs(t, op.email, op.password, op.recovery[1]); !opensSession(resp) {
		t.Fatalf("after the lockout = %d:\n%s", resp.StatusCode, body)
	}
}

// actions returns the details of the operator audit rows of action,
// newest first.
func actions(t *testing.T, h *harness, action string) []string {
	t.Helper()
	rows, _, err := h.db.OperatorAudit(context.Background(), action, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		var v map[string]any
		if err := json.Unmarshal(r.Context, &v); err != nil {
			t.Fatalf("%s context %s: %v", action, r.Context, err)
		}
		delete(v, "locked_until")
		b, _ := json.Marshal(v)
		out = append(out, string(b))
	}
	return out
}
