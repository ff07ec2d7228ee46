// Command idbroker-load drives one endpoint of a broker running on this
// machine, for BENCHMARKS.md:
//
//	go run ./cmd/idbroker-load \
//	    -url http://127.0.0.1:8080/oauth/introspect \
//	    -H "Content-Type: application/x-www-form-urlencoded" \
//	    -basic "$CLIENT_ID:$CLIENT_SECRET" -d "token=$ACCESS_TOKEN" \
//	    -c 64 -duration 10s [-rate 16000]
//
// It refuses non-loopback targets and stops by itself after -duration.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
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
	flag.Parse()
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
