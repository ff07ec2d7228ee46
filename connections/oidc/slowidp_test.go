package oidc

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/idbroker/idbroker/connections/connectionstest"
	"github.com/idbroker/idbroker/store"
)

// TestSlowDiscoveryReadOncePerConnection: a node that has not yet built
// an OIDC connection's connector reads the IdP's discovery document to
// build it, and a build that fails is not kept. While the IdP is slow,
// the sign-ins that need the connector at once (which anyone can start)
// share one read instead of each holding its own connection to the IdP
// and its own goroutine for up to the outbound timeout.
func TestSlowDiscoveryReadOncePerConnection(t *testing.T) {
	const signIns = 20
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Slow IdP", Settings{
		Issuer: ptr(op.srv.URL), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Status != store.ConnectionActive {
		t.Fatalf("status %s", conn.Status)
	}

	// Another node, which has built nothing yet, while the IdP hangs.
	reg := e.NewRegistry()
	gate := make(chan struct{})
	op.discoveryGate.Store(&gate)
	before := op.discoveries.Load()
	ctx := store.WithTenant(context.Background(), conn.TenantID)
	var wg sync.WaitGroup
	errs := make(chan error, signIns)
	for range signIns {
		wg.Go(func() {
			_, err := reg.Connector(ctx, conn)
			errs <- err
		})
	}
	// Release the IdP once every sign-in is past the cache and waiting
	// on the build (its own, or the one it joined).
	for waiting(buildFrame) < signIns {
		runtime.Gosched()
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("connector: %v", err)
		}
	}
	if got := op.discoveries.Load() - before; got != 1 {
		t.Errorf("%d sign-ins needing the connector at once read the discovery document %d times, want once", signIns, got)
	}
}

// buildFrame is the function a sign-in waits in while a connector is
// built for it.
const buildFrame = "connections.(*Registry).connector("

// waiting counts the goroutines whose stack holds frame and that are not
// in the connector cache's lookup.
func waiting(frame string) int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, frame) && !strings.Contains(g, "connections.(*cache).") {
			n++
		}
	}
	return n
}
