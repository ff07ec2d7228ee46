package console

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Cookies. Both are HttpOnly and SameSite=Strict. On an https issuer they
// are Secure and carry the __Host- prefix, which browsers accept only
// Secure, without Domain and with Path=/: a sibling subdomain or a plain
// http answer cannot plant one (a planted CSRF cookie would let another
// site sign a browser in to the planter's operator account). On plain
// http (development) they keep their bare names, scoped to /console.
const (
	// SessionCookie carries a signed-in session's token (only its hash is
	// stored); SecureSessionCookie is its name on an https issuer.
	SessionCookie       = "idb_console"
	SecureSessionCookie = hostPrefix + SessionCookie
	// csrfCookie carries the token that signed-out forms (sign-in,
	// enrolment) echo back: a double submit, since there is no session
	// to keep it in yet.
	csrfCookie = "idb_console_csrf"
	// csrfField is the form field carrying the CSRF token; the portal's
	// forms use the same name (the shared frame's "csrf" template).
	csrfField = "csrf_token"

	hostPrefix = httpserver.HostPrefix
)

// touchEvery is how stale last_seen_at may get before a request refreshes
// it: the idle timeout needs no write on every page view.
const touchEvery = time.Minute

type signedIn struct {
	sess store.OperatorSession
	op   store.Operator
}

const sessionKey = "console.session"

func sessionOf(ec echo.Context) (signedIn, bool) {
	s, ok := ec.Get(sessionKey).(signedIn)
	return s, ok
}

// cookie is the console's cookie name (SessionCookie or csrfCookie) as
// this issuer names and scopes it.
func (c *Console) cookie(name, value string, maxAge int) *http.Cookie {
	return httpserver.Cookie(name, value, Path, maxAge, c.secure, http.SameSiteStrictMode)
}

// readCookie is the request's cookie of that name (SessionCookie or
// csrfCookie), under the name this issuer gives it: on https only the
// prefixed one counts, since the bare one may have been planted.
func (c *Console) readCookie(ec echo.Context, name string) (*http.Cookie, error) {
	return httpserver.ReadCookie(ec.Request(), name, c.secure)
}

// requireSession admits requests with a live session and checks the CSRF
// token of every request that may change something. Without a session a
// GET is sent to sign-in and anything else is 401.
func (c *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s, err := c.session(ec)
		if errors.Is(err, store.ErrNotFound) {
			if ec.Request().Method == http.MethodGet || ec.Request().Method == http.MethodHead {
				return ec.Redirect(http.StatusSeeOther, Path+"/signin?next="+url.QueryEscape(ec.Request().URL.RequestURI()))
			}
			return c.message(ec, http.StatusUnauthorized, "Signed out", "Your console session has ended. Sign in again.")
		}
		if err != nil {
			return err
		}
		ec.Set(sessionKey, s)
		if !safeMethod(ec.Request().Method) {
			got := ec.Request().PostFormValue(csrfField)
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.sess.CSRFToken)) != 1 || got == "" {
				return c.message(ec, http.StatusForbidden, "Request refused", "This form was missing its security token or it had expired. Go back, reload the page and try again.")
			}
		}
		return next(ec)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// session finds the live session of the request's cookie, ending it when
// idle too long.
func (c *Console) session(ec echo.Context) (signedIn, error) {
	ck, err := c.readCookie(ec, SessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 256 {
		return signedIn{}, store.ErrNotFound
	}
	ctx := ec.Request().Context()
	sess, op, err := c.cfg.Store.OperatorSession(ctx, secrets.HashToken(ck.Value))
	if err != nil {
		return signedIn{}, err
	}
	now := c.cfg.Now()
	if now.Sub(sess.LastSeenAt) > c.cfg.IdleTimeout || !now.Before(sess.ExpiresAt) {
		if err := c.cfg.Store.DeleteOperatorSession(ctx, sess.ID); err != nil {
			return signedIn{}, err
		}
		ec.SetCookie(c.cookie(SessionCookie, "", -1))
		return signedIn{}, store.ErrNotFound
	}
	if now.Sub(sess.LastSeenAt) > touchEvery {
		if err := c.cfg.Store.TouchOperatorSession(ctx, sess.ID, now); err != nil {
			return signedIn{}, err
		}
	}
	return signedIn{sess: sess, op: op}, nil
}

// formCSRF returns the double-submit token of signed-out forms, setting
// its cookie when the browser has none.
func (c *Console) formCSRF(ec echo.Context) string {
	if ck, err := c.readCookie(ec, csrfCookie); err == nil && len(ck.Value) >= 32 && len(ck.Value) <= 128 {
		return ck.Value
	}
	tok := secrets.NewToken("")
	ec.SetCookie(c.cookie(csrfCookie, tok, 0))
	ec.Request().AddCookie(&http.Cookie{Name: c.cookie(csrfCookie, "", 0).Name, Value: tok}) // later renders in this request agree
	return tok
}

// checkFormCSRF refuses a signed-out form whose token does not match its
// cookie.
func (c *Console) checkFormCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		ck, err := c.readCookie(ec, csrfCookie)
		got := ec.Request().PostFormValue(csrfField)
		if err != nil || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ck.Value)) != 1 {
			return c.message(ec, http.StatusForbidden, "Request refused", "This form was missing its security token or it had expired. Go back, reload the page and try again.")
		}
		return next(ec)
	}
}

// startSession signs op in: a fresh session, its cookie, and the
// signed-out CSRF cookie dropped.
func (c *Console) startSession(ec echo.Context, op store.Operator) error {
	tok := secrets.NewToken("")
	now := c.cfg.Now()
	_, err := c.cfg.Store.CreateOperatorSession(ec.Request().Context(), store.OperatorSession{
		TokenHash:  secrets.HashToken(tok),
		OperatorID: op.ID,
		CSRFToken:  secrets.NewToken(""),
		ExpiresAt:  now.Add(c.cfg.MaxSession),
	})
	if err != nil {
		return fmt.Errorf("console: create session: %w", err)
	}
	ec.SetCookie(c.cookie(SessionCookie, tok, 0))
	ec.SetCookie(c.cookie(csrfCookie, "", -1))
	return nil
}

type signinData struct{ Email, Next string }

func (c *Console) signinPage(ec echo.Context) error {
	if _, err := c.session(ec); err == nil {
		return ec.Redirect(http.StatusSeeOther, Path+"/tenants")
	}
	return c.render(ec, http.StatusOK, "signin.html", page{Title: "Sign in", Narrow: true, D: signinData{Next: safeNext(ec.QueryParam("next"))}})
}

// Messages of sign-in. One message for every wrong credential, so that the
// page tells no one which of the three was wrong or whether the email
// belongs to an operator.
const (
	msgBadCredentials = "Email, password or code is not right. Codes are accepted once: wait for the next one."
	msgLocked         = "Too many failed attempts: sign-in is locked for a while. Try again later, or ask another operator."
)

// signin checks email, password and TOTP (or recovery) code. Every failure
// of a known operator counts toward the lockout and is audited; a locked
// operator is refused before any credential is checked.
func (c *Console) signin(ec echo.Context) error {
	ctx := ec.Request().Context()
	email := strings.TrimSpace(ec.FormValue("email"))
	password := ec.FormValue("password")
	code := strings.TrimSpace(ec.FormValue("code"))
	fail := func(status int, msg string) error {
		return c.render(ec, status, "signin.html", page{Title: "Sign in", Narrow: true, Error: msg, D: signinData{Email: email, Next: safeNext(ec.QueryParam("next"))}})
	}
	if email == "" || password == "" || code == "" || len(email) > 320 || len(password) > 1024 || len(code) > 64 {
		return fail(http.StatusBadRequest, "Enter your email, password and a code.")
	}
	now := c.cfg.Now()
	// locked answers a locked-out sign-in, known email or not, with when
	// to try again.
	locked := func(until time.Time) error {
		ec.Response().Header().Set("Retry-After", strconv.Itoa(retrySeconds(until.Sub(now))))
		return fail(http.StatusTooManyRequests, msgLocked)
	}

	op, err := c.cfg.Store.OperatorByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && op.Status != store.OperatorActive) {
		return c.signinUnknown(ctx, email, password, now, locked, fail)
	}
	if err != nil {
		return err
	}
	who := actor(ec, op.ID)
	if op.LockedUntil != nil && now.Before(*op.LockedUntil) {
		if err := c.auditOperator(ctx, who, "operator.signin_refused", operatorResource(op), map[string]any{
			"reason": "locked", "locked_until": op.LockedUntil,
		}); err != nil {
			return err
		}
		return locked(*op.LockedUntil)
	}

	reason := ""
	ok, err := checkPassword(op.PasswordHash, password)
	if err != nil {
		return fmt.Errorf("console: check password of %s: %w", op.ID, err)
	}
	usedRecovery := false
	switch {
	case !ok:
		reason = "password"
	case len(code) == int(totpDigits) && isDigits(code):
		step, match := matchTOTP(op.TOTPSecret, code, now)
		if !match {
			reason = "code"
			break
		}
		fresh, err := c.cfg.Store.UseTOTPStep(ctx, op.ID, step)
		if err != nil {
			return err
		}
		if !fresh {
			reason = "code_replayed"
		}
	default:
		spent, err := c.cfg.Store.UseRecoveryCode(ctx, op.ID, hashRecoveryCode(code))
		if err != nil {
			return err
		}
		if !spent {
			reason = "recovery_code"
		}
		usedRecovery = spent
	}

	if reason != "" {
		failures, until, err := c.cfg.Store.RecordOperatorFailure(ctx, op.ID, now, failuresFor, func(n int) *time.Time {
			if d := lockFor(n); d > 0 {
				u := now.Add(d)
				return &u
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := c.auditOperator(ctx, who, "operator.signin_failed", operatorResource(op), map[string]any{
			"reason": reason, "failures": failures,
		}); err != nil {
			return err
		}
		if until != nil {
			if err := c.auditOperator(ctx, who, "operator.locked_out", operatorResource(op), map[string]any{
				"failures": failures, "locked_until": until,
			}); err != nil {
				return err
			}
			c.log.WarnContext(ctx, "console: operator locked out", "operator_id", op.ID, "failures", failures, "until", until)
			return locked(*until)
		}
		return fail(http.StatusUnauthorized, msgBadCredentials)
	}

	if err := c.cfg.Store.RecordOperatorLogin(ctx, op.ID); err != nil {
		return err
	}
	if err := c.auditOperator(ctx, who, "operator.signed_in", operatorResource(op), map[string]any{
		"recovery_code": usedRecovery,
	}); err != nil {
		return err
	}
	if err := c.startSession(ec, op); err != nil {
		return err
	}
	next := cmp.Or(safeNext(ec.QueryParam("next")), Path+"/tenants")
	if usedRecovery {
		next = noticeURL(Path+"/tenants", "recovery_code", "")
	}
	return ec.Redirect(http.StatusSeeOther, next)
}

// failuresFor is how long failed sign-ins are remembered after the last
// one, for an operator's email and for one that is no operator's alike,
// so that waiting tells them apart no better than the answers do. Longer
// would let a flood of made-up emails (held back by Config.SignInLimit)
// fill the session store.
const failuresFor = 24 * time.Hour

// signinUnknown answers a sign-in with an email that is no active
// operator's exactly as a known operator's wrong credentials are
// answered: a password check as slow as a real one, and failures that
// count toward the same lockout, shared by every node (Config.Attempts).
// Otherwise the lockout's 429, which only an operator's email could
// earn, would tell anyone which emails are operators'.
func (c *Console) signinUnknown(ctx context.Context, email, password string, now time.Time, locked func(time.Time) error, fail func(int, string) error) error {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	key := "console-signin:" + hex.EncodeToString(sum[:])
	if b, err := c.cfg.Attempts.Peek(ctx, key+":lock"); err == nil {
		if ns, err := strconv.ParseInt(string(b), 10, 64); err == nil && now.Before(time.Unix(0, ns)) {
			return locked(time.Unix(0, ns))
		}
	} else if !errors.Is(err, sessions.ErrNotFound) {
		// Still an unknown email: the same refusal, without the count.
		c.log.WarnContext(ctx, "console: read the failed sign-ins of an unknown email", "err", err)
	}
	_, _ = checkPassword(dummyHash, password) // as slow as a real check
	n, err := c.cfg.Attempts.Incr(ctx, key+":n", failuresFor)
	if err != nil {
		c.log.WarnContext(ctx, "console: count a failed sign-in of an unknown email", "err", err)
		return fail(http.StatusUnauthorized, msgBadCredentials)
	}
	d := lockFor(int(min(n, 1<<20)))
	if d <= 0 {
		return fail(http.StatusUnauthorized, msgBadCredentials)
	}
	until := now.Add(d)
	if err := c.cfg.Attempts.Put(ctx, key+":lock", []byte(strconv.FormatInt(until.UnixNano(), 10)), d); err != nil {
		c.log.WarnContext(ctx, "console: lock out an unknown email", "err", err)
	}
	c.log.WarnContext(ctx, "console: sign-in locked for an email that is no operator's", "email", email, "failures", n, "until", until)
	return locked(until)
}

// retrySeconds is a Retry-After value: whole seconds, rounded up, at
// least one.
func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// safeNext keeps a post-sign-in destination only when it is a console
// path of this site: never an open redirect.
func safeNext(n string) string {
	if !strings.HasPrefix(n, Path+"/") || strings.HasPrefix(n, Path+"//") || strings.ContainsAny(n, "\\\r\n") {
		return ""
	}
	return n
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (c *Console) signout(ec echo.Context) error {
	s, _ := sessionOf(ec)
	ctx := ec.Request().Context()
	if err := c.cfg.Store.DeleteOperatorSession(ctx, s.sess.ID); err != nil {
		return err
	}
	ec.SetCookie(c.cookie(SessionCookie, "", -1))
	if err := c.auditOperator(ctx, actor(ec, s.op.ID), "operator.signed_out", operatorResource(s.op), nil); err != nil {
		return err
	}
	return ec.Redirect(http.StatusSeeOther, noticeURL(Path+"/signin", "signed_out", ""))
}
