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
// refresh, scim-create, scim-patch, deprovision-propagation (deprovision on
// -url, poll introspection on -url2 until inactive). The broker's rate
// limits must be off for a load run (IDBROKER_RATE_LIMIT_*=0), and the
// OIDC scenarios need it to reach a loopback IdP (serve --dev, or
// IDBROKER_ALLOW_PRIVATE_NETWORKS=true).
//
// It refuses non-loopback targets and stops by itself after -duration.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"runtime"
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

func main() {
	h := headers{}
	url := flag.String("url", "", "target, http:// on a loopback address")
	method := flag.String("X", "POST", "method")
	body := flag.String("d", "", "request body")
	basic := flag.String("basic", "", "client_id:client_secret for client_secret_basic")
	clients := flag.Int("c", 64, "keep-alive connections")
	duration := flag.Duration("duration", 10*time.Second, "run time (at most 10m)")
	requests := flag.Int("n", 0, "stop after this many requests (0: run for -duration)")
	rate := flag.Float64("rate", 0, "requests per second in all (0: as fast as answers come)")
	flag.Var(h, "H", "header, Name: value (repeatable)")
	scenario := flag.String("scenario", "", "end-to-end scenario instead of one request: "+strings.Join(loadtest.Scenarios(), ", "))
	url2 := flag.String("url2", "", "second node's base URL (deprovision-propagation; default -url)")
	apiKey := flag.String("api-key", os.Getenv("IDBROKER_BOOTSTRAP_API_KEY"), "operator API key for the scenario's setup")
	alg := flag.String("alg", "RS256", "id_token algorithm of the scenario's applications: RS256 or ES256")
	asJSON := flag.Bool("json", false, "print the scenario's report as JSON")
	peerClient := flag.String("peer-client", "idbroker-load:idbroker-load-secret", "peer-* scenarios: client_id:client_secret registered at the peer")
	peerRedirect := flag.String("peer-redirect", "http://127.0.0.1:9/callback", "peer-* scenarios: the client's redirect URI")
	peerAuth := flag.String("peer-authorize", "/auth", "peer-* scenarios: authorization endpoint path under -url")
	peerToken := flag.String("peer-token", "/token", "peer-* scenarios: token endpoint path under -url")
	peerParams := flag.String("peer-params", "connector_id=mock", "peer-* scenarios: extra authorization parameters")
	flag.Parse()
	if *scenario != "" {
		id, secret, _ := strings.Cut(*peerClient, ":")
		params, err := neturl.ParseQuery(*peerParams)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		opts := loadtest.Options{IDTokenAlg: *alg, Peer: loadtest.PeerConfig{AuthorizePath: *peerAuth, TokenPath: *peerToken,
			Client: loadtest.App{ClientID: id, Secret: secret, Redirect: *peerRedirect}, Params: params}}
		os.Exit(runScenario(*scenario, *url, *url2, *apiKey, opts, *asJSON,
			loadtest.DriveConfig{Workers: *clients, Duration: *duration, Ops: *requests, Rate: *rate}))
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
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("%d CPUs (the load client shares them with the server)\n%v\n", runtime.NumCPU(), res)
	if res.FirstError != nil {
		fmt.Printf("first error: %v\n", res.FirstError)
		os.Exit(1)
	}
}

func runScenario(name, base, base2, apiKey string, opts loadtest.Options, asJSON bool, cfg loadtest.DriveConfig) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b, err := loadtest.NewBroker(base, base2, apiKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sc, err := loadtest.NewScenario(name, b, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if sc.Close != nil {
		defer sc.Close()
	}
	if err := sc.Setup(ctx, cfg.Workers); err != nil {
		fmt.Fprintf(os.Stderr, "%s: setup: %v\n", name, err)
		return 2
	}
	rep, err := loadtest.Drive(ctx, name, cfg, sc.Op)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(rep) //nolint:errcheck // stdout
	} else {
		fmt.Printf("%d CPUs (the load client shares them with the server)\n%v\n", runtime.NumCPU(), rep)
		if rep.FirstError != "" {
			fmt.Printf("first error: %s\n", rep.FirstError)
		}
	}
	if rep.Errors > 0 {
		return 1
	}
	return 0
}
