package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// errExpired is a pending request, code or refresh token that is gone:
// used, expired, or never issued.
var errExpired = errors.New("broker: expired or unknown")

// pending is an authorization request between /authorize and the code:
// validated by op, waiting for routing and the upstream login. It lives in
// the OnceCache so that any node can finish it.
type pending struct {
	ID            string   `json:"id"`
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	ResponseMode  string   `json:"response_mode,omitempty"`
	State         string   `json:"state,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	Scopes        []string `json:"scopes"`
	CodeChallenge string   `json:"code_challenge,omitempty"` // S256 only
	PromptLogin   bool     `json:"prompt_login,omitempty"`
	PromptNone    bool     `json:"prompt_none,omitempty"`
	MaxAge        *int64   `json:"max_age,omitempty"` // seconds
	Hints         hints    `json:"hints"`
	// HintSub is the sub of a verified id_token_hint: the user the
	// application expects; a session of anyone else is not reused.
	HintSub string    `json:"hint_sub,omitempty"`
	Expires time.Time `json:"expires"`
	// Set once routed: the upstream login must come back on this connection.
	TenantID     string `json:"tenant_id,omitempty"`
	ConnectionID string `json:"connection_id,omitempty"`
	// Only when tracing: the traceparent of the authorization request,
	// which the sign-in's later steps join, and when the browser was sent
	// to the IdP (the start of the upstream round trip's span).
	Trace string    `json:"trace,omitempty"`
	Begun time.Time `json:"begun,omitzero"`
	// Browser is the hash of the browser's login-binding cookie, set when
	// the browser is sent to the IdP (see bindBrowser).
	Browser string `json:"browser,omitempty"`
	// Held is the browser's SSO session when it was sent to the IdP
	// (heldSessions), which the sign-in may replace.
	Held []string `json:"held,omitempty"`
}

func pendingKey(id string) string { return "broker:authreq:" + id }

func (p *Provider) savePending(ctx context.Context, a pending) error {
	ttl := a.Expires.Sub(p.now())
	if ttl <= 0 {
		return errExpired
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("broker: encode request: %w", err)
	}
	if err := p.once.Put(ctx, pendingKey(a.ID), b, ttl); err != nil {
		return fmt.Errorf("broker: save request: %w", err)
	}
	return nil
}

// takePending removes and returns request id: the upstream login that
// finishes it can do so once.
func (p *Provider) takePending(ctx context.Context, id string) (pending, error) {
	return p.readPending(ctx, id, p.once.Take)
}

// loadPending returns request id and leaves it for the next step. It only
// reads: the completion alone takes the request (takePending), and taking
// it here to put it back cost two round trips and left a moment in which
// the request seemed gone.
func (p *Provider) loadPending(ctx context.Context, id string) (pending, error) {
	return p.readPending(ctx, id, p.once.Peek)
}

// readPending reads request id with read (the cache's Take or Peek).
func (p *Provider) readPending(ctx context.Context, id string, read func(ctx context.Context, key string) ([]byte, error)) (pending, error) {
	var a pending
	if id == "" || len(id) > 128 {
		return a, errExpired
	}
	b, err := read(ctx, pendingKey(id))
	if errors.Is(err, sessions.ErrNotFound) {
		return a, errExpired
	}
	if err != nil {
		return a, fmt.Errorf("broker: load request: %w", err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("broker: decode request: %w", err)
	}
	// The cache expires it to the millisecond; the request knows better.
	if !p.now().Before(a.Expires) {
		return a, errExpired
	}
	return a, nil
}

// takeJSON takes a one-time record (a spent code's) and decodes it into v.
func (p *Provider) takeJSON(ctx context.Context, key string, v any) error {
	b, err := p.once.Take(ctx, key)
	return decodeRecord(b, err, v)
}

// peekJSON reads a record like takeJSON but leaves it in place.
func (p *Provider) peekJSON(ctx context.Context, key string, v any) error {
	b, err := p.once.Peek(ctx, key)
	return decodeRecord(b, err, v)
}

// decodeRecord decodes record b, read with err from the once cache, into
// v: errExpired when there is none.
func decodeRecord(b []byte, err error, v any) error {
	if errors.Is(err, sessions.ErrNotFound) {
		return errExpired
	}
	if err != nil {
		return fmt.Errorf("broker: load record: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("broker: decode record: %w", err)
	}
	return nil
}
