package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/cmd/idbroker/internal/devmode"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// startDev runs what `serve --dev` runs, in process: the broker, the
// connection registry and the seeded dev IdP and demo app, on a SQLite store
// and in-memory sessions, behind an httptest server whose URL is the issuer.
// Everything stops when t ends.
func startDev(t *testing.T) (issuer string, dev *devmode.Dev, st store.Store) {
	t.Helper()
	issuer, dev, st, _ = startDevRegistry(t)
	return issuer, dev, st
}

// startDevRegistry is startDev that also returns the connection registry.
func startDevRegistry(t *testing.T) (issuer string, dev *devmode.Dev, st store.Store, reg *connections.Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st = storetest.SQLite(t)
	mem := sessions.NewMemory()

	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	issuer = ts.URL

	keys, err := signing.NewManager(st, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	reg = connections.NewRegistry(connections.Config{Types: connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}}, Issuer: issuer, Store: st, Once: mem, Sessions: mem,
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true})
	p, err := broker.New(broker.Config{Issuer: issuer, Store: st, Sessions: mem, Once: mem, Keys: keys, Connectors: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// The broker's background work ends and is joined before the store
	// (registered earlier, so cleaned up later) closes under it.
	t.Cleanup(func() { cancel(); p.Wait() })
	dev, err = devmode.Seed(ctx, st, reg, issuer)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.New(httpserver.Config{})
	e := srv.Echo()
	p.Mount(e)
	reg.Mount(e, p.Complete)
	dev.Mount(e)
	h = srv.Handler()
	return issuer, dev, st, reg
}
