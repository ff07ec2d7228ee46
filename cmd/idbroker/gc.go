package main

import (
	"log/slog"
	"os"

	"github.com/idbroker/idbroker/internal/gctune"
)

// applyGC sets the collector; tests running serve in-process replace it,
// so that the test binary keeps the settings go test gave it.
var applyGC = gctune.Apply

// tuneGC sets the Go collector for serving (internal/gctune: GC percent
// 400 unless GOGC is set, a soft memory limit at 90 % of the cgroup's
// unless GOMEMLIMIT is set) and logs what it chose. A cgroup that cannot
// be read costs the limit, not the start.
func tuneGC(getenv func(string) string, log *slog.Logger) {
	file, limit, err := gctune.CgroupMemoryLimit(os.DirFS("/"))
	if err != nil {
		log.Warn("no soft memory limit: the cgroup's memory limit could not be read", "err", err)
	}
	c := gctune.Choose(getenv, file, limit)
	applyGC(c)
	log.Info("Go collector", c.LogAttrs()...)
}
