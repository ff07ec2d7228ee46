package saml

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// betweenStore is a real store that, once armed, runs a function right
// after the next connection read and before handing back the row it read:
// the caller then works from a copy that someone changed meanwhile, which
// is what a concurrent writer does to it at the worst moment.
type betweenStore struct {
	store.Store
	mu   sync.Mutex
	then func()
}

func (s *betweenStore) arm(fn func()) { s.mu.Lock(); s.then = fn; s.mu.Unlock() }

func (s *betweenStore) Connection(ctx context.Context, id string) (store.Connection, error) {
	c, err := s.Store.Connection(ctx, id)
	s.mu.Lock()
	fn := s.then
	s.then = nil
	s.mu.Unlock()
	if fn != nil {
		fn()
	}
	return c, err
}

// TestConnectionEditRacesRollover: an admin's edit and the maintenance
// loop's certificate rollover, each landing between the other's read and
// write, both survive, on both backends.
func TestConnectionEditRacesRollover(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			o := b.Open(t)
			between := &betweenStore{Store: o.DB}
			o.DB = between
			e := newEnv(t, o)
			idp, rolled := newTestIdP(t, 0), newTestIdP(t, 1)
			var current atomic.Value
			current.Store(metadataXML(idp.entityID, idp.ssoURL, idp.cert))
			var duringFetch atomic.Value // func(), run once by the next fetch
			md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if fn, _ := duringFetch.Swap(func() {}).(func()); fn != nil {
					fn()
				}
				w.Write([]byte(current.Load().(string)))
			}))
			defer md.Close()
			conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Okta", Settings{IdPMetadataURL: ptr(md.URL)}.Request(), nil)
			if err != nil {
				t.Fatal(err)
			}
			certs := func() (store.Connection, int) {
				t.Helper()
				c, err := e.DB.Connection(e.Ctx, conn.ID)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := DecodeConfig(c.Config)
				if err != nil {
					t.Fatal(err)
				}
				return c, len(cfg.IdPCertificates)
			}
			maintain := func() {
				t.Helper()
				if err := e.Reg.Maintain(context.Background()); err != nil {
					t.Errorf("maintain: %v", err)
				}
			}

			t.Run("rollover between the admin's read and write", func(t *testing.T) {
				current.Store(metadataXML(idp.entityID, idp.ssoURL, idp.cert, rolled.cert))
				e.Clock.Add(13 * time.Hour) // past MetadataRefresh
				between.arm(maintain)
				if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Name: ptr("Okta (admin)")}, nil); err != nil {
					t.Fatal(err)
				}
				c, n := certs()
				if c.Name != "Okta (admin)" || n != 2 {
					t.Fatalf("after the edit: name %q, %d certificates; want the edit and the rollover's 2", c.Name, n)
				}
			})

			t.Run("admin edit between the rollover's read and write", func(t *testing.T) {
				current.Store(metadataXML(idp.entityID, idp.ssoURL, rolled.cert))
				e.Clock.Add(13 * time.Hour)
				duringFetch.Store(func() {
					if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Name: ptr("Okta (edited mid-rollover)")}, nil); err != nil {
						t.Errorf("edit: %v", err)
					}
				})
				maintain()
				c, n := certs()
				cfg, _ := DecodeConfig(c.Config)
				if c.Name != "Okta (edited mid-rollover)" || n != 1 || cfg.IdPCertificates[0].PEM != certPEM(rolled.cert) {
					t.Fatalf("after the rollover: name %q, %d certificates; want the edit and only the rolled certificate", c.Name, n)
				}
			})
		})
	}
}
