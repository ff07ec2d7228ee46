package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/idbroker/idbroker/internal/tracing"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBodyBytes = 1 << 20 // 1 MiB: generous for metadata, JWKS and discovery
	DefaultMaxRedirects = 3
)

var (
	// ErrForbiddenAddress is returned (wrapped) when a request would reach
	// a loopback, private, link-local, metadata or otherwise non-public
	// address.
	ErrForbiddenAddress = errors.New("safehttp: address not allowed")
	// ErrTooManyRedirects is returned when a response chain exceeds
	// Options.MaxRedirects.
	ErrTooManyRedirects = errors.New("safehttp: too many redirects")
	// ErrBodyTooLarge is returned when a response body exceeds its cap.
	ErrBodyTooLarge = errors.New("safehttp: response body too large")
	// ErrScheme is returned for URLs (including redirect targets) that are
	// not http or https.
	ErrScheme = errors.New("safehttp: only http and https URLs are allowed")
)

// Options configures a client. The zero value is a safe default.
type Options struct {
	// AllowPrivate lifts the address rule entirely
	// (IDBROKER_ALLOW_PRIVATE_NETWORKS=true): for self-hosted IdPs on a
	// private network, for serve --dev and for tests.
	AllowPrivate bool
	// AllowPrefixes are exceptions to the address rule, for an operator who
	// wants to reach one internal IdP without opening every private network.
	AllowPrefixes []netip.Prefix
	// Timeout bounds a whole exchange, redirects and body read included.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes caps every response body read through the client;
	// reading past it fails with ErrBodyTooLarge. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxRedirects is how many redirects are followed, each re-checked
	// like the first request. A redirect that would change the method
	// (a POST answered 301, 302 or 303) is never followed: the redirect
	// response itself is returned. Zero means DefaultMaxRedirects; a negative
	// value follows none (the redirect response itself is returned).
	MaxRedirects int
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	return o
}

// NewClient returns an *http.Client that enforces o. It never uses an HTTP
// proxy from the environment: a proxy would dial on our behalf, out of reach
// of the address check.
func NewClient(o Options) *http.Client {
	o = o.withDefaults()
	dialer := &net.Dialer{
		Timeout:   o.Timeout,
		KeepAlive: 30 * time.Second,
		Control:   o.control,
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    10,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{
		// A request made while serving a traced request carries its
		// trace to the IdP (traceparent) and gets a client span.
		Transport: &capTransport{next: tracing.Transport(transport), max: o.MaxBodyBytes},
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// A 301, 302 or 303 turns a POST into a GET without its
			// body: a webhook or a back-channel logout would then be
			// "answered" by a page that never saw it. Such an answer is
			// returned as it is, for the caller to treat as the failure
			// it is; 307 and 308 repeat the request and are followed.
			if o.MaxRedirects < 0 || req.Method != via[0].Method {
				return http.ErrUseLastResponse
			}
			if len(via) > o.MaxRedirects {
				return fmt.Errorf("%w (more than %d)", ErrTooManyRedirects, o.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to %q", ErrScheme, req.URL.Scheme)
			}
			// An https chain must not fall back to cleartext.
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect from https to http refused", ErrScheme)
			}
			return nil
		},
	}
}

// control runs after name resolution, on the exact address being dialed, so
// it also catches DNS rebinding and every redirect hop.
func (o Options) control(network, address string, _ syscall.RawConn) error {
	if o.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialed address %q", ErrForbiddenAddress, address)
	}
	addr := ap.Addr().Unmap()
	for _, p := range o.AllowPrefixes {
		if p.Contains(addr.WithZone("")) {
			return nil
		}
	}
	return CheckAddr(addr)
}

// capTransport checks the URL scheme and wraps every response body in a
// reader that fails once more than max bytes have been read.
type capTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, fmt.Errorf("%w: %q", ErrScheme, req.URL.Scheme)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: Content-Length %d exceeds %d bytes", ErrBodyTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &capReader{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

type capReader struct {
	rc   io.ReadCloser
	left int64
	max  int64
}

func (r *capReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		// Probe one byte: exactly max bytes followed by EOF is fine.
		var one [1]byte
		n, err := r.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, r.max)
		}
		return 0, err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	return n, err
}

func (r *capReader) Close() error { return r.rc.Close() }

// ReadBody reads and closes resp.Body, failing with ErrBodyTooLarge when it
// holds more than max bytes. It works on any response, not only those of a
// safehttp client.
func ReadBody(resp *http.Response, max int64) ([]byte, error) {
	defer resp.Body.Close()
	if max <= 0 {
		max = DefaultMaxBodyBytes
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds %d bytes", ErrBodyTooLarge, resp.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, max)
	}
	return b, nil
}

// Get is a convenience for a GET bound to ctx whose body is read through
// ReadBody. Non-2xx answers are errors that carry the status.
func Get(ctx context.Context, c *http.Client, url string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("safehttp: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := ReadBody(resp, max)
	if err != nil {
		return nil, fmt.Errorf("safehttp: GET %s: %w", req.URL.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("safehttp: GET %s: %w", req.URL.Redacted(), &StatusError{Code: resp.StatusCode})
	}
	return body, nil
}

// StatusError is a non-2xx answer.
type StatusError struct{ Code int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("unexpected status %d %s", e.Code, http.StatusText(e.Code))
}
