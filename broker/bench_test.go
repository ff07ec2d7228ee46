package broker_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/loadtest"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// benchSetup logs alice in once and returns the node, the app and tokens.
func benchSetup(b *testing.B, alg string) (*node, *app, *oauth2.Token, string) {
	n := sqliteNode(b)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{IDTokenSigningAlg: alg})
	tok := login(b, n, a)
	in := introspectOnce(b, n.URL, a, tok.AccessToken, http.DefaultClient)
	if !strings.Contains(in, `"active":true`) {
		b.Fatalf("introspection %s", in)
	}
	return n, a, tok, sidOf(b, a, tok)
}

func sidOf(b *testing.B, a *app, tok *oauth2.Token) string {
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.Verifier.Verify(context.Background(), raw)
	if err != nil {
		b.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	idt.Claims(&c)
	return c.SID
}

func introspectOnce(b testing.TB, base string, a *app, token string, hc *http.Client) string {
	req, _ := http.NewRequest("POST", base+broker.PathIntrospect, strings.NewReader("token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.ID, a.Secret)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(body)
}

func BenchmarkCodeExchange(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			n, a, _, sid := benchSetup(b, alg)
			ctx := context.Background()
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				code, err := n.P.IssueCode(ctx, a.ID, a.Redirect, sid)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := a.Conf.Exchange(ctx, code); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

func BenchmarkRefreshGrant(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			_, a, tok, _ := benchSetup(b, alg)
			ctx := context.Background()
			rt := tok.RefreshToken
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				t, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
				if err != nil {
					b.Fatal(err)
				}
				rt = t.RefreshToken
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkIntrospect measures introspection in process (the handler
// alone) and over loopback HTTP with 64 keep-alive clients, reporting the
// p99 latency of the latter.
func BenchmarkIntrospect(b *testing.B) {
	n, a, tok, _ := benchSetup(b, "RS256")
	body := "token=" + tok.AccessToken
	b.Run("handler", func(b *testing.B) {
		h := n.srv.Config.Handler
		b.ReportAllocs()
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest("POST", broker.PathIntrospect, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(a.ID, a.Secret)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
		reportCPU(b, cpu)
	})
	// Closed loop: as fast as answers come back (the throughput ceiling).
	// Paced: 16,000 a second, the aim, where p99 is the number that counts.
	b.Run("loopback-64-clients", func(b *testing.B) { benchLoad(b, n, a, body, 0) })
	b.Run("loopback-64-clients-16k", func(b *testing.B) { benchLoad(b, n, a, body, 16_000) })
	// The same with the access log a production node writes (JSON lines,
	// here to io.Discard): what one request really costs.
	mem := sessions.NewMemory()
	logged := newNodeServer(b, storetest.SQLite(b), mem, mem, "", httpserver.Config{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	logged.tenant("Acme", "acme.test", alice("acme.test"))
	la := logged.app(store.Application{})
	lbody := "token=" + login(b, logged, la).AccessToken
	if in := introspectOnce(b, logged.URL, la, lbody[len("token="):], http.DefaultClient); !strings.Contains(in, `"active":true`) {
		b.Fatalf("introspection %s", in)
	}
	b.Run("loopback-64-clients-access-log", func(b *testing.B) { benchLoad(b, logged, la, lbody, 0) })
	b.Run("loopback-64-clients-16k-access-log", func(b *testing.B) { benchLoad(b, logged, la, lbody, 16_000) })
}

// benchLoad sends b.N introspections over loopback from 64 keep-alive
// connections (package loadtest: a lean raw-HTTP client, so the server
// gets most of the two cores it shares with it), as fast as possible or
// paced at rate a second, and reports the throughput and latency
// percentiles.
func benchLoad(b *testing.B, n *node, a *app, body string, rate float64) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	res, err := loadtest.Run(context.Background(), loadtest.Config{
		URL: n.URL + broker.PathIntrospect, Body: []byte(body), Clients: 64, Requests: b.N, Duration: time.Minute, Rate: rate,
		Header: http.Header{
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(a.ID+":"+a.Secret))},
		},
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors > 0 {
		b.Fatalf("%d errors, first: %v", res.Errors, res.FirstError)
	}
	// Client and server share this process: cpu-ns/op is both.
	reportCPU(b, cpu)
	b.ReportMetric(res.Throughput, "req/s")
	b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
}

// login signs alice in to a at node n and returns the tokens.
func login(b testing.TB, n *node, a *app) *oauth2.Token {
	q := url.Values{"client_id": {a.ID}, "redirect_uri": {a.Redirect}, "response_type": {"code"},
		"scope": {"openid email profile groups offline_access"}, "state": {"st8"}, "login_hint": {"alice@acme.test"}}
	resp, err := browser(nil).Get(n.URL + "/authorize?" + q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		b.Fatalf("status %d", resp.StatusCode)
	}
	tok, err := a.Conf.Exchange(context.Background(), loc.Query().Get("code"))
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// BenchmarkTracing measures the two hot paths in process, through the
// whole HTTP server (middleware included), with tracing off — no tracer
// provider, what a node runs unless OTEL_* variables are set — and on,
// every request sampled and batched to an exporter that drops it. Off
// must allocate what these paths allocated before tracing existed
// (BENCHMARKS.md); on shows what tracing costs.
func BenchmarkTracing(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		var cfg httpserver.Config
		if mode == "on" {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { tp.Shutdown(context.Background()) })
			cfg.TracerProvider = tp
		}
		mem := sessions.NewMemory()
		n := newNodeServer(b, storetest.SQLite(b), mem, mem, "", cfg)
		n.tenant("Acme", "acme.test", alice("acme.test"))
		a := n.app(store.Application{})
		tok := login(b, n, a)
		sid := sidOf(b, a, tok)
		h := n.srv.Config.Handler
		b.Run("introspect/"+mode, func(b *testing.B) {
			body := "token=" + tok.AccessToken
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", broker.PathIntrospect, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(a.ID, a.Secret)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
		b.Run("token/"+mode, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				code, err := n.P.IssueCode(ctx, a.ID, a.Redirect, sid)
				if err != nil {
					b.Fatal(err)
				}
				body := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.Redirect}}.Encode()
				b.StartTimer()
				req := httptest.NewRequest("POST", broker.PathToken, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(a.ID, a.Secret)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
