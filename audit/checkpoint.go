package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/store"
)

// A checkpoint is the head of every audit chain at one moment, signed with
// the broker's token-signing key. Macs stop whoever can write the database
// from re-computing a chain up to its last mac, but not from cutting its
// newest rows (what is left still holds), rewriting the rows after the
// last mac (or stripping the macs from the rewritten rows), or removing a
// tenant's chain whole; a
// checkpoint published where that writer cannot reach (a log line shipped
// off the host, a file elsewhere) catches these: every chain must still
// reach its checkpointed head. Signed, a checkpoint can be kept anywhere:
// a changed one (a head moved back to hide a cut) no longer verifies, and
// the signing keys are sealed under the master key, so the same writer
// cannot sign another.

// CheckpointType is the JWS "typ" of a checkpoint, so that no other token
// the broker signs (an ID token, a logout token) passes for one.
const CheckpointType = "idbroker-audit-checkpoint"

// checkpointAlg is what checkpoints are signed with: RS256, the key every
// broker has.
const checkpointAlg = "RS256"

// Head is a chain's head in a checkpoint: its number of rows and the hash
// of the newest, or for an erased tenant the hash of its erase report.
type Head struct {
	Rows   int    `json:"rows"`
	Hash   string `json:"hash"`
	Erased bool   `json:"erased,omitempty"`
}

// Checkpoint is every chain's head by tenant id; the operators' trail is
// under OperatorsChain.
type Checkpoint struct {
	IssuedAt time.Time
	Chains   map[string]Head
}

// OperatorsChain names the operators' trail among the tenants' chains.
const OperatorsChain = "operators"

// checkpointJSON is the signed payload: chains sorted, so that one state
// of the log always signs the same bytes.
type checkpointJSON struct {
	Type     string      `json:"typ"`
	IssuedAt int64       `json:"iat"`
	Chains   []chainHead `json:"chains"`
}

type chainHead struct {
	Chain string `json:"chain"`
	Head
}

// Signer signs a payload as a compact JWS with the broker's active key for
// alg (signing.Manager).
type Signer interface {
	Sign(alg string, payload []byte, typ string) (string, error)
}

// Sign is the checkpoint as a compact JWS.
func (c Checkpoint) Sign(s Signer) (string, error) {
	p := checkpointJSON{Type: CheckpointType, IssuedAt: c.IssuedAt.Unix(), Chains: make([]chainHead, 0, len(c.Chains))}
	for id, h := range c.Chains {
		p.Chains = append(p.Chains, chainHead{id, h})
	}
	slices.SortFunc(p.Chains, func(a, b chainHead) int {
		switch {
		case a.Chain < b.Chain:
			return -1
		case a.Chain > b.Chain:
			return 1
		}
		return 0
	})
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(checkpointAlg, b, CheckpointType)
	if err != nil {
		return "", fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return jws, nil
}

// ErrCheckpoint is a checkpoint that does not verify: not a JWS, signed by
// no key of keys (forged, changed, or the key retired since), or not a
// checkpoint.
var ErrCheckpoint = errors.New("audit: checkpoint does not verify")

// OpenCheckpoint verifies jws against keys (the broker's public signing
// keys, opened from the database under the master key) and returns the
// checkpoint it signs.
func OpenCheckpoint(jws string, keys jose.JSONWebKeySet) (Checkpoint, error) {
	sig, err := jose.ParseSigned(jws, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if len(sig.Signatures) != 1 {
		return Checkpoint{}, fmt.Errorf("%w: %d signatures", ErrCheckpoint, len(sig.Signatures))
	}
	hdr := sig.Signatures[0].Header
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != CheckpointType {
		return Checkpoint{}, fmt.Errorf("%w: typ %q is not %s", ErrCheckpoint, typ, CheckpointType)
	}
	found := keys.Key(hdr.KeyID)
	if len(found) == 0 {
		return Checkpoint{}, fmt.Errorf("%w: signed with key %q, which is not one of the broker's signing keys (forged, or the key was retired since)", ErrCheckpoint, hdr.KeyID)
	}
	payload, err := sig.Verify(found[0])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: signature of key %s: %v", ErrCheckpoint, hdr.KeyID, err)
	}
	var p checkpointJSON
	if err := json.Unmarshal(payload, &p); err != nil || p.Type != CheckpointType {
		return Checkpoint{}, fmt.Errorf("%w: not a checkpoint payload", ErrCheckpoint)
	}
	c := Checkpoint{IssuedAt: time.Unix(p.IssuedAt, 0).UTC(), Chains: make(map[string]Head, len(p.Chains))}
	for _, h := range p.Chains {
		if _, dup := c.Chains[h.Chain]; dup || h.Rows < 0 {
			return Checkpoint{}, fmt.Errorf("%w: chain %s listed twice or with a negative count", ErrCheckpoint, h.Chain)
		}
		c.Chains[h.Chain] = h.Head
	}
	return c, nil
}

// HeadStore is the part of the store a Checkpointer reads: the head of
// every chain, without walking them.
type HeadStore interface {
	ListTenants(ctx context.Context, p store.Page) ([]store.Tenant, string, error)
	AuditHead(ctx context.Context) (rows int, hash string, err error)
	OperatorAuditHead(ctx context.Context) (rows int, hash string, err error)
	TenantErasures(ctx context.Context) ([]store.AuditEvent, error)
}

// Checkpointer publishes a signed checkpoint now and then, as a log line
// ("audit checkpoint", with checkpoint=<JWS>): shipped off the host with
// the logs, it is out of reach of whoever can write the database, and
// `idbroker audit verify --checkpoint` reads it back from such a log.
type Checkpointer struct {
	Store  HeadStore
	Signer Signer
	Log    *slog.Logger
	Now    func() time.Time // time.Now when nil
}

// Take reads every chain's head and signs them. The heads are what the
// database says now, unverified: a checkpoint taken after a tampering
// records it; `audit verify` of the log against an older checkpoint is
// what catches it.
func (c *Checkpointer) Take(ctx context.Context) (Checkpoint, string, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := Checkpoint{IssuedAt: now().UTC(), Chains: map[string]Head{}}
	for p := (store.Page{Limit: 100}); ; {
		page, next, err := c.Store.ListTenants(ctx, p)
		if err != nil {
			return cp, "", fmt.Errorf("audit: checkpoint: list tenants: %w", err)
		}
		for _, t := range page {
			rows, hash, err := c.Store.AuditHead(store.WithTenant(ctx, t.ID))
			if err != nil {
				return cp, "", fmt.Errorf("audit: checkpoint: %w", err)
			}
			cp.Chains[t.ID] = Head{Rows: rows, Hash: hash}
		}
		if next == "" {
			break
		}
		p.After = next
	}
	erased, err := c.Store.TenantErasures(ctx)
	if err != nil {
		return cp, "", fmt.Errorf("audit: checkpoint: %w", err)
	}
	for _, r := range erased {
		cp.Chains[r.TenantID] = Head{Hash: r.Hash, Erased: true}
	}
	rows, hash, err := c.Store.OperatorAuditHead(ctx)
	if err != nil {
		return cp, "", fmt.Errorf("audit: checkpoint: %w", err)
	}
	cp.Chains[OperatorsChain] = Head{Rows: rows, Hash: hash}
	jws, err := cp.Sign(c.Signer)
	return cp, jws, err
}

// Run logs a checkpoint at once and then every interval, until ctx is
// done. A checkpoint that fails is logged as an error and tried again at
// the next tick.
func (c *Checkpointer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if cp, jws, err := c.Take(ctx); err != nil {
			if ctx.Err() == nil {
				c.Log.Error("audit checkpoint failed", "err", err)
			}
		} else {
			c.Log.Info("audit checkpoint", "chains", len(cp.Chains), "checkpoint", jws)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
