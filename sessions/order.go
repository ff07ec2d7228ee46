package sessions

import (
	"context"
	"time"
)

// OrderMemory is how long a session store remembers which sessions a
// durable revocation order ended (ForOrder).
const OrderMemory = 24 * time.Hour

type orderKey struct{}

// ForOrder marks the revocations made with ctx (RevokeSession, RevokeUser,
// RevokeTenant, RevokeConnection) as carrying out the durable order id (a
// store.Revocation). The session store then remembers, for OrderMemory,
// which sessions the order ended, and answers a second call for the same
// order with them again rather than with none: each with its ID, tenant,
// user, connection, times and applications, not its claims (ACR, AMR,
// Extra) or grant revocations, which recording its end does not need. Whoever records what an
// order ended (the back-channel logouts owed to applications, the
// session.revoked events) may fail after the store has ended the sessions
// (the database down, the node stopped); without the memory, the retry
// found nothing left to end and those logouts were lost.
func ForOrder(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, orderKey{}, id)
}

// orderOf is the order ctx carries out, or "".
func orderOf(ctx context.Context) string {
	id, _ := ctx.Value(orderKey{}).(string)
	return id
}
