package main

import (
	"context"
	"log/slog"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/server"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
)

// defaultKeyOverlap is how long `keys rotate` keeps replaced keys in the
// JWKS unless told otherwise.
const defaultKeyOverlap = signing.DefaultOverlap

// keyReloadInterval is how often a running broker re-reads the signing
// keys, which is how a rotation made elsewhere reaches it.
const keyReloadInterval = signing.DefaultReloadInterval

// startSigning creates the signing keys on first start (idempotently, even
// with several nodes starting together) and keeps the in-memory key set
// fresh until ctx is done.
func startSigning(ctx context.Context, st store.Store, log *slog.Logger) (*signing.Manager, error) {
	m, err := signing.NewManager(st, signing.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := m.EnsureKeys(ctx); err != nil {
		return nil, err
	}
	go m.Run(ctx, keyReloadInterval)
	return m, nil
}

func ensureBootstrapKey(ctx context.Context, st store.Store, key string) error {
	return adminportal.EnsureBootstrapKey(ctx, st, key)
}

func createAPIKey(ctx context.Context, st store.Store, name string) (string, error) {
	plaintext, _, err := adminportal.CreateAPIKey(ctx, st, name)
	return plaintext, err
}

func rotateKeys(ctx context.Context, st store.Store, overlap time.Duration, log *slog.Logger) error {
	m, err := signing.NewManager(st, signing.Options{Logger: log})
	if err != nil {
		return err
	}
	keys, err := m.Rotate(ctx, overlap)
	if err != nil {
		return err
	}
	for _, k := range keys {
		log.Info("new signing key", "id", k.ID, "alg", k.Alg)
	}
	return nil
}

// mountSurfaces registers every HTTP surface on srv.
//
// TODO: the OpenID Provider (package broker, with keys from signing),
// the SSO endpoints (connections) and SCIM are mounted here as they land.
func mountSurfaces(srv *server.Server, cfg Config, st store.Store, cache sessionStore, keys *signing.Manager, log *slog.Logger) error {
	_, _, _ = cfg, cache, keys
	adminportal.NewAPI(adminportal.APIConfig{
		Store:  st,
		Logger: log.With("surface", "api"),
	}).Mount(srv.Echo())
	return nil
}
