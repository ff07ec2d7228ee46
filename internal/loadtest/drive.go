package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// OpFunc is one operation of a scenario, run by worker w. It returns how
// long the operation took when only part of its work counts (0: the whole
// call is timed).
type OpFunc func(ctx context.Context, w int) (time.Duration, error)

// DriveConfig bounds a scenario run, like Config does a request run.
type DriveConfig struct {
	Workers  int
	Duration time.Duration
	Ops      int     // stop after this many operations in all (0: Duration only)
	Rate     float64 // operations per second in all, paced; 0 runs closed loop
}

// Report is what a scenario run measured; its JSON is the tool's --json.
type Report struct {
	Scenario   string         `json:"scenario"`
	Workers    int            `json:"workers"`
	Rate       float64        `json:"rate,omitempty"`
	Ops        int            `json:"ops"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"errors_by_kind,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	Elapsed    Duration       `json:"elapsed"`
	Throughput float64        `json:"ops_per_second"`
	P50        Duration       `json:"p50"`
	P90        Duration       `json:"p90"`
	P99        Duration       `json:"p99"`
	Max        Duration       `json:"max"`
	// Noisy is what the -noisy scenario (another tenant's load, run at
	// the same time) measured, when there was one.
	Noisy *Report `json:"noisy,omitempty"`
}

// Duration marshals as seconds with a unit-free float, readable by jq.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).Seconds())
}

func (r Report) String() string {
	s := fmt.Sprintf("%s: %d ops in %v with %d workers: %.1f/s, p50 %v, p90 %v, p99 %v, max %v, %d errors",
		r.Scenario, r.Ops, time.Duration(r.Elapsed).Round(time.Millisecond), r.Workers, r.Throughput,
		round(r.P50), round(r.P90), round(r.P99), round(r.Max), r.Errors)
	if len(r.ErrorKinds) > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k, n := range r.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(kinds)
		s += " (" + strings.Join(kinds, ", ") + ")"
	}
	if r.Noisy != nil {
		s += "\n  meanwhile, another tenant's " + r.Noisy.String()
	}
	return s
}

func round(d Duration) time.Duration { return time.Duration(d).Round(10 * time.Microsecond) }

// OpError is an operation's failure with the kind it is counted under.
type OpError struct {
	Kind string // "status 503", "timeout", "refused", "protocol", …
	Err  error
	// RetryAfter is the answer's Retry-After, in seconds, when it had one.
	RetryAfter time.Duration
}

func (e *OpError) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// kindOf names the kind of an operation's error.
func kindOf(err error) string {
	var oe *OpError
	if errors.As(err, &oe) {
		return oe.Kind
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	case strings.Contains(err.Error(), "connection reset"), strings.Contains(err.Error(), "EOF"):
		return "connection closed"
	}
	return "other"
}

// Drive runs op with cfg.Workers workers until the bounds or ctx end the
// run. Paced runs give each worker its share of Rate on a fixed schedule
// and charge an operation's latency from when it was due.
func Drive(ctx context.Context, name string, cfg DriveConfig, op OpFunc) (Report, error) {
	switch {
	case cfg.Workers <= 0:
		return Report{}, errors.New("loadtest: at least one worker")
	case cfg.Duration <= 0 && cfg.Ops <= 0:
		return Report{}, errors.New("loadtest: a run needs a duration or an operation count")
	case cfg.Duration > MaxDuration:
		return Report{}, fmt.Errorf("loadtest: at most %v", MaxDuration)
	case cfg.Rate < 0:
		return Report{}, errors.New("loadtest: negative rate")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = MaxDuration
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu      sync.Mutex
		lat     []time.Duration
		kinds   = map[string]int{}
		errs    int
		first   error
		started int
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if cfg.Ops > 0 && started >= cfg.Ops {
			return false
		}
		started++
		return true
	}
	begin := time.Now()
	end := begin.Add(cfg.Duration)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var interval time.Duration
			next := begin
			if cfg.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(cfg.Workers) / cfg.Rate)
				next = begin.Add(interval * time.Duration(w) / time.Duration(cfg.Workers))
			}
			for ctx.Err() == nil && take() {
				due := time.Now()
				if interval > 0 {
					due = next
					if due.After(end) {
						return // due after the run's end: the context's timer may fire late under load
					}
					next = next.Add(interval)
					if d := time.Until(due); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					}
				}
				took, err := op(ctx, w)
				if took == 0 {
					took = time.Since(due)
				}
				if ctx.Err() != nil && err != nil {
					return // cut short by the end of the run, not failed
				}
				mu.Lock()
				if err != nil {
					errs++
					kinds[kindOf(err)]++
					if first == nil {
						first = err
					}
				} else {
					lat = append(lat, took)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	slices.Sort(lat)
	r := Report{Scenario: name, Workers: cfg.Workers, Rate: cfg.Rate, Ops: len(lat), Errors: errs,
		Elapsed: Duration(elapsed), Throughput: float64(len(lat)) / elapsed.Seconds()}
	if len(kinds) > 0 {
		r.ErrorKinds = kinds
	}
	if first != nil {
		r.FirstError = first.Error()
	}
	if n := len(lat); n > 0 {
		pct := func(p float64) Duration { return Duration(lat[min(n-1, int(p*float64(n)))]) }
		r.P50, r.P90, r.P99, r.Max = pct(0.50), pct(0.90), pct(0.99), Duration(lat[n-1])
	}
	return r, nil
}
