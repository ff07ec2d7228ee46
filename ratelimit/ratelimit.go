// Package ratelimit puts per-tenant, per-key and per-address request budgets
// in front of idbroker's HTTP surfaces, as echo middleware.
//
// The budgets live in a sessions.Limiter (GCRA buckets in Redis, shared by
// every node, or in process), so a limit holds across a scaled-out
// deployment. Each surface installs the middleware after its authentication,
// so that the key is the tenant or API key the credential named, or else
// the client's address: a value an unauthenticated caller chose (a
// client_id) is keyed with the address it came from, so that the caller
// cannot spend someone else's budget.
//
// Every limited answer carries X-RateLimit-Limit and X-RateLimit-Remaining;
// a refused one is a 429 with Retry-After, returned as an *echo.HTTPError
// wrapping ErrLimited so that each surface renders it in its own error
// format (SCIM error schema, OAuth JSON, the operator API's envelope).
//
// When the limiter itself fails (Redis down) or does not answer within
// Options.Timeout, requests are let through and the failure logged:
// sign-ins staying available, and fast, matters more than a limit.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/sessions"
)

// Response headers of a limited surface.
const (
	HeaderLimit      = "X-RateLimit-Limit"
	HeaderRemaining  = "X-RateLimit-Remaining"
	HeaderRetryAfter = "Retry-After"
)

// ErrLimited is wrapped by the error a refused request returns.
var ErrLimited = errors.New("ratelimit: limit exceeded")

// maxKeyLen bounds the keys sent to the limiter; longer ones (a client_id
// an unauthenticated caller chose, say) are hashed.
const maxKeyLen = 128

// DefaultTimeout bounds one question to the limiter when Options.Timeout
// is zero. Redis answers in a millisecond; one that hangs (a failover, a
// blackholed network) would otherwise hold every limited request for the
// Redis client's own timeout, seconds, before letting it through.
const DefaultTimeout = time.Second

// failureLogInterval keeps a limiter outage from logging once per request.
const failureLogInterval = 10 * time.Second

// Rule is one budget: Limit requests per Window for each key.
type Rule struct {
	// Name identifies the budget in the limiter's keys, in logs and in the
	// rate_limited_total metric ("scim", "api", "login", "token").
	Name string
	// Limit requests per Window; a zero Limit or Window disables the rule.
	Limit  int
	Window time.Duration
	// Key returns the bucket the request counts against, or false to let
	// the request through uncounted (no tenant yet, say).
	Key func(c echo.Context) (string, bool)
}

// Enabled reports whether the rule limits anything.
func (r Rule) Enabled() bool { return r.Limit > 0 && r.Window > 0 }

// String renders the rule as the "N/duration" configuration syntax.
func (r Rule) String() string {
	if !r.Enabled() {
		return "0"
	}
	return strconv.Itoa(r.Limit) + "/" + r.Window.String()
}

// Options configures a Guard.
type Options struct {
	// Logger receives limiter failures (never keys: they may name
	// clients). Nil discards.
	Logger *slog.Logger
	// OnLimited, if set, is called with the rule's name for every refused
	// request (the metrics hook).
	OnLimited func(rule string)
	// Timeout bounds each question to the limiter; past it the request is
	// let through, as when the limiter fails. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Guard builds rate-limiting middleware over one Limiter.
type Guard struct {
	limiter   sessions.Limiter
	log       *slog.Logger
	onLimited func(string)
	timeout   time.Duration
	lastLog   atomic.Int64 // unix nanos of the last failure logged
}

// New returns a Guard spending budgets in l.
func New(l sessions.Limiter, o Options) *Guard {
	g := &Guard{limiter: l, log: o.Logger, onLimited: o.OnLimited, timeout: o.Timeout}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g
}

// Middleware returns middleware enforcing rule. A disabled rule (or a nil
// Guard) returns middleware that does nothing.
func (g *Guard) Middleware(rule Rule) echo.MiddlewareFunc {
	if g == nil || g.limiter == nil || !rule.Enabled() || rule.Key == nil {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	limit := strconv.Itoa(rule.Limit)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key, ok := rule.Key(c)
			if !ok || key == "" {
				return next(c)
			}
			d, err := g.allow(c.Request().Context(), rule, key)
			if err != nil {
				g.failed(c, rule, err)
				return next(c)
			}
			h := c.Response().Header()
			h.Set(HeaderLimit, limit)
			h.Set(HeaderRemaining, strconv.Itoa(max(d.Remaining, 0)))
			if d.Allowed {
				return next(c)
			}
			if g.onLimited != nil {
				g.onLimited(rule.Name)
			}
			secs := retrySeconds(d.RetryAfter)
			h.Set(HeaderRetryAfter, strconv.Itoa(secs))
			return &echo.HTTPError{
				Code:     http.StatusTooManyRequests,
				Message:  fmt.Sprintf("rate limit exceeded: at most %d requests per %s; retry in %d s", rule.Limit, rule.Window, secs),
				Internal: fmt.Errorf("%w (%s)", ErrLimited, rule.Name),
			}
		}
	}
}

// Check spends one request of rule's budget for key, for callers that
// learn the key inside a handler (the tenant a sign-in was routed to)
// rather than in middleware. It reports whether the request may go on and,
// if not, after how long to retry. Like Middleware it lets requests through
// when the limiter fails, and a disabled rule allows everything.
func (g *Guard) Check(ctx context.Context, rule Rule, key string) (ok bool, retryAfter time.Duration) {
	if g == nil || g.limiter == nil || !rule.Enabled() || key == "" {
		return true, 0
	}
	d, err := g.allow(ctx, rule, key)
	if err != nil {
		g.failedCtx(ctx, rule, err)
		return true, 0
	}
	if d.Allowed {
		return true, 0
	}
	if g.onLimited != nil {
		g.onLimited(rule.Name)
	}
	return false, time.Duration(retrySeconds(d.RetryAfter)) * time.Second
}

// allow asks the limiter, within the Guard's timeout. The answer is not
// waited for past it even when the limiter ignores its context, as the
// Redis client does by default (its own read timeout, seconds, applies):
// the question is left to finish on its own.
func (g *Guard) allow(ctx context.Context, rule Rule, key string) (sessions.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	type answer struct {
		d   sessions.Decision
		err error
	}
	done := make(chan answer, 1)
	go func() {
		d, err := g.limiter.Allow(ctx, bucket(rule.Name, key), rule.Limit, rule.Window)
		done <- answer{d, err}
	}()
	select {
	case a := <-done:
		return a.d, a.err
	case <-ctx.Done():
		return sessions.Decision{}, fmt.Errorf("ratelimit: no answer from the limiter within %v: %w", g.timeout, ctx.Err())
	}
}

// failed logs a limiter error, at most once per failureLogInterval, and
// lets the request through.
func (g *Guard) failed(c echo.Context, rule Rule, err error) {
	g.failedCtx(c.Request().Context(), rule, err)
}

func (g *Guard) failedCtx(ctx context.Context, rule Rule, err error) {
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if now-last < int64(failureLogInterval) || !g.lastLog.CompareAndSwap(last, now) {
		return
	}
	g.log.WarnContext(ctx, "rate limiter unavailable: requests are let through unlimited",
		"rule", rule.Name, "error", err)
}

// bucket names the limiter key of one rule and key; long keys are hashed
// so that no caller decides how much the limiter stores.
func bucket(rule, key string) string {
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	return rule + ":" + key
}

// retrySeconds rounds up: a client retrying after Retry-After must find a
// request allowed.
func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
