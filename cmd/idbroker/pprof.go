//go:build pprof

package main

// Built with -tags pprof (for BENCHMARKS.md's profiles, never in a
// release), the broker serves net/http/pprof on IDBROKER_PPROF_LISTEN
// (default 127.0.0.1:6060), apart from its own listener.

import (
	"cmp"
	"log/slog"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // only in a pprof build, on loopback by default
	"os"
	"time"
)

func init() {
	addr := cmp.Or(os.Getenv("IDBROKER_PPROF_LISTEN"), "127.0.0.1:6060")
	srv := &http.Server{Addr: addr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		slog.Warn("pprof build: profiling endpoints served", "addr", addr)
		if err := srv.ListenAndServe(); err != nil {
			slog.Error("pprof listener", "err", err)
		}
	}()
}
