package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/gctune"
)

func TestTuneGCLogsItsChoice(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{`msg="Go collector"`, "gc_percent=400", "memory_limit="}},
		{map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}, []string{`gc_percent="GOGC=50"`, `memory_limit="GOMEMLIMIT=1GiB"`}},
	}
	for _, tt := range tests {
		var applied []gctune.Choice
		applyGC = func(c gctune.Choice) { applied = append(applied, c) }
		var out bytes.Buffer
		tuneGC(func(k string) string { return tt.env[k] }, slog.New(slog.NewTextHandler(&out, nil)))
		applyGC = func(gctune.Choice) {}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("env %v: log %q lacks %q", tt.env, out.String(), w)
			}
		}
		if len(applied) != 1 || applied[0].GOGC != tt.env["GOGC"] {
			t.Errorf("env %v: applied %+v, want one choice", tt.env, applied)
		}
	}
}
