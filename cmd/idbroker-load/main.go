// Command idbroker-load drives a broker running on this machine, for
// BENCHMARKS.md. Either one fixed request, as fast as a raw HTTP/1.1
// client can send it:
//
//	go run ./cmd/idbroker-load \
//	    -url http://127.0.0.1:8080/oauth/introspect \
//	    -H "Content-Type: application/x-www-form-urlencoded" \
//	    -basic "$CLIENT_ID:$CLIENT_SECRET" -d "token=$ACCESS_TOKEN" \
//	    -c 64 -duration 10s [-rate 16000]
//
// or an end-to-end scenario, which sets up its own tenant, application,
// directory and (for the OIDC scenarios) upstream IdP through the operator
// API first:
//
//	IDBROKER_BOOTSTRAP_API_KEY=… go run ./cmd/idbroker-load \
//	    -scenario login-oidc -url http://127.0.0.1:8080 -c 8 -duration 15s [-json]
//
// Scenarios: login-saml (through the dev IdP of serve --dev), login-oidc,
// refresh, scim-create, scim-patch, introspect (one login per worker, then
// its access token introspected again and again, each answer checked
// active), deprovision-propagation (deprovision on -url, poll introspection
// on -url2 until inactive). The peer-* scenarios drive another OpenID
// Provider for comparison (Dex, bench/peers/dex.yaml): peer-login,
// peer-refresh, peer-introspect; they set nothing up. Discovery and JWKS
// are single requests: -X GET -url …/.well-known/openid-configuration (or
// the JWKS URL).
//
// -noisy runs a second scenario, another tenant's load, beside the
// measured one (from -noisy-warmup before it to its end, with -noisy-c
// workers), and prints its report beside: what one tenant's burst does to
// another's latency and errors. scim-sync is an IdP's initial sync (user
// creates, group PATCHes adding thousands of members, a filtered
// reconciliation loop, Retry-After honoured):
//
//	idbroker-load -scenario login-oidc -c 4 -noisy scim-sync -noisy-c 32 -url …
//
// The broker's rate
// limits must be off for a load run (IDBROKER_RATE_LIMIT_*=0), and the
// OIDC scenarios need it to reach a loopback IdP (serve --dev, or
// IDBROKER_ALLOW_PRIVATE_NETWORKS=true).
//
// It refuses non-loopback targets and stops by itself: after -n requests
// or operations when -n is given (and after -duration too only when that is
// given as well), otherwise after -duration (default 10s). -cpuprofile
// writes the tool's own CPU profile, to see what the client costs.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/idbroker/idbroker/internal/loadtest"
)

type headers http.Header

func (h headers) String() string { return "" }
func (h headers) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Errorf("header %q is not Name: value", v)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(val))
	return nil
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// defaultDuration bounds a run given neither -n nor -duration.
const defaultDuration = 10 * time.Second

// runDuration is a run's time bound from the flags: -duration when given;
// otherwise none with -n (the run ends after n, within MaxDuration) and
// defaultDuration without it.
func runDuration(n int, duration time.Duration) time.Duration {
	if duration == 0 && n <= 0 {
		return defaultDuration
	}
	return duration
}

// run is the command with its arguments; it returns the exit status (0
// done, 1 errors in the run, 2 the run could not start).
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("idbroker-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	h := headers{}
	url := fs.String("url", "", "target, http:// on a loopback address")
	method := fs.String("X", "POST", "method")
	body := fs.String("d", "", "request body")
	basic := fs.String("basic", "", "client_id:client_secret for client_secret_basic")
	clients := fs.Int("c", 64, "keep-alive connections")
	duration := fs.Duration("duration", 0, "run time, at most 10m (default 10s without -n, no bound but -n with it)")
	requests := fs.Int("n", 0, "stop after this many requests or operations (0: run for -duration)")
	rate := fs.Float64("rate", 0, "requests per second in all (0: as fast as answers come)")
	fs.Var(h, "H", "header, Name: value (repeatable)")
	scenario := fs.String("scenario", "", "end-to-end scenario instead of one request: "+strings.Join(loadtest.Scenarios(), ", "))
	url2 := fs.String("url2", "", "second node's base URL (deprovision-propagation; default -url)")
	apiKey := fs.String("api-key", os.Getenv("IDBROKER_BOOTSTRAP_API_KEY"), "operator API key for the scenario's setup")
	alg := fs.String("alg", "RS256", "id_token algorithm of the scenario's applications: RS256 or ES256")
	asJSON := fs.Bool("json", false, "print the scenario's report as JSON")
	peerClient := fs.String("peer-client", "idbroker-load:idbroker-load-secret", "peer-* scenarios: client_id:client_secret registered at the peer")
	peerRedirect := fs.String("peer-redirect", "http://127.0.0.1:9/callback", "peer-* scenarios: the client's redirect URI")
	peerAuth := fs.String("peer-authorize", "/auth", "peer-* scenarios: authorization endpoint path under -url")
	peerToken := fs.String("peer-token", "/token", "peer-* scenarios: token endpoint path under -url")
	peerIntrospect := fs.String("peer-introspect", "/token/introspect", "peer-introspect: introspection endpoint path under -url (Dex's)")
	peerParams := fs.String("peer-params", "connector_id=mock", "peer-* scenarios: extra authorization parameters")
	noisy := fs.String("noisy", "", "scenario: another tenant's load run at the same time (e.g. scim-sync, login-oidc), from -noisy-warmup before the measured scenario to its end; its report is printed beside")
	noisyC := fs.Int("noisy-c", 16, "-noisy scenario's workers")
	noisyWarmup := fs.Duration("noisy-warmup", 2*time.Second, "how long the -noisy scenario runs before the measured one starts")
	cpuProfile := fs.String("cpuprofile", "", "write the tool's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	*duration = runDuration(*requests, *duration)
	if os.Getenv("GOGC") == "" {
		// The driver shares the cores with the server it measures: fewer
		// collections (each SAML login reads and posts a ~10 kB signed
		// page) leave more of them to the server, for a few MB of memory.
		debug.SetGCPercent(400)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if *scenario != "" {
		id, secret, _ := strings.Cut(*peerClient, ":")
		params, err := neturl.ParseQuery(*peerParams)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		opts := loadtest.Options{IDTokenAlg: *alg, Peer: loadtest.PeerConfig{AuthorizePath: *peerAuth, TokenPath: *peerToken, IntrospectPath: *peerIntrospect,
			Client: loadtest.App{ClientID: id, Secret: secret, Redirect: *peerRedirect}, Params: params}}
		return runScenario(*scenario, *url, *url2, *apiKey, opts, *asJSON,
			loadtest.DriveConfig{Workers: *clients, Duration: *duration, Ops: *requests, Rate: *rate},
			noisyRun{name: *noisy, workers: *noisyC, warmup: *noisyWarmup}, stdout, stderr)
	}
	if *basic != "" {
		http.Header(h).Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(*basic)))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadtest.Run(ctx, loadtest.Config{
		URL: *url, Method: *method, Header: http.Header(h), Body: []byte(*body),
		Clients: *clients, Duration: *duration, Requests: *requests, Rate: *rate,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "%d CPUs (the load client shares them with the server)\n%v\n", runtime.NumCPU(), res)
	if res.FirstError != nil {
		fmt.Fprintf(stdout, "first error: %v\n", res.FirstError)
		return 1
	}
	return 0
}

// noisyRun is the -noisy flags: another tenant's scenario run beside the
// measured one, to see what its load does to the measured tenant.
type noisyRun struct {
	name    string
	workers int
	warmup  time.Duration
}

func runScenario(name, base, base2, apiKey string, opts loadtest.Options, asJSON bool, cfg loadtest.DriveConfig, nr noisyRun, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b, err := loadtest.NewBroker(base, base2, apiKey)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	setup := func(name string, workers int) (*loadtest.Scenario, bool) {
		sc, err := loadtest.NewScenario(name, b, opts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, false
		}
		if err := sc.Setup(ctx, workers); err != nil {
			fmt.Fprintf(stderr, "%s: setup: %v\n", name, err)
			if sc.Close != nil {
				sc.Close()
			}
			return nil, false
		}
		return sc, true
	}
	sc, ok := setup(name, cfg.Workers)
	if !ok {
		return 2
	}
	if sc.Close != nil {
		defer sc.Close()
	}
	// The other tenant's load, set up after the measured tenant (whose
	// setup it would slow) and stopped when the measured run ends.
	var noisy chan loadtest.Report
	stopNoisy := func() {}
	if nr.name != "" {
		nsc, ok := setup(nr.name, nr.workers)
		if !ok {
			return 2
		}
		if nsc.Close != nil {
			defer nsc.Close()
		}
		var nctx context.Context
		nctx, stopNoisy = context.WithCancel(ctx)
		defer stopNoisy()
		noisy = make(chan loadtest.Report, 1)
		go func() {
			rep, err := loadtest.Drive(nctx, nr.name, loadtest.DriveConfig{Workers: nr.workers, Duration: loadtest.MaxDuration}, nsc.Op)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", nr.name, err)
			}
			noisy <- rep
		}()
		select {
		case <-time.After(nr.warmup):
		case <-ctx.Done():
		}
	}
	rep, err := loadtest.Drive(ctx, name, cfg, sc.Op)
	stopNoisy()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if noisy != nil {
		nrep := <-noisy
		rep.Noisy = &nrep
	}
	if asJSON {
		json.NewEncoder(stdout).Encode(rep) //nolint:errcheck // stdout
	} else {
		fmt.Fprintf(stdout, "%d CPUs (the load client shares them with the server)\n%v\n", runtime.NumCPU(), rep)
		if rep.FirstError != "" {
			fmt.Fprintf(stdout, "first error: %s\n", rep.FirstError)
		}
	}
	if rep.Errors > 0 {
		return 1
	}
	return 0
}
