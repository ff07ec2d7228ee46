package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// A script that spends something (a refresh token's rotation, an
// authorization code) must not take effect once the node that sent it has
// stopped waiting for the answer. A Redis that hangs (stopped, swapping, a
// network that holds the packets) keeps the script in its socket and runs
// it when it wakes, long after the node answered 503: the client's retry,
// which the 503 invites, then finds the token spent and is taken for
// reuse, and the user is signed out. So each such script carries the
// latest Redis time it may run at, and does nothing after it; the retry
// then finds the token as it was.
//
// Redis's clock is not this node's: the offset between the two is measured
// with the once-a-second Marker (TIME in the same round trip), and without
// a fresh measurement no limit is sent, as before.

// ErrLate is a script that reached Redis after its sender had stopped
// waiting for it, and so did nothing; the request may be retried.
var ErrLate = errors.New("sessions: the store took the request after this node had stopped waiting for it; nothing was changed")

const (
	// lateMargin: a script run this close to its sender giving up is
	// refused too, since its answer must still travel back in time.
	lateMargin = 250 * time.Millisecond
	// clockFresh is how long a measured offset is used.
	clockFresh = 10 * time.Second
	// maxClockRTT: a slower round trip measures the offset too loosely.
	maxClockRTT = 50 * time.Millisecond
	// defaultReadTimeout is go-redis's, when the URL sets none.
	defaultReadTimeout = 3 * time.Second
)

// luaLate defines late(limit): whether Redis's clock (unix ms) is past
// limit; a limit of 0 is none. It must be called before the script writes:
// Redis before 5 replicates scripts verbatim and refuses writes after TIME
// unless told to replicate their effects (from 7 the call is a no-op).
const luaLate = `
local function late(limit)
  local l = tonumber(limit)
  if not l or l == 0 then return false end
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > l
end
`

// observeTime records Redis's clock, read as server in a round trip sent
// at sent and answered at recv.
func (g *gate) observeTime(sent, recv, server time.Time) {
	rtt := recv.Sub(sent)
	if rtt < 0 || rtt > maxClockRTT {
		return
	}
	g.clockOffset.Store(int64(server.Sub(sent.Add(rtt / 2))))
	g.clockAt.Store(recv.UnixNano())
}

// offset is Redis's clock minus this node's, if measured recently.
func (g *gate) offset(now time.Time) (time.Duration, bool) {
	at := g.clockAt.Load()
	if at == 0 || now.Sub(time.Unix(0, at)) > clockFresh {
		return 0, false
	}
	return time.Duration(g.clockOffset.Load()), true
}

// lateAfter is the Redis time (unix ms) after which a script this node
// sends now has no one waiting for its answer: the command's read timeout
// or ctx's deadline, whichever comes first; 0 when not known.
func (r *Redis) lateAfter(ctx context.Context) int64 {
	now := time.Now()
	off, ok := r.offset(now)
	if !ok {
		return 0
	}
	var until time.Time
	if r.readTimeout > 0 {
		until = now.Add(r.readTimeout)
	}
	if dl, ok := ctx.Deadline(); ok && (until.IsZero() || dl.Before(until)) {
		until = dl
	}
	if until.IsZero() {
		return 0
	}
	return until.Add(off - lateMargin).UnixMilli()
}

// readTimeoutOf is how long the client waits for one answer (go-redis's
// ReadTimeout: 0 is its default, a negative value none).
func readTimeoutOf(c redis.UniversalClient) time.Duration {
	var o *redis.Options
	switch c := c.(type) {
	case *watchedClient:
		o = c.Options()
	case *redis.Client:
		o = c.Options()
	default:
		return defaultReadTimeout
	}
	switch {
	case o.ReadTimeout == 0:
		return defaultReadTimeout
	case o.ReadTimeout < 0:
		return 0
	}
	return o.ReadTimeout
}
