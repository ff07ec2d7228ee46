package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/metrics"
)

// listenMetrics binds IDBROKER_METRICS_LISTEN, before the broker says it
// is ready, so that a taken port stops the start like the main one does.
func listenMetrics(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w (set %s to another host:port)", addr, err, envMetricsListen)
	}
	return ln, nil
}

// serveMetrics serves GET and HEAD /metrics of reg on ln, and nothing
// else, until ctx ends: a listener a scraper on the private network
// reaches and the Internet does not, so that the public one need not
// answer /metrics at all.
func serveMetrics(ctx context.Context, bg *sync.WaitGroup, ln net.Listener, reg *metrics.Registry, log *slog.Logger) {
	mux := http.NewServeMux()
	h := reg.Handler()
	mux.Handle("GET "+metrics.Path, h) // GET patterns match HEAD too
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: httpserver.DefaultReadHeaderTimeout,
		ReadTimeout:       httpserver.DefaultReadTimeout,
		WriteTimeout:      httpserver.DefaultWriteTimeout,
		IdleTimeout:       httpserver.DefaultIdleTimeout,
		MaxHeaderBytes:    httpserver.DefaultMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bg.Add(2)
	go func() {
		defer bg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	go func() {
		defer bg.Done()
		log.Info("metrics listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
}
