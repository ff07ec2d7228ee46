package adminportal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// MaxSecretOverlap bounds how long a replaced secret or token may keep
// working after a rotation: long enough for a weekly deploy, short enough
// that a forgotten overlap does not make rotation pointless.
const MaxSecretOverlap = 7 * 24 * time.Hour

type rotateApplicationSecretRequest struct {
	// PreviousSecretExpiresIn is how many seconds the replaced secret keeps
	// working; absent or 0: it stops at once.
	PreviousSecretExpiresIn int64 `json:"previous_secret_expires_in"`
}

// decodeOptionalJSON is decodeJSON for a body that may be left out
// entirely (a rotation with its defaults).
func decodeOptionalJSON(c echo.Context, dst any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return fmt.Errorf("reading request body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	c.Request().Body = io.NopCloser(bytes.NewReader(body))
	return decodeJSON(c, dst)
}

// overlapOf checks a rotation's overlap in seconds.
func overlapOf(field string, secs int64) (time.Duration, error) {
	if secs < 0 || secs > int64(MaxSecretOverlap/time.Second) {
		return 0, invalid(field, "%s must be between 0 and %d seconds (7 days)", field, int64(MaxSecretOverlap/time.Second))
	}
	return time.Duration(secs) * time.Second, nil
}

// rotateApplicationSecret mints a new client secret for a confidential
// application, shown once in the answer. With previous_secret_expires_in
// the replaced secret keeps authenticating the client until then, so that
// the vendor can deploy the new one without a failed token request; without
// it the old secret stops at once (a leaked secret). Every node sees the
// new secret at once: a refused secret makes a node re-read the application
// (broker's appCache), and the replaced one keeps its overlap.
func (a *API) rotateApplicationSecret(c echo.Context) error {
	cur, err := a.loadApplication(c)
	if err != nil {
		return err
	}
	var req rotateApplicationSecretRequest
	if err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	overlap, err := overlapOf("previous_secret_expires_in", req.PreviousSecretExpiresIn)
	if err != nil {
		return err
	}
	if cur.Public {
		return conflict(httpserver.CodeConflict, "a public application has no client secret to rotate", nil)
	}
	secret := secrets.NewToken(ClientSecretPrefix)
	var app store.Application
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		app, err = a.store.RotateApplicationSecret(ctx, cur.ID, secrets.HashToken(secret), overlap)
		if err != nil {
			return fmt.Errorf("rotate application secret: %w", err)
		}
		return a.auditVendor(ctx, c, "application.secret_rotated", applicationResource(app),
			map[string]any{"previous_secret_expires_at": app.PreviousSecretExpiresAt})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("application")
	case errors.Is(err, store.ErrInvalid):
		return conflict(httpserver.CodeConflict, "a public application has no client secret to rotate", err)
	case errors.Is(err, store.ErrConflict):
		return conflict(httpserver.CodeConflict, "another rotation of this application's secret committed at the same moment: its answer holds the current secret", err)
	case err != nil:
		return err
	}
	a.forgetApplication(c.Request().Context(), app.ID)
	op, _ := operatorFrom(c.Request().Context())
	a.log.InfoContext(c.Request().Context(), "application secret rotated", "application_id", app.ID,
		"api_key_id", op.ID, "overlap_seconds", req.PreviousSecretExpiresIn)
	out := toApplicationJSON(app)
	out.ClientSecret = &secret
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// endApplicationSecretOverlap stops the secret the last rotation kept
// working, before its overlap ends: for a replaced secret found leaked
// once the application already runs with the new one (rotating again
// would stop that one too). Idempotent: 204 whether or not one was still
// working; the vendor trail records only an overlap actually ended. Every
// node drops the secret at once, as after a rotation.
func (a *API) endApplicationSecretOverlap(c echo.Context) error {
	cur, err := a.loadApplication(c)
	if err != nil {
		return err
	}
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		app, ended, err := a.store.EndApplicationSecretOverlap(ctx, cur.ID)
		if err != nil || !ended {
			return err
		}
		return a.auditVendor(ctx, c, "application.previous_secret_revoked", applicationResource(app), nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("application")
	}
	if err != nil {
		return fmt.Errorf("end application secret overlap: %w", err)
	}
	a.forgetApplication(c.Request().Context(), cur.ID)
	return c.NoContent(http.StatusNoContent)
}
