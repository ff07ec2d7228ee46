package httpserver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// answerDeadline gives up a request that has not begun its answer within
// d: its context ends with context.DeadlineExceeded, which the database
// and Redis clients report as a timeout, so the surface answers 503 with
// Retry-After in its own format. Without it a PostgreSQL that stops
// answering without closing its connections (a frozen host, a paused VM,
// a blackholed network) held every request that needed it until the
// database came back. An answer already begun (a CSV export streaming
// its rows) is left to the server's WriteTimeout: cutting it would only
// truncate it.
func answerDeadline(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			ctx := newStartDeadline(req.Context())
			defer ctx.stop(context.Canceled)
			res := c.Response()
			var mu sync.Mutex
			started := false
			res.Before(func() {
				mu.Lock()
				started = true
				mu.Unlock()
			})
			t := time.AfterFunc(d, func() {
				mu.Lock()
				defer mu.Unlock()
				if !started {
					ctx.stop(context.DeadlineExceeded)
				}
			})
			defer t.Stop()
			go func() {
				select {
				case <-ctx.Context.Done():
					ctx.stop(ctx.Context.Err())
				case <-ctx.done:
				}
			}()
			c.SetRequest(req.WithContext(ctx))
			return next(c)
		}
	}
}

// startDeadline is a context that ends when its parent does or when stop
// is called. Its Done channel is its own (not the parent's), so contexts
// derived from it take their error from its Err: DeadlineExceeded when
// the answer deadline passed, not Canceled, which the stores read as a
// client that went away.
type startDeadline struct {
	context.Context
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error
}

func newStartDeadline(parent context.Context) *startDeadline {
	return &startDeadline{Context: parent, done: make(chan struct{})}
}

func (d *startDeadline) stop(err error) {
	d.once.Do(func() {
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(d.done)
	})
}

func (d *startDeadline) Done() <-chan struct{} { return d.done }

func (d *startDeadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// StatusClientClosedRequest is the status logged for a request whose
// client went away before its answer (nginx's 499); it is never read.
const StatusClientClosedRequest = 499

// ClientGone reports whether err is the request's own cancellation: the
// client closed the connection, so nobody reads the answer and the failure
// is not the broker's. ctx is the request's context, inside or after its
// handler.
func ClientGone(ctx context.Context, err error) bool { return clientGone(ctx, err) }

// clientGone reports whether err is the request's own cancellation: the
// client closed the connection. ctx is the request's context, which
// answerDeadline wraps (and stops once the handler returned), so the
// connection's own context is the one asked.
func clientGone(ctx context.Context, err error) bool {
	if d, ok := ctx.(*startDeadline); ok {
		ctx = d.Context
	}
	return errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled)
}
