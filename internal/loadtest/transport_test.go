package loadtest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestTransport: the scenarios' transport keeps connections alive, reads
// answers whole however they are framed, sends again on a new connection
// when the server closed an idle one, and never reuses a connection the
// server ends.
func TestTransport(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part one, "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/big":
			w.Write(make([]byte, maxBody+1))
		default:
			w.Header().Set("Set-Cookie", "s=1; Path=/")
			w.Write(append([]byte(r.Method+" "), b...))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	get := func(method, path, body string) string {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if _, ok := resp.Body.(wholeBody); !ok {
			t.Fatalf("%s %s: the body was not read whole", method, path)
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for i := range 5 {
		if got := get("POST", "/", "x=1"); got != "POST x=1" {
			t.Fatalf("round %d: %q", i, got)
		}
	}
	if got := get("GET", "/chunked", ""); got != "part one, part two" {
		t.Fatalf("chunked: %q", got)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 6 requests in a row, want 1", n)
	}

	// The server ends its idle connections: the next requests are sent
	// again on a new one, a POST whose body can be had again included.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if got := get("POST", "/", "y=2"); got != "POST y=2" {
		t.Fatalf("after the server closed: %q", got)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}

	// An answer with Connection: close ends its connection.
	if got := get("GET", "/close", ""); got != "bye" {
		t.Fatalf("close: %q", got)
	}
	get("GET", "/", "")
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections after Connection: close, want 3", n)
	}

	// An answer too large to check is an error.
	if _, err := c.Get(srv.URL + "/big"); !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("a body of %d bytes: %v", maxBody+1, err)
	}

	// Only loopback http.
	for _, u := range []string{"http://192.0.2.1/", "https://127.0.0.1/"} {
		if _, err := c.Get(u); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestTransportCancel: a cancelled context ends a request the server
// never answers.
func TestTransportCancel(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	done := make(chan error, 1)
	go func() {
		_, err := (&http.Client{Transport: newTransport()}).Do(req)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the request outlived its context")
	}
}
