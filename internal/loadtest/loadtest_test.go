package loadtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/loadtest"
)

func TestRun(t *testing.T) {
	var served, closes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || string(body) != "token=x" || r.Header.Get("Authorization") != "Basic abc" {
			w.WriteHeader(400)
			return
		}
		n := served.Add(1)
		switch n % 3 {
		case 0: // a streamed (chunked) answer
			w.Write([]byte("{"))
			w.(http.Flusher).Flush()
			w.Write([]byte("}"))
		case 1: // the server ends the connection; the client reconnects
			closes.Add(1)
			w.Header().Set("Connection", "close")
			w.Write([]byte(`{"active":true}`))
		default:
			w.Write([]byte(`{"active":false}`))
		}
	}))
	defer srv.Close()
	cfg := loadtest.Config{
		URL: srv.URL + "/oauth/introspect", Header: http.Header{"Authorization": {"Basic abc"}},
		Body: []byte("token=x"), Clients: 8, Requests: 300, Duration: 30 * time.Second,
	}
	res, err := loadtest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 300 || res.Errors != 0 || res.P99 <= 0 || res.P50 > res.P99 || res.Throughput <= 0 {
		t.Fatalf("%v (first error %v)", res, res.FirstError)
	}
	if closes.Load() == 0 {
		t.Fatal("no connection was closed by the server")
	}

	// Unexpected statuses are errors, not successes.
	cfg.Body, cfg.Requests = []byte("token=y"), 20
	if res, _ := loadtest.Run(context.Background(), cfg); res.Requests != 0 || res.Errors != 20 || res.FirstError == nil {
		t.Fatalf("bad answers: %v", res)
	}

	// A duration bound stops the run by itself: well before a context
	// deadline that only a run ignoring its bound could reach (how long
	// it takes is the machine's business, not asserted).
	cfg.Body, cfg.Requests, cfg.Duration = []byte("token=x"), 0, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if res, err := loadtest.Run(ctx, cfg); err != nil || res.Requests == 0 || ctx.Err() != nil {
		t.Fatalf("duration-bound run: %v, %v (context: %v)", res, err, ctx.Err())
	}
}

// TestRunRate: a paced run never sends faster than asked. (How close it
// comes to the rate depends on the machine, so that is not asserted: on a
// loaded machine such an assertion fails by luck.)
func TestRunRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := loadtest.Run(context.Background(), loadtest.Config{
		URL: srv.URL, Method: "GET", Clients: 4, Rate: 1000, Duration: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 500 due in 0.5 s, plus the first of each client's schedule.
	if res.Errors != 0 || res.Requests == 0 || res.Requests > 504 {
		t.Fatalf("1000/s for 0.5 s: %v", res)
	}
}

// TestDrive: operation counts, errors by kind, and the bounds of a run.
func TestDrive(t *testing.T) {
	var n atomic.Int64
	op := func(ctx context.Context, w int) (time.Duration, error) {
		switch n.Add(1) % 4 {
		case 0:
			return 0, &loadtest.OpError{Kind: "status 503", Err: errors.New("down")}
		case 1:
			return 3 * time.Millisecond, nil // the operation's own timing
		}
		return 0, nil
	}
	rep, err := loadtest.Drive(context.Background(), "t", loadtest.DriveConfig{Workers: 3, Ops: 40, Duration: time.Minute}, op)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ops != 30 || rep.Errors != 10 || rep.ErrorKinds["status 503"] != 10 || time.Duration(rep.Max) < 3*time.Millisecond {
		t.Fatalf("%v", rep)
	}
	for name, cfg := range map[string]loadtest.DriveConfig{
		"no workers": {Ops: 1}, "unbounded": {Workers: 1}, "too long": {Workers: 1, Duration: time.Hour},
		"negative rate": {Workers: 1, Ops: 1, Rate: -1},
	} {
		if _, err := loadtest.Drive(context.Background(), "t", cfg, op); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRunRefuses(t *testing.T) {
	for name, cfg := range map[string]loadtest.Config{
		"remote host":   {URL: "http://example.com/x", Clients: 1, Requests: 1},
		"private host":  {URL: "http://10.0.0.1:8080/x", Clients: 1, Requests: 1},
		"https":         {URL: "https://127.0.0.1/x", Clients: 1, Requests: 1},
		"no clients":    {URL: "http://127.0.0.1:1/x", Requests: 1},
		"unbounded":     {URL: "http://127.0.0.1:1/x", Clients: 1},
		"too long":      {URL: "http://127.0.0.1:1/x", Clients: 1, Duration: time.Hour},
		"negative rate": {URL: "http://127.0.0.1:1/x", Clients: 1, Requests: 1, Rate: -1},
	} {
		if _, err := loadtest.Run(context.Background(), cfg); err == nil || !strings.HasPrefix(err.Error(), "loadtest: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
