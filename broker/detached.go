package broker

import (
	"context"
	"time"
)

// detachedTimeout bounds a step of a request that must not be cut short
// when the client leaves or the request's own deadline passes (keeping a
// revocation for replay, queueing it, forgetting a refused code), but
// must not hold the request either: with no bound, a PostgreSQL or Redis
// that hangs without closing its connections held a sign-out or token
// revocation until it answered, however long, past
// IDBROKER_REQUEST_TIMEOUT.
const detachedTimeout = 5 * time.Second

// detached is ctx's values without its cancellation, ending after
// detachedTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
}
