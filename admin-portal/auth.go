package adminportal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// APIKeyPrefix starts every operator API key, so that a leaked key is
// recognisable to people and secret scanners.
const APIKeyPrefix = "idb_sk"

// displayPrefixLen is how much of a key is kept in the clear to tell keys
// apart: "idb_sk_" and four random characters (24 of 256 bits).
const displayPrefixLen = len(APIKeyPrefix) + 1 + 4

// maxKeyLen bounds what is hashed and looked up; real keys are ~50 bytes.
const maxKeyLen = 256

// CreateAPIKey makes a new operator API key named name. The plaintext is
// returned once, to be shown to the operator; only its SHA-256 and a short
// display prefix are stored.
func CreateAPIKey(ctx context.Context, st APIKeys, name string) (plaintext string, key store.APIKey, err error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", store.APIKey{}, errors.New("adminportal: an API key needs a name")
	}
	plaintext = secrets.NewToken(APIKeyPrefix)
	key, err = st.CreateAPIKey(ctx, store.APIKey{
		ID:     store.NewID(store.PrefixAPIKey),
		Name:   name,
		Hash:   secrets.HashToken(plaintext),
		Prefix: plaintext[:displayPrefixLen],
	})
	if err != nil {
		return "", store.APIKey{}, fmt.Errorf("adminportal: create API key %q: %w", name, err)
	}
	return plaintext, key, nil
}

// BootstrapKeyName names the key EnsureBootstrapKey stores.
const BootstrapKeyName = "bootstrap"

// BootstrapActor is who the operators' trail names for the bootstrap key's
// creation: the broker itself, at start, from its environment.
var BootstrapActor = store.Actor{Type: "system", ID: "idbroker-serve"}

// EnsureBootstrapKey makes the exact key given (IDBROKER_BOOTSTRAP_API_KEY)
// a valid operator key, stored hashed. It is idempotent, across restarts
// and across nodes starting together. A bootstrap key that was revoked
// stays revoked: it is an error, not revived. When it stores the key, an
// api_key.created row goes to the operators' trail in the same
// transaction, as for a key made with `idbroker apikey create`: once,
// whatever the number of restarts or nodes.
func EnsureBootstrapKey(ctx context.Context, st BootstrapStore, key string) error {
	if err := checkKeySyntax(key); err != nil {
		return fmt.Errorf("adminportal: bootstrap API key: %w", err)
	}
	hash := secrets.HashToken(key)
	if _, err := st.AuthenticateAPIKey(ctx, hash); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("adminportal: look up bootstrap API key: %w", err)
	}
	prefix := key
	if len(prefix) > displayPrefixLen {
		prefix = prefix[:displayPrefixLen]
	}
	err := st.InTx(ctx, func(ctx context.Context) error {
		k, err := st.CreateAPIKey(ctx, store.APIKey{
			ID:     store.NewID(store.PrefixAPIKey),
			Name:   BootstrapKeyName,
			Hash:   hash,
			Prefix: prefix,
		})
		if err != nil {
			return err
		}
		b, err := json.Marshal(map[string]any{"id": k.ID, "name": k.Name, "from": "IDBROKER_BOOTSTRAP_API_KEY"})
		if err != nil {
			return err
		}
		_, err = st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
			Actor: BootstrapActor, Action: "api_key.created",
			Resource: store.Resource{Type: "api_key", ID: k.ID, Name: k.Name}, Context: b,
		})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		// Another node stored it first, or it exists revoked. Checked
		// after the transaction: on PostgreSQL a failed statement ends
		// the one it was in.
		if _, aerr := st.AuthenticateAPIKey(ctx, hash); aerr == nil {
			return nil
		}
		return errors.New("adminportal: the bootstrap API key was revoked; set a new IDBROKER_BOOTSTRAP_API_KEY")
	}
	if err != nil {
		return fmt.Errorf("adminportal: store bootstrap API key: %w", err)
	}
	return nil
}

// checkKeySyntax refuses keys that cannot travel in a bearer header.
func checkKeySyntax(key string) error {
	if key == "" {
		return errors.New("key is empty")
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("key is longer than %d bytes", maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if b := key[i]; b <= ' ' || b >= 0x7f {
			return errors.New("key must be printable ASCII without spaces")
		}
	}
	return nil
}

type operatorKey struct{}

// withOperator and operatorFrom carry the authenticated API key.
func withOperator(ctx context.Context, k store.APIKey) context.Context {
	return context.WithValue(ctx, operatorKey{}, k)
}

func operatorFrom(ctx context.Context) (store.APIKey, bool) {
	k, ok := ctx.Value(operatorKey{}).(store.APIKey)
	return k, ok
}

// OperatorKeyID returns the id of the API key that authenticated the
// request ctx belongs to: the key of the operator API's rate limit.
func OperatorKeyID(ctx context.Context) (string, bool) {
	k, ok := operatorFrom(ctx)
	return k.ID, ok && k.ID != ""
}

// authenticate admits requests bearing an unrevoked operator API key.
func (a *API) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Whatever the outcome, a 401 must say how to authenticate; a key
		// that was sent and refused is invalid_token (RFC 6750 §3.1), which
		// tells a client to get a new key rather than to send one.
		deny := func(msg string) error {
			if a.authFailures != nil {
				if err := a.authFailures.Failed(c); err != nil {
					return err
				}
			}
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="idbroker", error="invalid_token"`)
			return unauthorized(msg)
		}
		key, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="idbroker"`)
			return unauthorized("an API key is required: send Authorization: Bearer <api key>")
		}
		// An address that has sent too many refused keys is answered
		// before its next one costs a lookup.
		if a.authFailures != nil {
			if err := a.authFailures.Check(c); err != nil {
				return err
			}
		}
		if checkKeySyntax(key) != nil {
			return deny("the API key is invalid or revoked")
		}
		ctx := c.Request().Context()
		k, err := a.store.AuthenticateAPIKey(ctx, secrets.HashToken(key))
		if errors.Is(err, store.ErrNotFound) {
			return deny("the API key is invalid or revoked")
		}
		if err != nil {
			return fmt.Errorf("authenticating API key: %w", err)
		}
		// Record the key's use (at most once a minute), so that an operator
		// rotating keys sees whether the old one is still in use. A failed
		// write (a read-only database) is no reason to refuse the call.
		if now := time.Now(); k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= store.APIKeyTouchInterval {
			if err := a.store.TouchAPIKey(ctx, k.ID, now); err != nil {
				a.touchLog.Warn(ctx, a.log, "recording API key use failed", "api_key_id", k.ID, "err", err)
			}
		}
		c.SetRequest(c.Request().WithContext(withOperator(ctx, k)))
		return next(c)
	}
}

// bearerToken extracts the credential of an RFC 6750 Authorization header;
// the scheme is case-insensitive.
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// loadTenant resolves the :id of tenant routes. An operator may act on any
// tenant, but the store must still be told which one: it is set here, once,
// before any handler runs a tenant-scoped call. Malformed ids are 404s like
// unknown ones.
func (a *API) loadTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if !store.HasPrefix(id, store.PrefixTenant) {
			return notFound("tenant")
		}
		ctx := withTenant(c.Request().Context(), id)
		t, err := a.store.Tenant(ctx)
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.Status == store.TenantDeleted) {
			return notFound("tenant") // a deleted tenant is out of service; see restoreTenant
		}
		if err != nil {
			return fmt.Errorf("loading tenant %s: %w", id, err)
		}
		c.SetRequest(c.Request().WithContext(ctx))
		c.Set(tenantCtxKey, t)
		return next(c)
	}
}

// withTenant scopes ctx to tenantID for the store and records the tenant
// for the request's access log line: what every route that learns its
// tenant from the URL does.
func withTenant(ctx context.Context, tenantID string) context.Context {
	ctx = store.WithTenant(ctx, tenantID)
	httpserver.SetTenantID(ctx, tenantID)
	return ctx
}

const tenantCtxKey = "adminportal.tenant"

// tenantOf returns the tenant loadTenant found.
func tenantOf(c echo.Context) store.Tenant {
	t, _ := c.Get(tenantCtxKey).(store.Tenant)
	return t
}
