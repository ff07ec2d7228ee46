package sessions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Sentinel errors.
var (
	// ErrNotFound is returned for a session, one-time value or key that does
	// not exist, has expired, was revoked or was already taken. Callers need
	// not tell these apart: each means "not valid now".
	ErrNotFound = errors.New("sessions: not found")
	// ErrExists is returned by Create for an ID already in use. IDs are
	// random, so it points to a bug in the caller.
	ErrExists = errors.New("sessions: already exists")
	// ErrInvalid is returned for arguments that cannot be stored: an empty ID,
	// a session already expired, a non-positive TTL or limit.
	ErrInvalid = errors.New("sessions: invalid argument")
)

// Session is a broker (SSO) session: one person, signed in through one
// tenant connection, until ExpiresAt or until revoked. Tokens issued to
// applications carry its ID as their sid claim.
type Session struct {
	ID           string // "ses_…", minted by the caller
	TenantID     string // "tnt_…"; must not contain ':'
	UserID       string // "usr_…"
	ConnectionID string // "conn_…", the upstream IdP connection; may be empty
	AuthTime     time.Time
	ExpiresAt    time.Time
	ACR          string            // authentication context class, as the IdP reported it
	AMR          []string          // authentication methods (RFC 8176), as the IdP reported them
	Extra        map[string]string // anything else the broker needs back; keep it small
	// Apps lists the applications (client IDs) that received tokens in
	// the session (AddApp), in no particular order: exactly those get a
	// back-channel logout when it ends. Create ignores it.
	Apps []string
	// Revoked holds, per application (client ID), when its grant in the
	// session was last revoked (RevokeClient): that application's tokens
	// and grants issued in that second or before are dead, while the
	// session and the other applications' tokens live on. Create ignores
	// it.
	Revoked map[string]time.Time
}

// GrantRevoked reports whether what clientID was issued in the session at
// issued (unix seconds: a token's iat, a grant's start) is revoked. Tokens
// carry whole seconds, so one issued in the second of the revocation
// counts as issued before it: the broker issues nothing for a grant in the
// second it was revoked (see the broker's authorize endpoint).
func (s Session) GrantRevoked(clientID string, issued int64) bool {
	at, ok := s.Revoked[clientID]
	return ok && issued <= at.Unix()
}

// clone returns s with its slice and map copied, so that neither a caller
// nor a store can change what the other holds.
func (s Session) clone() Session {
	s.AMR = slices.Clone(s.AMR)
	s.Extra = maps.Clone(s.Extra)
	s.Apps = slices.Clone(s.Apps)
	s.Revoked = maps.Clone(s.Revoked)
	return s
}

// brief is what a store remembers of a session an order ended
// (ForOrder): who it was, until when, and the applications owed a logout.
// The claims, methods and grant revocations are not needed to record its
// end, and would multiply the memory of a mass revocation.
func (s Session) brief() Session {
	return Session{
		ID:           s.ID,
		TenantID:     s.TenantID,
		UserID:       s.UserID,
		ConnectionID: s.ConnectionID,
		AuthTime:     s.AuthTime,
		ExpiresAt:    s.ExpiresAt,
		Apps:         slices.Clone(s.Apps),
	}
}

// validate reports whether s may be created at now.
func (s Session) validate(now time.Time) error {
	switch {
	case s.ID == "", s.TenantID == "", s.UserID == "":
		return fmt.Errorf("%w: session needs an ID, a tenant and a user", ErrInvalid)
	case strings.Contains(s.TenantID, ":"):
		// Index keys are "user:{tenant}:{user}"; a colon in the tenant would
		// make two different pairs share one key.
		return fmt.Errorf("%w: tenant ID %q contains ':'", ErrInvalid, s.TenantID)
	case !s.ExpiresAt.After(now):
		return fmt.Errorf("%w: session %s expires in the past", ErrInvalid, s.ID)
	}
	return nil
}

// Reasons a Revocation is published: which call ended the sessions. Why the
// caller made that call (logout, admin action, SCIM deprovisioning) belongs
// in its own audit log.
const (
	ReasonSession    = "session"    // Revoke
	ReasonUser       = "user"       // RevokeUser
	ReasonTenant     = "tenant"     // RevokeTenant
	ReasonConnection = "connection" // RevokeConnection
	// ReasonClient is RevokeClient: the one session in SessionIDs lives
	// on, and only ClientID's grant in it ended. Subscribers that cache a
	// session read it again.
	ReasonClient = "client"
	// ReasonResync carries no session IDs: the subscription was interrupted
	// (a Redis failover, a dropped connection) and revocations made meanwhile
	// may have been missed. Caches must drop everything they hold.
	ReasonResync = "resync"
)

// Revocation tells subscribers which sessions ended. It lists only sessions
// that were live when revoked.
type Revocation struct {
	SessionIDs   []string `json:"session_ids"`
	TenantID     string   `json:"tenant_id,omitempty"`
	UserID       string   `json:"user_id,omitempty"`       // set for ReasonUser and ReasonSession
	ConnectionID string   `json:"connection_id,omitempty"` // set for ReasonConnection
	ClientID     string   `json:"client_id,omitempty"`     // set for ReasonClient
	Reason       string   `json:"reason"`
	// Down is set on the ReasonResync sent when the subscription broke:
	// until the next ReasonResync (sent once it is back), revocations
	// made elsewhere are not heard, so nothing may be cached.
	Down bool `json:"-"`
}

// Store keeps broker sessions and fans their revocations out to every node.
// Implementations are safe for concurrent use.
type Store interface {
	// Create stores s until s.ExpiresAt. It fails with ErrExists if the ID
	// is taken and ErrInvalid if s lacks an ID, tenant or user or has
	// already expired.
	Create(ctx context.Context, s Session) error
	// Get returns the live session id, or ErrNotFound when it is missing,
	// expired or revoked.
	Get(ctx context.Context, id string) (Session, error)
	// Revoke ends session id. Revoking a missing or already revoked session
	// is not an error.
	Revoke(ctx context.Context, id string) error
	// RevokeSession is Revoke returning the session it ended (none if it
	// was already gone), with its Apps, for back-channel logouts.
	RevokeSession(ctx context.Context, id string) ([]Session, error)
	// RevokeClient revokes application clientID's grant in live session
	// id as of at (Session.Revoked keeps the latest such time), and
	// announces it with a ReasonClient Revocation. The session, its other
	// applications and its SSO cookie stay. A missing or ended session is
	// not an error: its tokens are dead already.
	RevokeClient(ctx context.Context, id, clientID string, at time.Time) error
	// AddApp records that application clientID received tokens in live
	// session id; ErrNotFound if the session has ended.
	AddApp(ctx context.Context, id, clientID string) error
	// RevokeUser ends every session of one user of one tenant and returns
	// them (in no particular order), so that the caller can send back-channel
	// logouts.
	RevokeUser(ctx context.Context, tenantID, userID string) ([]Session, error)
	// RevokeTenant ends every session of a tenant and returns them.
	RevokeTenant(ctx context.Context, tenantID string) ([]Session, error)
	// RevokeConnection ends every session made through one connection and
	// returns them.
	RevokeConnection(ctx context.Context, tenantID, connectionID string) ([]Session, error)
	// ListUser returns the live sessions of one user of one tenant, in no
	// particular order.
	ListUser(ctx context.Context, tenantID, userID string) ([]Session, error)
	// Subscribe calls fn with every revocation made from now on, on any
	// node, until ctx is done. It returns once the subscription is active,
	// so nothing revoked after it returns is missed. fn is called from one
	// goroutine, in order, and should not block for long: revocations queue
	// up behind it.
	Subscribe(ctx context.Context, fn func(Revocation)) error
}

// GrantSubject is the subject of a ReasonClient revocation kept for
// replay (Rewindable.RevokeBefore) or queued: application clientID's grant
// in session sessionID. IDs hold no spaces.
func GrantSubject(sessionID, clientID string) string { return sessionID + " " + clientID }

// ParseGrantSubject undoes GrantSubject.
func ParseGrantSubject(subject string) (sessionID, clientID string, ok bool) {
	sessionID, clientID, ok = strings.Cut(subject, " ")
	return sessionID, clientID, ok && sessionID != "" && clientID != ""
}

// OnceCache remembers keys and one-time values across all nodes, for replay
// protection (SAML assertion IDs, nonces) and single-use secrets (OIDC state,
// authorization codes, setup links).
type OnceCache interface {
	// Remember records key for ttl and reports whether it was new. False
	// means the key was seen before: a replay.
	Remember(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Put stores value under key for ttl, for a single Take. It replaces
	// any value already there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Take returns the value under key and deletes it in one step, or
	// ErrNotFound. Of any number of racing Takes, exactly one wins.
	Take(ctx context.Context, key string) ([]byte, error)
	// Spend is Take that, in the same step, keeps the value under spentKey
	// for ttl: the record that tells a spent value presented again (a
	// reused authorization code) from an unknown one. Of any number of
	// racing Spends and Takes, exactly one wins.
	Spend(ctx context.Context, key, spentKey string, ttl time.Duration) ([]byte, error)
	// Peek returns the value under key without taking it, or ErrNotFound.
	// It answers "is this one-time value still unspent?" (introspecting a
	// refresh token) and promises nothing about a Take that follows.
	Peek(ctx context.Context, key string) ([]byte, error)
}

// Limiter counts requests against per-key budgets shared by all nodes.
type Limiter interface {
	// Allow spends one request of key's budget of limit requests per
	// window. The budget refills smoothly (GCRA): a request is allowed
	// again window/limit after the bucket emptied, not at the end of a
	// fixed window.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (Decision, error)
}

// Decision is the outcome of one Limiter.Allow, with what a 429 response
// needs for its Retry-After and X-RateLimit-* headers.
type Decision struct {
	Allowed    bool
	Limit      int           // the limit asked for
	Remaining  int           // requests still allowed right now
	RetryAfter time.Duration // when refused: how long until one request is allowed
}

// checkTTL validates the key and TTL shared by OnceCache methods.
func checkTTL(key string, ttl time.Duration) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: non-positive TTL %v", ErrInvalid, ttl)
	}
	return nil
}

// gcraInterval validates a limit and returns its emission interval: the
// time one request's worth of budget takes to refill.
func gcraInterval(key string, limit int, window time.Duration) (time.Duration, error) {
	if key == "" {
		return 0, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if limit <= 0 || window <= 0 || window/time.Duration(limit) < time.Microsecond {
		return 0, fmt.Errorf("%w: limit %d per %v", ErrInvalid, limit, window)
	}
	return window / time.Duration(limit), nil
}
