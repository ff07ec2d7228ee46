package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// transport is the scenarios' HTTP/1.1 RoundTripper. Each request is
// written and its answer read on the calling goroutine, over a keep-alive
// connection from a per-host idle list, and the body is read whole before
// RoundTrip returns. net/http's Transport hands every request to the two
// goroutines of its connection (writeLoop, readLoop) and back; with the
// driver on the same two cores as the server those handoffs, their
// wake-ups and their channels were the largest part of the driver's CPU
// per SAML login. The wire format is still net/http's own
// (Request.Write, ReadResponse): nothing is parsed more loosely.
type transport struct {
	maxIdle int           // idle connections kept per host
	timeout time.Duration // per request, when the context has no earlier deadline

	mu   sync.Mutex
	idle map[string][]*conn
}

func newTransport() *transport {
	return &transport{maxIdle: 256, timeout: 30 * time.Second, idle: map[string][]*conn{}}
}

// wholeBody is an answer's body, read whole; Broker.do takes its bytes
// without copying them again.
type wholeBody struct {
	*bytes.Reader
	b []byte
}

func (wholeBody) Close() error { return nil }

var errBodyTooLarge = fmt.Errorf("loadtest: an answer of more than %d bytes", maxBody)

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		closeBody(req)
		return nil, fmt.Errorf("loadtest: %s: only http:// on a loopback address", req.URL)
	}
	if err := checkHost(req.URL.Hostname()); err != nil {
		closeBody(req)
		return nil, err
	}
	addr := hostPort(req.URL)
	for retried := false; ; retried = true {
		c, reused, err := t.get(req.Context(), addr)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, keep, sent, err := t.exchange(c, req)
		if err == nil {
			if keep {
				t.put(addr, c)
			} else {
				c.Close()
			}
			return resp, nil
		}
		c.Close()
		// A kept-alive connection that the server closed while it was
		// idle fails before any answer: send once more on a new one, as
		// net/http does, when the body can be had again.
		if !reused || retried || sent || (req.Body != nil && req.GetBody == nil) {
			return nil, err
		}
		if req.GetBody != nil {
			b, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r2 := *req
			r2.Body = b
			req = &r2
		}
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// get takes an idle connection to addr, or dials one.
func (t *transport) get(ctx context.Context, addr string) (c *conn, reused bool, err error) {
	t.mu.Lock()
	if l := t.idle[addr]; len(l) > 0 {
		c = l[len(l)-1]
		t.idle[addr] = l[:len(l)-1]
	}
	t.mu.Unlock()
	if c != nil {
		return c, true, nil
	}
	c, err = dial(ctx, addr)
	return c, false, err
}

func (t *transport) put(addr string, c *conn) {
	t.mu.Lock()
	if l := t.idle[addr]; len(l) < t.maxIdle {
		t.idle[addr] = append(l, c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// CloseIdleConnections closes the idle connections (http.Client calls it).
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	t.mu.Unlock()
	for _, l := range idle {
		for _, c := range l {
			c.Close()
		}
	}
}

// exchange writes req on c and reads the whole answer. sent reports
// whether any of the answer arrived (the server saw the request: it must
// not be sent again); keep whether c can carry another request.
func (t *transport) exchange(c *conn, req *http.Request) (resp *http.Response, keep, sent bool, err error) {
	ctx := req.Context()
	// The context's end reaches the connection through AfterFunc, not as
	// its deadline: a deadline could expire before ctx.Err() is set, and
	// the run would count the exchanges it cuts short as timeouts.
	_ = c.SetDeadline(time.Now().Add(t.timeout))
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if c.w == nil {
		c.w = bufio.NewWriterSize(c.Conn, 16<<10)
	}
	if err := req.Write(c.w); err != nil {
		return nil, false, false, ctxErr(ctx, err)
	}
	if err := c.w.Flush(); err != nil {
		return nil, false, false, ctxErr(ctx, err)
	}
	if _, err := c.r.Peek(1); err != nil {
		return nil, false, false, ctxErr(ctx, err)
	}
	resp, err = http.ReadResponse(c.r, req)
	if err != nil {
		return nil, false, true, ctxErr(ctx, err)
	}
	b, err := readBody(resp)
	resp.Body.Close()
	switch {
	case err != nil:
		return nil, false, true, ctxErr(ctx, err)
	case len(b) > maxBody:
		return nil, false, true, errBodyTooLarge
	}
	resp.Body = wholeBody{bytes.NewReader(b), b}
	// An answer without a length or chunks ended with the connection.
	keep = !resp.Close && (resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0)
	return resp, keep, true, nil
}

// readBody reads an answer's body whole, into one allocation when its
// length is known (io.ReadAll would grow and copy a SAML page's ~9 kB
// five times).
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxBody {
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
}

// ctxErr prefers the context's error to the connection's when the context
// ended the exchange.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}
