package safehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// serveOn starts an httptest server on a specific loopback address, so a
// test can allow one (127.0.0.2) and forbid another (127.0.0.1).
func serveOn(t *testing.T, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	s := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func ok(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
}

func TestClientAddressRule(t *testing.T) {
	local := serveOn(t, "127.0.0.1", ok("hello"))
	other := serveOn(t, "127.0.0.2", ok("hello"))
	_, port, _ := net.SplitHostPort(local.Listener.Addr().String())

	tests := []struct {
		name    string
		opts    Options
		url     string
		wantErr error
	}{
		{"loopback refused", Options{}, local.URL, ErrForbiddenAddress},
		{"name resolving to loopback refused", Options{}, "http://localhost:" + port + "/", ErrForbiddenAddress},
		{"metadata address refused", Options{Timeout: time.Second}, "http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{"private allowed when asked", Options{AllowPrivate: true}, local.URL, nil},
		{"allow-listed prefix", Options{AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, other.URL, nil},
		{"allow-list is exact", Options{AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, local.URL, ErrForbiddenAddress},
		{"file scheme refused", Options{AllowPrivate: true}, "file:///etc/passwd", ErrScheme},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := Get(context.Background(), NewClient(tt.opts), tt.url, 0)
			if tt.wantErr == nil {
				if err != nil || string(body) != "hello" {
					t.Fatalf("Get = %q, %v; want hello", body, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestClientRedirects(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	forbidden := serveOn(t, "127.0.0.1", ok("secret"))
	var chain *httptest.Server
	chain = serveOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/to-loopback":
			http.Redirect(w, r, forbidden.URL+"/", http.StatusFound)
		case r.URL.Path == "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/hop/"):
			var n int
			fmt.Sscanf(r.URL.Path, "/hop/%d", &n)
			if n == 0 {
				io.WriteString(w, "hello")
				return
			}
			http.Redirect(w, r, fmt.Sprintf("%s/hop/%d", chain.URL, n-1), http.StatusFound)
		}
	}))

	tests := []struct {
		name    string
		opts    Options
		path    string
		wantErr error
		status  int
	}{
		{"redirect to 127.0.0.1 refused", Options{AllowPrefixes: allow}, "/to-loopback", ErrForbiddenAddress, 0},
		{"redirect to file refused", Options{AllowPrefixes: allow}, "/to-file", ErrScheme, 0},
		{"three hops followed", Options{AllowPrefixes: allow}, "/hop/3", nil, 200},
		{"four hops refused", Options{AllowPrefixes: allow}, "/hop/4", ErrTooManyRedirects, 0},
		{"one hop allowed", Options{AllowPrefixes: allow, MaxRedirects: 1}, "/hop/1", nil, 200},
		{"two hops over limit", Options{AllowPrefixes: allow, MaxRedirects: 1}, "/hop/2", ErrTooManyRedirects, 0},
		{"none followed", Options{AllowPrefixes: allow, MaxRedirects: -1}, "/hop/1", nil, http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := NewClient(tt.opts).Get(chain.URL + tt.path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestClientBodyCap(t *testing.T) {
	srv := serveOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		fmt.Sscanf(r.URL.Query().Get("n"), "%d", &n)
		if r.URL.Query().Get("cl") == "1" {
			w.Header().Set("Content-Length", fmt.Sprint(n))
		}
		w.Write([]byte(strings.Repeat("x", n)))
		if f, ok := w.(http.Flusher); ok {
			f.Flush() // force chunked encoding when no Content-Length
		}
	}))
	c := NewClient(Options{AllowPrivate: true, MaxBodyBytes: 100})
	tests := []struct {
		name    string
		query   string
		wantErr bool
	}{
		{"under cap chunked", "n=99", false},
		{"exactly cap chunked", "n=100", false},
		{"over cap chunked", "n=101", true},
		{"far over cap chunked", "n=100000", true},
		{"exactly cap with length", "n=100&cl=1", false},
		{"over cap with length", "n=101&cl=1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Get(srv.URL + "/?" + tt.query)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if tt.wantErr != errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	srv := serveOn(t, "127.0.0.1", ok(strings.Repeat("y", 50)))
	c := NewClient(Options{AllowPrivate: true})
	for _, tt := range []struct {
		max     int64
		wantErr bool
	}{{49, true}, {50, false}, {1000, false}} {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ReadBody(resp, tt.max)
		if tt.wantErr != errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("ReadBody(max=%d) = %d bytes, %v", tt.max, len(b), err)
		}
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := serveOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	_, err := NewClient(Options{AllowPrivate: true, Timeout: 100 * time.Millisecond}).Get(srv.URL)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestGetStatus(t *testing.T) {
	srv := serveOn(t, "127.0.0.1", http.NotFoundHandler())
	_, err := Get(context.Background(), NewClient(Options{AllowPrivate: true}), srv.URL, 0)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("err = %v, want StatusError 404", err)
	}
}

// TestClientRedirectNoDowngrade: an https chain may not continue over
// http. (The check runs before the hop is dialed, so it is exercised on
// the client's CheckRedirect directly: the test servers' certificates
// are not trusted by NewClient.)
func TestClientRedirectNoDowngrade(t *testing.T) {
	c := NewClient(Options{})
	hop := func(u string) *http.Request { return httptest.NewRequest(http.MethodGet, u, nil) }
	for _, tt := range []struct {
		from, to string
		wantErr  error
	}{
		{"https://idp.example/a", "http://idp.example/b", ErrScheme},
		{"https://idp.example/a", "https://idp.example/b", nil},
		{"http://idp.example/a", "https://idp.example/b", nil},
		{"http://idp.example/a", "http://idp.example/b", nil},
	} {
		err := c.CheckRedirect(hop(tt.to), []*http.Request{hop(tt.from)})
		if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s → %s: %v, want %v", tt.from, tt.to, err, tt.wantErr)
		}
	}
}

// TestClientRedirectKeepsTheMethod: a POST answered 301, 302 or 303 gets
// that answer back instead of a GET of the new location, which would drop
// the body (a webhook's event, a back-channel logout token) and answer
// 200 for a request that never arrived; 307 and 308 repeat the POST.
func TestClientRedirectKeepsTheMethod(t *testing.T) {
	for _, tt := range []struct {
		code int
		want int
	}{
		{http.StatusMovedPermanently, http.StatusMovedPermanently},
		{http.StatusFound, http.StatusFound},
		{http.StatusSeeOther, http.StatusSeeOther},
		{http.StatusTemporaryRedirect, http.StatusAccepted},
		{http.StatusPermanentRedirect, http.StatusAccepted},
	} {
		mux := http.NewServeMux()
		mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/new", tt.code) })
		mux.HandleFunc("GET /new", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
		mux.HandleFunc("POST /new", func(w http.ResponseWriter, r *http.Request) {
			if b, _ := io.ReadAll(r.Body); string(b) != "event" {
				t.Errorf("%d: the POST was repeated with body %q", tt.code, b)
			}
			w.WriteHeader(http.StatusAccepted)
		})
		srv := serveOn(t, "127.0.0.1", mux)
		resp, err := NewClient(Options{AllowPrivate: true}).Post(srv.URL+"/old", "text/plain", strings.NewReader("event"))
		if err != nil {
			t.Fatalf("%d: %v", tt.code, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("POST answered %d: got %d, want %d", tt.code, resp.StatusCode, tt.want)
		}
	}
}
