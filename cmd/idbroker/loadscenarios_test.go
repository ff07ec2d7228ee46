package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/loadtest"
)

// TestLoadScenarios: every idbroker-load scenario sets itself up through
// the operator API of a real `serve --dev` and completes a few operations
// without errors. No throughput is asserted (that is BENCHMARKS.md's job).
func TestLoadScenarios(t *testing.T) {
	t.Parallel()
	const key = "load-scenarios-test-key-0123456789abcdef"
	env := map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: key,
	}
	for _, v := range []string{envRateLimitSCIM, envRateLimitAPI, envRateLimitLogin, envRateLimitToken, envRateLimitLoginTenant, envRateLimitCallback} {
		env[v] = "0"
	}
	b := startBroker(t, env, "--dev")
	defer b.stop()
	for _, name := range loadtest.Scenarios() {
		if strings.HasPrefix(name, "peer-") {
			continue // they drive another OpenID Provider (Dex), not ours
		}
		t.Run(name, func(t *testing.T) {
			lb, err := loadtest.NewBroker(b.base, "", key)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := loadtest.NewScenario(name, lb, loadtest.Options{Users: 3})
			if err != nil {
				t.Fatal(err)
			}
			if sc.Close != nil {
				defer sc.Close()
			}
			ctx := context.Background()
			if err := sc.Setup(ctx, 2); err != nil {
				t.Fatalf("setup: %v", err)
			}
			rep, err := loadtest.Drive(ctx, name, loadtest.DriveConfig{Workers: 2, Ops: 4, Duration: 2 * time.Minute}, sc.Op)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Ops != 4 || rep.Errors != 0 || rep.P50 <= 0 || rep.Max < rep.P99 {
				t.Fatalf("%v (first error: %s)", rep, rep.FirstError)
			}
		})
	}
}
