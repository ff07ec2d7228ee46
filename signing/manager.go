package signing

import (
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/store"
)

// KeyStore is the part of the store a Manager uses; *store.DB satisfies it.
type KeyStore interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	CreateSigningKey(ctx context.Context, k store.SigningKey) (store.SigningKey, error)
	// SigningKeys lists the active and overlap keys, private halves opened.
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	SetSigningKeyStatus(ctx context.Context, id string, status store.SigningKeyStatus, retireAt *time.Time) error
}

// DefaultOverlap is how long a rotated-out key stays in the JWKS.
//
// It must outlive every JWT the key signed: id_tokens and RFC 9068 access
// tokens (minutes to hours; an application may raise its lifetimes), plus
// the Run interval during which other nodes may still sign with the old key,
// plus the time relying parties cache the JWKS (commonly up to a day).
// Refresh tokens are opaque and never signed, so they do not count. A week
// covers all of that with room to spare; the only cost is one more key in
// the JWKS.
const DefaultOverlap = 7 * 24 * time.Hour

// DefaultPublishLead is how long a new key is published before it signs
// (publish, then sign): the JWKS's Cache-Control max-age (300 s), plus the
// Run interval in which other nodes pick the key up and a margin. A relying
// party that caches the JWKS as told has the new key before it meets a
// token signed with it, whether or not it refetches on an unknown kid.
const DefaultPublishLead = 6 * time.Minute

// fallbackMinLife is how much longer a replaced key must stay published for
// it to keep signing while its successor is being published: tokens it
// signs must verify for their whole life. A key retiring sooner (a
// rotation with a short --overlap) gives way to the new key at once.
const fallbackMinLife = 24 * time.Hour

// DefaultReloadInterval is how often Run refreshes the snapshot when given
// no interval: the longest another node keeps signing with a rotated-out
// key.
const DefaultReloadInterval = 30 * time.Second

// Options tune a Manager; the zero value gives the defaults.
type Options struct {
	// RSABits is the modulus size of new RS256 keys; 0 means
	// DefaultRSABits. Values below 2048 are refused.
	RSABits int
	// Overlap is the window EnsureKeys uses when it demotes a duplicate
	// active key, and Rotate's default; 0 means DefaultOverlap.
	Overlap time.Duration
	// PublishLead is how long a new active key is only published before
	// it signs; 0 means DefaultPublishLead, a negative value none (the
	// new key signs at once).
	PublishLead time.Duration
	// Now is the clock; nil means time.Now. Tests move it forward to
	// retire keys.
	Now func() time.Time
	// Logger receives Run's errors, which have no caller to return to; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Manager signs with the broker's active keys and serves the JWKS from an
// in-memory snapshot of the key store, and performs the key lifecycle. It is
// safe for concurrent use.
type Manager struct {
	ks      KeyStore
	rsaBits int
	overlap time.Duration
	lead    time.Duration
	now     func() time.Time
	log     *slog.Logger

	snap atomic.Pointer[snapshot]
	// readAt is when the last read of the keys began (UnixNano), failed
	// or not (Fresh).
	readAt atomic.Int64
	// reloadMu orders reloads, so a slow read of older keys can never
	// replace the snapshot of a newer one.
	reloadMu sync.Mutex

	// refreshMu guards next and lastRefresh (Refresh).
	refreshMu   sync.Mutex
	next        *refresh
	lastRefresh time.Time
}

// refresh is one reload that Refresh callers share: it starts after the
// last of them joined, and done is closed when it has ended (err set).
type refresh struct {
	done chan struct{}
	err  error
}

// NewManager returns a Manager over ks. It does no I/O: call EnsureKeys
// before serving, then Run in the background.
func NewManager(ks KeyStore, opts Options) (*Manager, error) {
	m := &Manager{
		ks:      ks,
		rsaBits: cmp.Or(opts.RSABits, DefaultRSABits),
		overlap: cmp.Or(opts.Overlap, DefaultOverlap),
		lead:    max(cmp.Or(opts.PublishLead, DefaultPublishLead), 0),
		now:     opts.Now,
		log:     opts.Logger,
	}
	if m.rsaBits < 2048 {
		return nil, fmt.Errorf("signing: RSA keys of %d bits are too small, use at least 2048", m.rsaBits)
	}
	if m.overlap < 0 {
		return nil, fmt.Errorf("signing: negative overlap %v", m.overlap)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	// Until the first load: no signer, and an empty but valid JWKS.
	m.snap.Store(&snapshot{
		jwks:     jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}},
		jwksJSON: []byte(`{"keys":[]}`),
	})
	return m, nil
}

// EnsureKeys creates an active key for each algorithm that has none, then
// loads the snapshot. It is idempotent and safe when several nodes start at
// once.
//
// Keys are generated before the transaction (RSA generation takes tens of
// milliseconds, too long to hold SQLite's write lock) and inserted only if
// the re-check inside it still finds the algorithm without an active key.
// Two nodes can still pass that check at once under PostgreSQL's READ
// COMMITTED. The SQL stores enforce one active key per algorithm with a
// unique index, so the loser's insert fails with store.ErrConflict, which
// EnsureKeys takes as "another node did it" and looks again. Should a store
// ever let both in, the newest active key wins everywhere — the rule the
// snapshot uses to choose a signer — and whichever node commits second sees
// both and demotes the older to overlap, so anything it signed in between
// stays verifiable.
func (m *Manager) EnsureKeys(ctx context.Context) error {
	// A conflict means another node created a key at the same moment; a
	// second look normally finds everything in place.
	var err error
	for range 3 {
		if err = m.ensure(ctx); !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("signing: ensure keys: %w", err)
	}
	return m.Reload(ctx)
}

func (m *Manager) ensure(ctx context.Context) error {
	keys, err := m.ks.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, alg := range algorithms() {
		if newestActive(keys, alg) == nil {
			missing = append(missing, alg)
		}
	}
	if len(missing) > 0 {
		fresh := make(map[string][]byte, len(missing))
		for _, alg := range missing {
			_, der, err := generate(alg, m.rsaBits)
			if err != nil {
				return err
			}
			fresh[alg] = der
		}
		err = m.ks.InTx(ctx, func(ctx context.Context) error {
			keys, err := m.ks.SigningKeys(ctx)
			if err != nil {
				return err
			}
			for _, alg := range missing {
				if newestActive(keys, alg) != nil {
					continue // another node got there first
				}
				if _, err := m.create(ctx, alg, fresh[alg]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	_, err = m.settle(ctx)
	return err
}

// Rotate makes a new active key for each algorithm and moves the previous
// active keys to overlap until now+overlap, in one transaction, then reloads
// the snapshot. overlap ≤ 0 means the Manager's default (DefaultOverlap
// unless Options said otherwise). It returns the new keys, without their
// private halves.
//
// The new keys are published at once but sign only after the publish lead
// (Options.PublishLead): until then every node goes on signing with the
// keys they replace, whose overlap keeps those tokens verifiable. A rotation that
// races another one may fail with store.ErrConflict; the other one stands.
func (m *Manager) Rotate(ctx context.Context, overlap time.Duration) ([]store.SigningKey, error) {
	if overlap <= 0 {
		overlap = m.overlap
	}
	fresh := make(map[string][]byte)
	for _, alg := range algorithms() {
		_, der, err := generate(alg, m.rsaBits)
		if err != nil {
			return nil, fmt.Errorf("signing: rotate: %w", err)
		}
		fresh[alg] = der
	}
	var created []store.SigningKey
	err := m.ks.InTx(ctx, func(ctx context.Context) error {
		created = created[:0]
		keys, err := m.ks.SigningKeys(ctx)
		if err != nil {
			return err
		}
		retireAt := m.now().Add(overlap).UTC()
		// Demote first: a store with a unique index on the active key of an
		// algorithm must not see two at once, even inside a transaction.
		for _, k := range keys {
			if k.Status != store.KeyActive {
				continue
			}
			if err := m.ks.SetSigningKeyStatus(ctx, k.ID, store.KeyOverlap, &retireAt); err != nil {
				return fmt.Errorf("demote %s: %w", k.ID, err)
			}
		}
		for _, alg := range algorithms() {
			k, err := m.create(ctx, alg, fresh[alg])
			if err != nil {
				return err
			}
			k.PrivateKey = nil
			created = append(created, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("signing: rotate: %w", err)
	}
	// A rotation racing this one may have left two active keys.
	if _, err := m.settle(ctx); err != nil {
		return nil, fmt.Errorf("signing: rotate: %w", err)
	}
	if err := m.Reload(ctx); err != nil {
		return created, err
	}
	return created, nil
}

// Retire moves overlap keys whose RetireAt has passed to retired, so they
// leave the JWKS, and demotes any duplicate active key (see EnsureKeys). It
// returns the ids of the keys it retired and reloads the snapshot. It is
// cheap when there is nothing to do — one read, no write transaction — so
// every node may call it on every tick.
func (m *Manager) Retire(ctx context.Context) ([]string, error) {
	retired, err := m.settle(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: retire: %w", err)
	}
	if err := m.Reload(ctx); err != nil {
		return retired, err
	}
	return retired, nil
}

// settle retires expired overlap keys and demotes every active key but the
// newest of its algorithm. It reads outside a transaction first, so the
// common case writes nothing, and re-reads inside one before writing.
func (m *Manager) settle(ctx context.Context) ([]string, error) {
	keys, err := m.ks.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if !m.unsettled(keys) {
		return nil, nil
	}
	var retired []string
	err = m.ks.InTx(ctx, func(ctx context.Context) error {
		retired = retired[:0]
		keys, err := m.ks.SigningKeys(ctx)
		if err != nil {
			return err
		}
		now := m.now()
		for _, k := range keys {
			switch {
			case k.Status == store.KeyOverlap && k.RetireAt != nil && !k.RetireAt.After(now):
				if err := m.ks.SetSigningKeyStatus(ctx, k.ID, store.KeyRetired, k.RetireAt); err != nil {
					return fmt.Errorf("retire %s: %w", k.ID, err)
				}
				retired = append(retired, k.ID)
			case k.Status == store.KeyActive && newestActive(keys, k.Alg).ID != k.ID:
				retireAt := now.Add(m.overlap).UTC()
				if err := m.ks.SetSigningKeyStatus(ctx, k.ID, store.KeyOverlap, &retireAt); err != nil {
					return fmt.Errorf("demote duplicate active %s: %w", k.ID, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return retired, nil
}

func (m *Manager) unsettled(keys []store.SigningKey) bool {
	now := m.now()
	for _, k := range keys {
		if k.Status == store.KeyOverlap && k.RetireAt != nil && !k.RetireAt.After(now) {
			return true
		}
		if k.Status == store.KeyActive && newestActive(keys, k.Alg).ID != k.ID {
			return true
		}
	}
	return false
}

func (m *Manager) create(ctx context.Context, alg string, der []byte) (store.SigningKey, error) {
	k, err := m.ks.CreateSigningKey(ctx, store.SigningKey{
		ID:         store.NewID(store.PrefixSigningKey),
		Alg:        alg,
		Status:     store.KeyActive,
		PrivateKey: der,
	})
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("create %s key: %w", alg, err)
	}
	return k, nil
}

// newestActive returns the active key of alg that signs: the most recently
// created, ties broken by id. Every node applies the same rule to the same
// rows, so all of them sign with the same key even while a race has left
// two active.
func newestActive(keys []store.SigningKey, alg string) *store.SigningKey {
	var best *store.SigningKey
	for i := range keys {
		k := &keys[i]
		if k.Alg != alg || k.Status != store.KeyActive {
			continue
		}
		if best == nil || newer(k.CreatedAt, k.ID, best.CreatedAt, best.ID) {
			best = k
		}
	}
	return best
}

func newer(at time.Time, id string, thanAt time.Time, thanID string) bool {
	if c := at.Compare(thanAt); c != 0 {
		return c > 0
	}
	return id > thanID
}

// Run reloads the snapshot every interval (DefaultReloadInterval if ≤ 0),
// retiring expired keys on the way, until ctx ends. Errors are logged and
// the previous snapshot kept: a node that briefly cannot reach the database
// goes on signing with keys that were valid a moment ago.
func (m *Manager) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultReloadInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.Retire(ctx); err != nil && ctx.Err() == nil {
				m.log.ErrorContext(ctx, "signing: refreshing keys failed; still using the previous ones", "err", err)
			}
		}
	}
}

// Reload replaces the in-memory snapshot with the keys in the store. A
// failed reload leaves the previous snapshot in place.
func (m *Manager) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.readAt.Store(time.Now().UnixNano())
	rows, err := m.ks.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signing: reload: %w", err)
	}
	s, err := buildSnapshot(rows, m.snap.Load(), m.now())
	if err != nil {
		return fmt.Errorf("signing: reload: %w", err)
	}
	m.snap.Store(s)
	return nil
}

// RefreshGap is the least time between the starts of two reloads that
// Refresh makes: token ids a node does not know (a forger's, or a key
// rotated in elsewhere) cost at most one read of the keys per gap.
const RefreshGap = 250 * time.Millisecond

// refreshTimeout bounds a reload Refresh makes, which its callers wait
// for.
const refreshTimeout = 5 * time.Second

// Refresh reloads the snapshot now, for a caller that must see every key
// in the store (one that met a key id it does not hold, the JWKS):
// another node, or `idbroker keys rotate`, may have made keys since this
// node's last reload (Run's interval), and a rotation with a short
// overlap signs with them at once. Every caller gets a reload
// that starts after it called, so a key committed before the token naming
// it was signed is found; callers meanwhile share one reload, and reloads
// start at most every RefreshGap. It returns when that reload has ended
// or ctx is done.
func (m *Manager) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	r := m.next
	if r == nil {
		r = &refresh{done: make(chan struct{})}
		m.next = r
		wait := max(m.lastRefresh.Add(RefreshGap).Sub(time.Now()), 0)
		go m.runRefresh(r, wait)
	}
	m.refreshMu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runRefresh waits out the gap, closes r to new callers and reloads. Its
// context is its own: it serves every caller that joined, not one.
func (m *Manager) runRefresh(r *refresh, wait time.Duration) {
	if wait > 0 {
		time.Sleep(wait)
	}
	m.refreshMu.Lock()
	m.next = nil
	m.lastRefresh = time.Now()
	m.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	r.err = m.Reload(ctx)
	close(r.done)
}

// Fresh makes sure the snapshot is no older than maxAge: when the keys
// were last read (or a read was tried) longer ago, it reloads them as
// Refresh does and returns when that reload has ended or ctx is done;
// otherwise it returns at once. For the JWKS, which must name keys
// rotated in elsewhere soon after, without a read per request: a node
// serving thousands of key-set requests a second reads the keys at most
// once per maxAge for them, and only the requests of that moment wait.
func (m *Manager) Fresh(ctx context.Context, maxAge time.Duration) error {
	if time.Since(time.Unix(0, m.readAt.Load())) < maxAge {
		return nil
	}
	return m.Refresh(ctx)
}

// Signer returns the key that signs for alg now: the active key, or while
// it is younger than the publish lead the newest key before it (see
// snapshot.signer). It is answered from the snapshot, without I/O.
func (m *Manager) Signer(alg string) (*Key, error) {
	e, err := m.snap.Load().signer(alg, m.now(), m.lead)
	if err != nil {
		return nil, err
	}
	return e.Key, nil
}

// Sign signs payload with the active key for alg as a compact JWS whose
// header carries kid and, when typ is not empty, typ ("JWT", "at+jwt",
// "logout+jwt").
func (m *Manager) Sign(alg string, payload []byte, typ string) (string, error) {
	e, err := m.snap.Load().signer(alg, m.now(), m.lead)
	if err != nil {
		return "", err
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(e.jose, opts)
	if err != nil {
		return "", fmt.Errorf("signing: sign with %s: %w", e.id, err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing: sign with %s: %w", e.id, err)
	}
	return jws.CompactSerialize()
}

// JWKS returns the public halves of the active and overlap keys (kid = key
// id, use "sig", alg set): active keys first, then overlap keys, RS256
// before ES256, newest first.
func (m *Manager) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: slices.Clone(m.snap.Load().jwks.Keys)}
}

// JWKSJSON returns JWKS encoded as JSON, encoded once per reload so the
// jwks_uri handler only writes bytes. The caller must not modify it.
func (m *Manager) JWKSJSON() []byte { return m.snap.Load().jwksJSON }

// snapshot is an immutable view of the keys; hot paths read it without
// locks or SQL.
type snapshot struct {
	active map[string]*entry // the newest active key of each algorithm
	// published holds each algorithm's published keys, newest first: the
	// candidates while the active key is younger than the publish lead.
	published map[string][]*entry
	byID      map[string]*Key // every published key, reused by the next reload
	jwks      jose.JSONWebKeySet
	jwksJSON  []byte
}

// Key is a signing key as token minting sees it. Its method set is that of
// zitadel/oidc's op.SigningKey, so the OpenID Provider can use it as is.
type Key struct {
	id   string
	alg  string
	priv crypto.Signer
	jose jose.SigningKey
}

// ID returns the key id, the "kid" of tokens it signs.
func (k *Key) ID() string { return k.id }

// SignatureAlgorithm returns RS256 or ES256.
func (k *Key) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.alg) }

// Key returns the private key, an *rsa.PrivateKey or *ecdsa.PrivateKey.
func (k *Key) Key() any { return k.priv }

// Signer returns the private key as a crypto.Signer.
func (k *Key) Signer() crypto.Signer { return k.priv }

// SigningKey returns the key ready for jose.NewSigner: its Key is a
// jose.JSONWebKey carrying the key id, so every signature names its kid.
func (k *Key) SigningKey() jose.SigningKey { return k.jose }

// entry is a published key in a snapshot.
type entry struct {
	*Key
	status    store.SigningKeyStatus
	createdAt time.Time
	retireAt  *time.Time
}

// signer picks the key that signs for alg at now. The newest active key
// signs once it has been published for lead; until then the newest key
// published for lead, if it stays published long enough (the replaced key
// in its overlap), goes on signing, so that nobody meets a kid before the
// JWKS they cached has it. Without such a key (a first key, or a replaced
// key retiring soon) the active key signs at once. Every node applies the
// same rule to the same rows and clock, so all switch together.
func (s *snapshot) signer(alg string, now time.Time, lead time.Duration) (*entry, error) {
	if alg != RS256 && alg != ES256 {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedAlg, alg)
	}
	e := s.active[alg]
	if e == nil {
		return nil, fmt.Errorf("%w for %s", ErrNoActiveKey, alg)
	}
	if lead <= 0 || !now.Before(e.createdAt.Add(lead)) {
		return e, nil
	}
	for _, p := range s.published[alg] {
		if p == e || now.Before(p.createdAt.Add(lead)) {
			continue
		}
		// The newest key published long enough, and no older one: a key
		// rotated out twice does not come back.
		if p.retireAt != nil && p.retireAt.Before(now.Add(fallbackMinLife)) {
			break
		}
		return p, nil
	}
	return e, nil
}

func buildSnapshot(rows []store.SigningKey, prev *snapshot, now time.Time) (*snapshot, error) {
	s := &snapshot{active: make(map[string]*entry), published: make(map[string][]*entry), byID: make(map[string]*Key)}
	var published []*entry
	for _, r := range rows {
		switch r.Status {
		case store.KeyActive:
		case store.KeyOverlap:
			// Past its window it is out of the JWKS now, not when Retire
			// gets round to it.
			if r.RetireAt != nil && !r.RetireAt.After(now) {
				continue
			}
		default:
			continue
		}
		// A key's private half never changes, so reuse the one parsed last
		// time: RSA parsing is the costly part of a reload.
		k := prev.byID[r.ID]
		if k == nil || k.alg != r.Alg {
			priv, err := parse(r.Alg, r.PrivateKey)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", r.ID, err)
			}
			k = &Key{id: r.ID, alg: r.Alg, priv: priv}
			k.jose = jose.SigningKey{
				Algorithm: jose.SignatureAlgorithm(r.Alg),
				Key:       jose.JSONWebKey{Key: priv, KeyID: r.ID, Algorithm: r.Alg, Use: "sig"},
			}
		}
		e := &entry{Key: k, status: r.Status, createdAt: r.CreatedAt, retireAt: r.RetireAt}
		s.byID[k.id] = k
		published = append(published, e)
		if e.status == store.KeyActive {
			if cur := s.active[e.alg]; cur == nil || newer(e.createdAt, e.id, cur.createdAt, cur.id) {
				s.active[e.alg] = e
			}
		}
	}
	// Active keys first, then overlap; RS256 before ES256; newest first.
	slices.SortFunc(published, func(a, b *entry) int {
		if a.status != b.status {
			if a.status == store.KeyActive {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(algIndex(a.alg), algIndex(b.alg)); c != 0 {
			return c
		}
		if c := b.createdAt.Compare(a.createdAt); c != 0 {
			return c
		}
		return cmp.Compare(b.id, a.id)
	})
	for _, e := range published {
		s.published[e.alg] = append(s.published[e.alg], e)
	}
	for alg := range s.published {
		slices.SortFunc(s.published[alg], func(a, b *entry) int {
			if c := b.createdAt.Compare(a.createdAt); c != 0 {
				return c
			}
			return cmp.Compare(b.id, a.id)
		})
	}
	s.jwks.Keys = make([]jose.JSONWebKey, 0, len(published)) // "keys": [], never null
	for _, e := range published {
		s.jwks.Keys = append(s.jwks.Keys, jose.JSONWebKey{
			Key:       e.priv.Public(),
			KeyID:     e.id,
			Algorithm: e.alg,
			Use:       "sig",
		})
	}
	b, err := json.Marshal(s.jwks)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	s.jwksJSON = b
	return s, nil
}

func algIndex(alg string) int { return slices.Index(algorithms(), alg) }
