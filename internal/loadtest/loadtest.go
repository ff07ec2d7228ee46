// Package loadtest drives an HTTP endpoint with many keep-alive clients
// and reports throughput and latency percentiles, for BENCHMARKS.md.
//
// It speaks just enough HTTP/1.1 over raw connections to send one fixed
// request again and again (a wrk-style client): the point is to measure
// the server, and on a small machine where client and server share cores
// net/http's client would take much of the CPU it is trying to measure.
// It refuses anything but loopback addresses, and every run is bounded by
// a duration and/or a request count: it stops by itself.
package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MaxDuration bounds any run.
const MaxDuration = 10 * time.Minute

// Config describes one run.
type Config struct {
	// URL is the target, http:// on a loopback address.
	URL    string
	Method string // default POST
	Header http.Header
	Body   []byte
	// Clients is the number of concurrent keep-alive connections.
	Clients int
	// The run stops after Duration, or after Requests requests in all,
	// whichever comes first; at least one must be set.
	Duration time.Duration
	Requests int
	// Rate, when positive, paces the run at that many requests per second
	// in all (open loop): each client sends on a fixed schedule, and a
	// request's latency counts from when it was due, so a stalled server
	// is charged for the requests it delayed (no coordinated omission).
	// Zero sends as fast as answers come back (closed loop).
	Rate float64
	// Status is the status every answer must have (default 200); others
	// count as errors.
	Status int
}

// Result is what a run measured.
type Result struct {
	Requests   int // answered with the expected status
	Errors     int // other statuses and I/O errors
	Elapsed    time.Duration
	Throughput float64 // Requests per second
	P50        time.Duration
	P90        time.Duration
	P99        time.Duration
	Max        time.Duration
	FirstError error
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %v: %.0f/s, p50 %v, p90 %v, p99 %v, max %v, %d errors",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Throughput,
		r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond), r.P99.Round(time.Microsecond),
		r.Max.Round(time.Microsecond), r.Errors)
}

// checkHost refuses anything but this machine.
func checkHost(host string) error {
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("loadtest: %s is not a loopback address; this tool only loads the local machine", host)
	}
	return nil
}

// Run drives cfg.URL until the run's bounds or ctx end it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return Result{}, fmt.Errorf("loadtest: URL %q must be http://host:port/path", cfg.URL)
	}
	if err := checkHost(u.Hostname()); err != nil {
		return Result{}, err
	}
	switch {
	case cfg.Clients <= 0:
		return Result{}, errors.New("loadtest: Clients must be positive")
	case cfg.Duration <= 0 && cfg.Requests <= 0:
		return Result{}, errors.New("loadtest: set Duration or Requests")
	case cfg.Rate < 0:
		return Result{}, errors.New("loadtest: Rate cannot be negative")
	case cfg.Duration > MaxDuration:
		return Result{}, fmt.Errorf("loadtest: Duration is capped at %v", MaxDuration)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = MaxDuration
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodPost
	}
	if cfg.Status == 0 {
		cfg.Status = http.StatusOK
	}
	req := encodeRequest(cfg, u)
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var budget atomic.Int64
	budget.Store(int64(cfg.Requests))
	limited := cfg.Requests > 0

	type clientResult struct {
		lat    []time.Duration
		errors int
		first  error
	}
	results := make([]clientResult, cfg.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.Duration)
	for i := range results {
		wg.Go(func() {
			res := &results[i]
			res.lat = make([]time.Duration, 0, 4096)
			var c *conn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			var interval time.Duration
			due := start
			if cfg.Rate > 0 {
				interval = time.Duration(float64(cfg.Clients) / cfg.Rate * float64(time.Second))
				due = start.Add(interval * time.Duration(i) / time.Duration(cfg.Clients)) // spread the clients out
			}
			for ctx.Err() == nil {
				if limited && budget.Add(-1) < 0 {
					return
				}
				if interval > 0 {
					if due.After(end) {
						return // due after the run's end: the context's timer may fire late under load
					}
					if wait := time.Until(due); wait > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(wait):
						}
					}
				}
				if c == nil {
					var err error
					if c, err = dial(ctx, addr); err != nil {
						res.errors++
						res.first = cmpErr(res.first, err)
						time.Sleep(10 * time.Millisecond) // do not spin on a refused dial
						continue
					}
				}
				t0 := time.Now()
				if interval > 0 {
					t0 = due
					due = due.Add(interval)
				}
				status, keep, err := c.roundTrip(req, nil)
				d := time.Since(t0)
				switch {
				case err != nil:
					if ctx.Err() == nil {
						res.errors++
						res.first = cmpErr(res.first, err)
					}
				case status != cfg.Status:
					res.errors++
					res.first = cmpErr(res.first, fmt.Errorf("status %d", status))
				default:
					res.lat = append(res.lat, d)
				}
				if err != nil || !keep {
					c.Close()
					c = nil
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	out := Result{Elapsed: elapsed}
	for _, r := range results {
		all = append(all, r.lat...)
		out.Errors += r.errors
		out.FirstError = cmpErr(out.FirstError, r.first)
	}
	slices.Sort(all)
	out.Requests = len(all)
	if elapsed > 0 {
		out.Throughput = float64(len(all)) / elapsed.Seconds()
	}
	if n := len(all); n > 0 {
		out.P50, out.P90, out.P99, out.Max = all[n*50/100], all[n*90/100], all[n*99/100], all[n-1]
	}
	return out, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func encodeRequest(cfg Config, u *url.URL) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", cfg.Method, u.RequestURI(), u.Host)
	for k, vs := range cfg.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if len(cfg.Body) > 0 || cfg.Method == http.MethodPost {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(cfg.Body))
	}
	b.WriteString("\r\n")
	b.Write(cfg.Body)
	return b.Bytes()
}

// conn is one keep-alive connection.
type conn struct {
	net.Conn
	r *bufio.Reader
	w *bufio.Writer // the scenarios' transport's, made on first use
}

func dial(ctx context.Context, addr string) (*conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

// roundTrip sends req and reads one answer. Its body is appended to
// *body when body is not nil (the caller checks it), discarded otherwise.
// keep reports whether the server keeps the connection open.
func (c *conn) roundTrip(req []byte, body *[]byte) (status int, keep bool, err error) {
	// A deadline keeps a lost answer from hanging the run past its end.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return 0, false, err
	}
	if body != nil {
		*body = (*body)[:0]
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, _ := bytes.Cut(h, []byte{':'})
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, false, fmt.Errorf("malformed Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			keep = !bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.readChunked(body)
	case length >= 0:
		err = c.readN(body, length)
	case body == nil:
		_, err = io.Copy(io.Discard, c.r) // body ends with the connection
		keep = false
	default:
		*body, err = io.ReadAll(io.LimitReader(c.r, maxBody))
		keep = false
	}
	return status, keep, err
}

// maxBody bounds an answer's body kept for a check.
const maxBody = 4 << 20

// readN reads n bytes of a body, appended to *body or discarded when body
// is nil.
func (c *conn) readN(body *[]byte, n int) error {
	if body == nil {
		_, err := c.r.Discard(n)
		return err
	}
	if len(*body)+n > maxBody {
		return fmt.Errorf("an answer of more than %d bytes", maxBody)
	}
	*body = slices.Grow(*body, n)
	_, err := io.ReadFull(c.r, (*body)[len(*body):len(*body)+n])
	*body = (*body)[:len(*body)+n]
	return err
}

// readChunked reads a chunked body, appended to *body or discarded when
// body is nil.
func (c *conn) readChunked(body *[]byte) error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte{';'})
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil {
			return fmt.Errorf("malformed chunk size %q", sz)
		}
		if n == 0 {
			for { // trailers, then the blank line
				l, err := c.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if n < 0 || n > maxBody {
			return fmt.Errorf("malformed chunk size %q", sz)
		}
		if err := c.readN(body, int(n)); err != nil {
			return err
		}
		if _, err := c.r.Discard(2); err != nil {
			return err
		}
	}
}
