package scim_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time this process has used, every thread (the
// handlers, the client goroutines, the collector, SQLite). On a shared
// machine it is the figure to read: wall time stretches with other
// processes' load, CPU per operation barely does.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op, the process CPU since start per operation.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// processIO reads what this process has written through system calls
// (bytes, calls) from /proc/self/io; zeros where there is no such file.
// Unlike time, these do not depend on the machine's load: the WAL pages a
// create appends show in them directly.
func processIO() (wchar, syscw int64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "wchar":
			wchar = n
		case "syscw":
			syscw = n
		}
	}
	return wchar, syscw
}

// reportIO adds write-B/op and write-calls/op since (w0, c0).
func reportIO(b *testing.B, w0, c0 int64) {
	w, c := processIO()
	if w == 0 {
		return
	}
	b.ReportMetric(float64(w-w0)/float64(b.N), "write-B/op")
	b.ReportMetric(float64(c-c0)/float64(b.N), "write-calls/op")
}
