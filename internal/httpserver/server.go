// Package httpserver is the HTTP base every idbroker surface is mounted on: the
// OpenID Provider, the SSO endpoints, SCIM and the operator API all register
// their routes on the one echo.Echo a Server owns.
//
// The Server brings what every surface needs and none should re-implement:
// request ids, structured access logs that never carry query strings or
// credentials, panic recovery, a request body cap, HTTP server timeouts,
// JSON errors, the /healthz and /readyz probes, and a graceful shutdown that
// drains in-flight requests when the process is asked to stop.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
)

// Defaults for the zero values of Config.
const (
	DefaultListen            = ":8080"
	DefaultBodyLimit         = 1 << 20 // 1 MiB
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 256 << 10
	DefaultShutdownTimeout   = 20 * time.Second
	DefaultReadyTimeout      = 2 * time.Second
	DefaultAnswerTimeout     = 30 * time.Second
)

// CheckFunc reports whether a dependency (the database, the cache) is usable.
// It must honour ctx's deadline.
type CheckFunc func(ctx context.Context) error

// Config configures a Server. The zero value is usable: every zero field
// takes the matching Default.
type Config struct {
	// Listen is the TCP address to listen on (IDBROKER_LISTEN).
	Listen string
	// Logger receives access logs, recovered panics and server errors.
	// Nil discards them.
	Logger *slog.Logger

	// BodyLimit caps request bodies, in bytes; larger requests get 413.
	BodyLimit int64
	// BodyLimitFor, if set, names a larger limit for the routes (echo
	// route templates, as c.Path()) that need one, 0 for the others: a
	// SCIM group written whole carries every member.
	BodyLimitFor func(route string) int64

	// HTTP server timeouts; they bound how long a slow or malicious client
	// can hold a connection.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int

	// AnswerTimeout bounds how long a request may wait before its answer
	// begins (a database or Redis that stopped answering): then its
	// context ends and the surface answers 503 with Retry-After. Keep it
	// below WriteTimeout, after which the client gets no answer at all.
	AnswerTimeout time.Duration

	// ShutdownTimeout bounds how long Run waits for in-flight requests once
	// its context is cancelled; connections still open then are closed.
	ShutdownTimeout time.Duration

	// Checks are run by GET /readyz, concurrently, each under ReadyTimeout.
	// The names appear in the answer, so keep them short ("database").
	Checks       map[string]CheckFunc
	ReadyTimeout time.Duration

	// IPExtractor decides the client address logged and handed to handlers
	// (c.RealIP()). The default trusts only the TCP peer; behind a proxy
	// set IPExtractor(trusted) with the proxies' ranges.
	IPExtractor echo.IPExtractor

	// ObserveRequest, if set, is told of every answered request, with the
	// route template that matched ("" for none) rather than the raw path:
	// the metrics hook (metrics.Registry.ObserveRequest).
	ObserveRequest func(route, method string, status int, elapsed time.Duration)

	// TracerProvider, if set, gives every request a server span that
	// continues the caller's W3C traceparent (package tracing). Nil adds
	// no middleware at all: tracing off costs nothing.
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = DefaultAnswerTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.IPExtractor == nil {
		c.IPExtractor = echo.ExtractIPDirect()
	}
	return c
}

// Server is idbroker's HTTP server. Mount routes on Echo() before Run.
type Server struct {
	cfg  Config
	log  *slog.Logger
	echo *echo.Echo

	checks map[string]CheckFunc  // fixed at New: readyz reads it unlocked
	ready  map[string]*readiness // one per check, fixed at New

	renderers []pathRenderer // set while mounting, read-only once serving
	// browser renders the errors of unclaimed paths for browsers, but
	// under browserExcept (RenderBrowserErrors).
	browser       ErrorRenderer
	browserExcept []string
}

// New returns a Server with the shared middleware and the probe routes
// installed.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		checks: maps.Clone(cfg.Checks),
		ready:  make(map[string]*readiness, len(cfg.Checks)),
	}
	for name := range s.checks {
		s.ready[name] = &readiness{log: NewOutageLog()}
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = cfg.IPExtractor
	e.HTTPErrorHandler = s.handleError
	// Echo's own logger only reports oddities such as a handler writing
	// after the response was committed; send them to our log, structured.
	e.Logger.SetOutput(slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn).Writer())
	// Order matters: the request id comes first so every later line carries
	// it, the access log wraps recovery so a panic is logged as the 500 it
	// became, and the body limit sits closest to the handlers.
	// The server span, when tracing, wraps the access log so that the
	// line carries its trace_id and the span the final status.
	e.Use(s.requestID)
	if cfg.TracerProvider != nil {
		e.Use(s.traceRequests(cfg.TracerProvider))
	}
	e.Use(s.accessLog, s.recoverPanic, answerDeadline(cfg.AnswerTimeout), bodyLimit(cfg.BodyLimit, cfg.BodyLimitFor))
	// The probes take HEAD too (the GET's status and headers, no body):
	// some load balancers and uptime checkers probe with it. Only
	// read-only routes may: HEAD runs the GET handler.
	probe := []string{http.MethodGet, http.MethodHead}
	e.Match(probe, "/healthz", s.healthz)
	e.Match(probe, "/readyz", s.readyz)
	s.echo = e
	return s
}

// Echo returns the router surfaces mount their routes on.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Handler returns the server as an http.Handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Run listens on the configured address and serves until ctx is cancelled,
// then shuts down gracefully (see Serve).
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.Listen(ctx)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Listen binds the configured address, for callers that announce the
// server only once its port is theirs, then hand the listener to Serve.
func (s *Server) Listen(ctx context.Context) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", s.cfg.Listen, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx is cancelled. Then it stops accepting
// connections, lets in-flight requests finish for up to ShutdownTimeout and
// closes whatever is left. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests must not inherit ctx: its cancellation starts the drain,
		// it must not abort the requests being drained.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("http server listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}

	s.log.Info("http server shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Out of patience: cut the remaining connections.
		_ = srv.Close()
		err = fmt.Errorf("server: graceful shutdown: %w", err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("server: serve: %w", serr))
	}
	if err == nil {
		s.log.Info("http server stopped")
	}
	return err
}
