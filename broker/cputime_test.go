package broker_test

import (
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
