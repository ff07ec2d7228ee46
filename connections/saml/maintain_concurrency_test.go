package saml

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections"
)

// metadataIdPs serves metadata of one IdP from n real HTTP servers, one
// per connection. Once hold is set, every request counts in fetched and
// in flight, and those of a server in slow (or of every server, when
// holdAll) wait for release or their own request's end.
type metadataIdPs struct {
	md       string
	hold     atomic.Bool
	holdAll  bool
	release  chan struct{}
	once     sync.Once
	fetched  atomic.Int32
	inFlight atomic.Int32
	held     atomic.Int32 // requests waiting for release now
	maxSeen  atomic.Int32
	urls     []string
}

func newMetadataIdPs(t *testing.T, n int, slow map[int]bool, holdAll bool) *metadataIdPs {
	t.Helper()
	idp := newTestIdP(t, 0)
	m := &metadataIdPs{md: metadataXML(idp.entityID, idp.ssoURL, idp.cert), holdAll: holdAll, release: make(chan struct{})}
	for i := range n {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if m.hold.Load() {
				now := m.inFlight.Add(1)
				defer m.inFlight.Add(-1)
				for {
					seen := m.maxSeen.Load()
					if now <= seen || m.maxSeen.CompareAndSwap(seen, now) {
						break
					}
				}
				m.fetched.Add(1)
				if holdAll || slow[i] {
					m.held.Add(1)
					defer m.held.Add(-1)
					select {
					case <-m.release:
					case <-r.Context().Done():
						return
					}
				}
			}
			w.Write([]byte(m.md))
		}))
		t.Cleanup(srv.Close)
		m.urls = append(m.urls, srv.URL)
	}
	// Released before the servers close (cleanups run last first), so
	// that Close does not wait on a held handler.
	t.Cleanup(m.let)
	return m
}

// let releases the held requests.
func (m *metadataIdPs) let() { m.once.Do(func() { close(m.release) }) }

// connect creates one SAML connection per server, its metadata read from it.
func (m *metadataIdPs) connect(t *testing.T, e *env) {
	t.Helper()
	for i, u := range m.urls {
		if _, err := e.Reg.CreateConnection(e.Ctx, Name, fmt.Sprint("idp ", i), Settings{IdPMetadataURL: ptr(u)}.Request(), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMaintainSlowIdPHoldsUpNoOther: an IdP whose metadata URL does not
// answer holds one worker of the maintenance pass, not the pass: every
// other connection's due refresh is fetched meanwhile, those before it in
// the pass's order and those after it.
func TestMaintainSlowIdPHoldsUpNoOther(t *testing.T) {
	e := newEnv(t, envOpts{})
	const n = connections.MaintainConcurrency + 4
	idps := newMetadataIdPs(t, n, map[int]bool{n / 2: true}, false)
	idps.connect(t, e)
	idps.hold.Store(true)
	e.Clock.Add(13 * time.Hour) // every refresh due
	done := make(chan error, 1)
	go func() { done <- e.Reg.Maintain(context.Background()) }()

	waitFor(t, "every metadata URL to be fetched", func() bool { return idps.fetched.Load() == n })
	if h := idps.held.Load(); h != 1 {
		// One after another, the rest waited for the slow one's
		// timeout (the HTTP client's 10 s) and came after it.
		t.Fatalf("the slow IdP's request is not open while the others were fetched (%d held)", h)
	}
	select {
	case err := <-done:
		t.Fatalf("the pass ended (%v) while an IdP had not answered", err)
	case <-time.After(50 * time.Millisecond):
	}
	idps.let()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conns, err := e.DB.Connections(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		cfg, err := DecodeConfig(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MetadataFetchedAt == nil || !cfg.MetadataFetchedAt.Equal(e.Clock.Now()) {
			t.Errorf("%s: metadata fetched at %v, want the pass's %v", c.Name, cfg.MetadataFetchedAt, e.Clock.Now())
		}
	}
}

// TestMaintainConcurrencyIsBounded: with every IdP slow, a pass has
// MaintainConcurrency fetches open at once, never more.
func TestMaintainConcurrencyIsBounded(t *testing.T) {
	e := newEnv(t, envOpts{})
	const n = connections.MaintainConcurrency + 4
	idps := newMetadataIdPs(t, n, nil, true)
	idps.connect(t, e)
	idps.hold.Store(true)
	e.Clock.Add(13 * time.Hour)
	done := make(chan error, 1)
	go func() { done <- e.Reg.Maintain(context.Background()) }()

	waitFor(t, "the workers to fill", func() bool { return idps.inFlight.Load() == connections.MaintainConcurrency })
	time.Sleep(100 * time.Millisecond) // room for a fetch past the bound
	if got := idps.maxSeen.Load(); got != connections.MaintainConcurrency {
		t.Fatalf("%d fetches at once, want %d", got, connections.MaintainConcurrency)
	}
	idps.let()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := idps.fetched.Load(); got != n {
		t.Fatalf("%d of %d metadata URLs fetched", got, n)
	}
}
