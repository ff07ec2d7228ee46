package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/scim"
)

// Rate-limit variables, each "N/duration" (600/1m, 10/1s) or 0 to disable.
const (
	envRateLimitSCIM  = "IDBROKER_RATE_LIMIT_SCIM"
	envRateLimitAPI   = "IDBROKER_RATE_LIMIT_API"
	envRateLimitLogin = "IDBROKER_RATE_LIMIT_LOGIN"
	envRateLimitToken = "IDBROKER_RATE_LIMIT_TOKEN"

	envRateLimitLoginTenant = "IDBROKER_RATE_LIMIT_LOGIN_TENANT"
	envRateLimitCallback    = "IDBROKER_RATE_LIMIT_SSO_CALLBACK"

	// envSCIMTenantWrites is a count, not a rate: the SCIM writes of one
	// tenant a node serves at once, or 0 for no cap.
	envSCIMTenantWrites = "IDBROKER_SCIM_TENANT_WRITES"
	// envSignInTenant is a count too: the sign-ins of one tenant a node
	// finishes at once (ACS, OIDC callback, code exchange), or 0.
	envSignInTenant = "IDBROKER_SIGNIN_TENANT_CONCURRENCY"
)

// RateLimits are the request budgets of the surfaces. Their Key funcs are
// set by the wiring (rateLimitRules); Config only holds the numbers.
type RateLimits struct {
	SCIM  ratelimit.Rule // per directory tenant
	API   ratelimit.Rule // per operator API key
	Login ratelimit.Rule // per client address, /authorize and /login
	Token ratelimit.Rule // per client_id and address, /oauth/token and /oauth/revoke

	// LoginTenant is per tenant: sign-ins sent to one tenant's IdP, so
	// that a flood aimed at one tenant cannot use up another's.
	LoginTenant ratelimit.Rule
	// Callback is per client address: posts to the SAML ACS and OIDC
	// callback URLs, which anyone can send without a credential.
	Callback ratelimit.Rule

	// SCIMTenantWrites caps the SCIM writes of one tenant in flight at
	// once on a node (0: no cap), so that one tenant's sync cannot hold
	// every database connection (or SQLite's one writer) and queue every
	// other tenant's requests behind its own.
	SCIMTenantWrites int
	// SignInTenant caps the sign-ins of one tenant finishing at once on a
	// node (0: no cap): the answers read at its ACS and OIDC callback
	// URLs, and its code exchanges at /oauth/token. A tenant signing
	// people in faster than a node completes them then waits for its own
	// places, and the other tenants' sign-ins keep the node's CPU and
	// database connections they need.
	SignInTenant int
}

// defaultSCIMTenantWrites: Okta and Entra ID provision one tenant with a
// handful of requests at once; 4 writes of one tenant keep a node's
// SQLite writer or PostgreSQL pool (8 connections) mostly free for the
// others, and cost an IdP sending more only a retry after a second.
const defaultSCIMTenantWrites = 4

// defaultSignInTenant: completing a sign-in takes a few milliseconds of
// CPU (a signature checked, two signed) and two or three database round
// trips, so 4 at once is a couple of hundred sign-ins a second for one
// tenant on one node, more than a whole company at 9:00 sends a node, and
// leaves the other half of a 2-core node's CPU and of its 8 database
// connections to the other tenants. An answer past the cap waits up to a
// second (ratelimit.ConcurrencyWait) before it is refused. On a node with
// more cores the default is its CPU count (defaultSignInTenantFor): a
// fixed 4 would leave most of a large node idle while one tenant's
// people, at 9:00, were shown the busy page.
const defaultSignInTenant = 4

// defaultSignInTenantFor is the default cap on a node whose Go scheduler
// runs procs threads at once (GOMAXPROCS, which follows the container's
// CPU quota).
func defaultSignInTenantFor(procs int) int { return max(defaultSignInTenant, procs) }

// maxSCIMTenantWrites bounds IDBROKER_SCIM_TENANT_WRITES and
// IDBROKER_SIGNIN_TENANT_CONCURRENCY: past a pool's size a cap caps
// nothing.
const maxSCIMTenantWrites = 10_000

// consoleSignInRule limits the console's sign-in and enrolment posts per
// client address. Not configurable: operators are few, and none types
// this fast.
var consoleSignInRule = ratelimit.Rule{Name: "console_signin", Limit: 30, Window: time.Minute, Key: ratelimit.ByIP}

// apiAuthFailureRule bounds the refused operator API keys of one client
// address: each costs a database lookup, and a backend with a valid key
// is refused none. Not configurable: a key that stopped working fails
// either way, 429 after 60 a minute instead of 401.
var apiAuthFailureRule = ratelimit.Rule{Name: "api_auth", Limit: 60, Window: time.Minute, Key: ratelimit.ByIP}

// scimAuthFailureRule bounds the refused SCIM bearer tokens of one
// directory from one client address (ids that name no directory share one
// budget per address): Okta and Entra ID send every tenant's SCIM from the
// same addresses, so a per-address budget would let one directory looping
// on a rotated token get all the others refused. Not configurable, for the
// same reason as apiAuthFailureRule.
var scimAuthFailureRule = ratelimit.Rule{Name: "scim_auth", Limit: 60, Window: time.Minute, Key: scim.FailureKey}

// defaultRateLimits are generous for real clients and stop runaway loops
// and floods. The broker holds no passwords, so the sign-in limits guard
// against floods, not guessing, and are sized for a whole company behind
// one NAT or load balancer at 9:00: 3,000 requests a minute from one
// address is at least 1,000 sign-ins even when each goes through the
// "enter your work email" page (three requests). Okta pushes a few SCIM
// requests a second at most per tenant.
func defaultRateLimits() RateLimits {
	return RateLimits{
		SCIM:        ratelimit.Rule{Name: "scim", Limit: 600, Window: time.Minute},
		API:         ratelimit.Rule{Name: "api", Limit: 1200, Window: time.Minute},
		Login:       ratelimit.Rule{Name: "login", Limit: 3000, Window: time.Minute},
		Token:       ratelimit.Rule{Name: "token", Limit: 6000, Window: time.Minute},
		LoginTenant: ratelimit.Rule{Name: "login_tenant", Limit: 6000, Window: time.Minute},
		Callback:    ratelimit.Rule{Name: "sso_callback", Limit: 3000, Window: time.Minute},

		SCIMTenantWrites: defaultSCIMTenantWrites,
		SignInTenant:     defaultSignInTenantFor(runtime.GOMAXPROCS(0)),
	}
}

// Bounds of a configured limit.
const (
	maxRateLimit  = 1_000_000
	minRateWindow = time.Second
	maxRateWindow = 24 * time.Hour
)

// loadRateLimits reads the rate-limit variables over the defaults,
// reporting bad values through bad.
func loadRateLimits(src configSource, bad func(name, format string, args ...any)) RateLimits {
	rl := defaultRateLimits()
	for _, v := range []struct {
		env  string
		rule *ratelimit.Rule
	}{
		{envRateLimitSCIM, &rl.SCIM},
		{envRateLimitAPI, &rl.API},
		{envRateLimitLogin, &rl.Login},
		{envRateLimitToken, &rl.Token},
		{envRateLimitLoginTenant, &rl.LoginTenant},
		{envRateLimitCallback, &rl.Callback},
	} {
		raw, name := src.get(v.env)
		if raw == "" {
			continue
		}
		n, w, err := parseRateLimit(raw)
		if err != nil {
			bad(name, "%v", err)
			continue
		}
		v.rule.Limit, v.rule.Window = n, w
	}
	for _, v := range []struct {
		env string
		n   *int
	}{
		{envSCIMTenantWrites, &rl.SCIMTenantWrites},
		{envSignInTenant, &rl.SignInTenant},
	} {
		raw, name := src.get(v.env)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil || n < 0 || n > maxSCIMTenantWrites {
			bad(name, "%q is not a number of requests from 0 (no cap) to %d", raw, maxSCIMTenantWrites)
			continue
		}
		*v.n = n
	}
	return rl
}

// parseRateLimit reads "N/duration": 600/1m, 10/1s, 100/m (a bare unit
// means one of it). "0" disables the limit.
func parseRateLimit(v string) (int, time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "0" {
		return 0, 0, nil
	}
	num, dur, ok := strings.Cut(v, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || err != nil || n < 0 {
		return 0, 0, fmt.Errorf("%q is not N/duration (want e.g. 600/1m, or 0 to disable)", v)
	}
	dur = strings.TrimSpace(dur)
	if dur != "" && (dur[0] < '0' || dur[0] > '9') {
		dur = "1" + dur
	}
	w, err := time.ParseDuration(dur)
	if err != nil {
		return 0, 0, fmt.Errorf("%q: %q is not a duration (want e.g. 1m, 10s, 1h)", v, dur)
	}
	switch {
	case n == 0:
		return 0, 0, nil
	case n > maxRateLimit:
		return 0, 0, fmt.Errorf("%q: at most %d requests per window", v, maxRateLimit)
	case w < minRateWindow || w > maxRateWindow:
		return 0, 0, fmt.Errorf("%q: the window must be between %v and %v", v, minRateWindow, maxRateWindow)
	}
	return n, w, nil
}

// rateLimitRules attaches to each configured budget the key its surface
// counts by: the credential its authentication established.
func rateLimitRules(rl RateLimits) RateLimits {
	rl.SCIM.Key = ratelimit.ByTenant
	rl.API.Key = func(c echo.Context) (string, bool) { return adminportal.OperatorKeyID(c.Request().Context()) }
	rl.Login.Key = ratelimit.ByIP
	rl.Callback.Key = ratelimit.ByIP
	// LoginTenant is spent by the broker once routing names the tenant
	// (broker.Config.TenantLoginLimit), not by middleware.
	rl.Token.Key = broker.TokenLimitKey
	return rl
}
