package main

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		n       int
		window  time.Duration
		wantErr string
	}{
		{in: "600/1m", n: 600, window: time.Minute},
		{in: "10/1s", n: 10, window: time.Second},
		{in: " 100 / m ", n: 100, window: time.Minute},
		{in: "5000/h", n: 5000, window: time.Hour},
		{in: "30/90s", n: 30, window: 90 * time.Second},
		{in: "0", n: 0},
		{in: "0/1m", n: 0},
		{in: "600", wantErr: "is not N/duration"},
		{in: "-1/1m", wantErr: "is not N/duration"},
		{in: "x/1m", wantErr: "is not N/duration"},
		{in: "600/", wantErr: "is not a duration"},
		{in: "600/fortnight", wantErr: "is not a duration"},
		{in: "600/500ms", wantErr: "window must be between"},
		{in: "600/48h", wantErr: "window must be between"},
		{in: "2000000/1m", wantErr: "at most 1000000"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			n, w, err := parseRateLimit(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseRateLimit(%q) = %d, %v, %v; want error containing %q", tc.in, n, w, err, tc.wantErr)
				}
				return
			}
			if err != nil || n != tc.n || w != tc.window {
				t.Fatalf("parseRateLimit(%q) = %d, %v, %v; want %d, %v", tc.in, n, w, err, tc.n, tc.window)
			}
		})
	}
}

func TestLoadConfigRateLimits(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(configSource{getenv: mapEnv(nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  string
		want string
	}{
		{"SCIM", cfg.RateLimits.SCIM.String(), "600/1m0s"},
		{"API", cfg.RateLimits.API.String(), "1200/1m0s"},
		// At least 1,000 sign-ins a minute from one address (a company
		// behind one NAT), each up to three requests.
		{"Login", cfg.RateLimits.Login.String(), "3000/1m0s"},
		{"Token", cfg.RateLimits.Token.String(), "6000/1m0s"},
		{"LoginTenant", cfg.RateLimits.LoginTenant.String(), "6000/1m0s"},
		{"Callback", cfg.RateLimits.Callback.String(), "3000/1m0s"},
		// Below PostgreSQL's pool of 8, with room for other tenants.
		{"SCIMTenantWrites", strconv.Itoa(cfg.RateLimits.SCIMTenantWrites), "4"},
		// Half a 2-core node's sign-in work for one tenant, the rest for
		// the others.
		{"SignInTenant", strconv.Itoa(cfg.RateLimits.SignInTenant), strconv.Itoa(max(4, runtime.GOMAXPROCS(0)))},
		// A larger node: its CPU count, so that one tenant can use it.
		{"SignInTenant on 2 cores", strconv.Itoa(defaultSignInTenantFor(2)), "4"},
		{"SignInTenant on 16 cores", strconv.Itoa(defaultSignInTenantFor(16)), "16"},
	} {
		if c.got != c.want {
			t.Errorf("default %s limit %s, want %s", c.name, c.got, c.want)
		}
	}

	cfg, err = loadConfig(configSource{getenv: mapEnv(map[string]string{
		envRateLimitSCIM: "50/10s", envRateLimitAPI: "0", envRateLimitLogin: "5/m", envRateLimitToken: "100/1s",
		envRateLimitLoginTenant: "7/1m", envRateLimitCallback: "0", envSCIMTenantWrites: " 16 ",
		envSignInTenant: "9",
	})})
	if err != nil {
		t.Fatal(err)
	}
	rl := cfg.RateLimits
	if rl.SCIM.Limit != 50 || rl.SCIM.Window != 10*time.Second || rl.API.Enabled() ||
		rl.Login.Limit != 5 || rl.Login.Window != time.Minute || rl.Token.Limit != 100 || rl.Token.Window != time.Second {
		t.Errorf("rate limits %+v", rl)
	}
	if rl.LoginTenant.Limit != 7 || rl.Callback.Enabled() {
		t.Errorf("login_tenant %v, sso_callback %v; want 7/1m and disabled", rl.LoginTenant, rl.Callback)
	}
	if rl.SCIMTenantWrites != 16 || rl.SignInTenant != 9 {
		t.Errorf("scim tenant writes %d, sign-ins %d; want 16, 9", rl.SCIMTenantWrites, rl.SignInTenant)
	}
	if cfg, err := loadConfig(configSource{getenv: mapEnv(map[string]string{envSignInTenant: "0"})}); err != nil || cfg.RateLimits.SignInTenant != 0 {
		t.Errorf("%s=0: %d, %v; want no cap", envSignInTenant, cfg.RateLimits.SignInTenant, err)
	}
	if cfg, err := loadConfig(configSource{getenv: mapEnv(map[string]string{envSCIMTenantWrites: "0"})}); err != nil || cfg.RateLimits.SCIMTenantWrites != 0 {
		t.Errorf("%s=0: %d, %v; want no cap", envSCIMTenantWrites, cfg.RateLimits.SCIMTenantWrites, err)
	}
	if rl.SCIM.Name != "scim" || rl.Token.Name != "token" {
		t.Errorf("rule names lost: %q %q", rl.SCIM.Name, rl.Token.Name)
	}

	// Every bad value is reported at once, each naming its variable.
	_, err = loadConfig(configSource{getenv: mapEnv(map[string]string{
		envRateLimitSCIM: "lots", envRateLimitToken: "10/1ms", envSCIMTenantWrites: "-1", envSignInTenant: "lots",
	})})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("bad rate limits: %v, want ConfigErrors", err)
	}
	for _, want := range []string{envRateLimitSCIM + `: "lots" is not N/duration`, envRateLimitToken + `: "10/1ms": the window`,
		envSCIMTenantWrites + `: "-1" is not a number`, envSignInTenant + `: "lots" is not a number`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestServeRateLimitsAndMetrics runs the binary with a tiny operator API
// budget: the third call is a 429 with the contract's headers, and
// /metrics counts it and the requests by route template.
func TestServeRateLimitsAndMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(dir, "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
		envRateLimitAPI:    "2/1m",
	})
	var last *http.Response
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, b.base+"/api/v1/tenants/tnt_doesnotexist0000000000", nil)
		req.Header.Set("Authorization", "Bearer "+e2eBootstrapKey)
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		last = res
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" ||
		last.Header.Get("X-RateLimit-Limit") != "2" || last.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("3rd call: %d, headers %v; want 429 with Retry-After and X-RateLimit-*", last.StatusCode, last.Header)
	}

	res, err := b.client.Get(b.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	out := string(raw)
	for _, want := range []string{
		`idbroker_rate_limited_total{surface="api"} 1`,
		`idbroker_http_requests_total{code="404",method="GET",route="/api/v1/tenants/:id"} 2`,
		`idbroker_http_requests_total{code="429",method="GET",route="/api/v1/tenants/:id"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, "tnt_doesnotexist") {
		t.Errorf("/metrics carries a raw id")
	}
}
