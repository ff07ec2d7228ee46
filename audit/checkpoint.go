package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	// A checkpoint logged in parts (SignParts) names the whole it belongs
	// to and its place in it; one signed whole (Sign) has none of these.
	ID    string `json:"cid,omitempty"`
	Part  int    `json:"part,omitempty"`
	Parts int    `json:"parts,omitempty"`
}

// PartChains is how many chains one part of a logged checkpoint holds, so
// that its log line stays under 16 KiB (about 13 KiB: a chain is some 120
// bytes of JSON, a third more in the JWS). A checkpoint of 5,000 tenants
// in one line was some 800 KiB, past what log pipelines carry whole
// (Docker splits lines at 16 KiB, journald at 48 KiB, many shippers cut
// at 256 KiB): the checkpoint meant to leave the host with the logs did
// not arrive readable.
const PartChains = 80

type chainHead struct {
	Chain string `json:"chain"`
	Head
}

// Signer signs a payload as a compact JWS with the broker's active key for
// alg (signing.Manager).
type Signer interface {
	Sign(alg string, payload []byte, typ string) (string, error)
}

// sorted is the checkpoint's chains in chain order.
func (c Checkpoint) sorted() []chainHead {
	out := make([]chainHead, 0, len(c.Chains))
	for id, h := range c.Chains {
		out = append(out, chainHead{id, h})
	}
	slices.SortFunc(out, func(a, b chainHead) int { return strings.Compare(a.Chain, b.Chain) })
	return out
}

// Sign is the checkpoint as one compact JWS (a file of its own: --write-checkpoint).
func (c Checkpoint) Sign(s Signer) (string, error) {
	return signPayload(s, checkpointJSON{Type: CheckpointType, IssuedAt: c.IssuedAt.Unix(), Chains: c.sorted()})
}

// SignParts is the checkpoint as compact JWSs of at most perChain chains
// each (PartChains when perChain <= 0), for a log: each part is signed and
// names the checkpoint it belongs to (a random id), its place and how many
// parts there are, so that a reader takes parts of one checkpoint only,
// and all of them (OpenCheckpoints). A checkpoint that fits in one part is
// one JWS, as Sign makes it.
func (c Checkpoint) SignParts(s Signer, perPart int) ([]string, error) {
	if perPart <= 0 {
		perPart = PartChains
	}
	chains := c.sorted()
	if len(chains) <= perPart {
		jws, err := c.Sign(s)
		return []string{jws}, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("audit: checkpoint id: %w", err)
	}
	n := (len(chains) + perPart - 1) / perPart
	out := make([]string, 0, n)
	for i := range n {
		part := chains[i*perPart : min(len(chains), (i+1)*perPart)]
		jws, err := signPayload(s, checkpointJSON{Type: CheckpointType, IssuedAt: c.IssuedAt.Unix(), Chains: part,
			ID: hex.EncodeToString(id[:]), Part: i + 1, Parts: n})
		if err != nil {
			return nil, err
		}
		out = append(out, jws)
	}
	return out, nil
}

func signPayload(s Signer, p checkpointJSON) (string, error) {
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
// checkpoint it signs. A part of a checkpoint logged in parts is refused:
// it holds some chains only (see OpenCheckpoints).
func OpenCheckpoint(jws string, keys jose.JSONWebKeySet) (Checkpoint, error) {
	c, p, err := OpenCheckpointPart(jws, keys)
	if err != nil {
		return Checkpoint{}, err
	}
	if p.Parts > 1 {
		return Checkpoint{}, fmt.Errorf("%w: part %d of %d of checkpoint %s, not a whole one", ErrCheckpoint, p.Part, p.Parts, p.ID)
	}
	return c, nil
}

// Part is where a JWS of SignParts stands in its checkpoint. ID is empty
// and Part and Parts 1 for a checkpoint signed whole.
type Part struct {
	ID          string
	Part, Parts int
}

// OpenCheckpoints verifies the JWSs of one checkpoint logged in parts and
// joins them: every part must verify, belong to the same checkpoint (its
// id and time) and be there once, and no chain may be in two parts.
func OpenCheckpoints(jwss []string, keys jose.JSONWebKeySet) (Checkpoint, error) {
	var out Checkpoint
	var first Part
	seen := map[int]bool{}
	for i, jws := range jwss {
		c, p, err := OpenCheckpointPart(jws, keys)
		if err != nil {
			return Checkpoint{}, err
		}
		if i == 0 {
			out, first = Checkpoint{IssuedAt: c.IssuedAt, Chains: map[string]Head{}}, p
		}
		if p.ID != first.ID || p.Parts != first.Parts || !c.IssuedAt.Equal(out.IssuedAt) || seen[p.Part] {
			return Checkpoint{}, fmt.Errorf("%w: part %d of %d of checkpoint %q does not go with part %d of %d of %q",
				ErrCheckpoint, p.Part, p.Parts, p.ID, first.Part, first.Parts, first.ID)
		}
		seen[p.Part] = true
		for id, h := range c.Chains {
			if _, dup := out.Chains[id]; dup {
				return Checkpoint{}, fmt.Errorf("%w: chain %s in two parts", ErrCheckpoint, id)
			}
			out.Chains[id] = h
		}
	}
	if len(jwss) == 0 || len(seen) != first.Parts {
		return Checkpoint{}, fmt.Errorf("%w: %d of the %d parts of checkpoint %q", ErrCheckpoint, len(seen), first.Parts, first.ID)
	}
	return out, nil
}

// OpenCheckpointPart is OpenCheckpoint for a part of a checkpoint too: it
// returns the chains of this JWS and where it stands.
func OpenCheckpointPart(jws string, keys jose.JSONWebKeySet) (Checkpoint, Part, error) {
	sig, err := jose.ParseSigned(jws, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return Checkpoint{}, Part{}, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if len(sig.Signatures) != 1 {
		return Checkpoint{}, Part{}, fmt.Errorf("%w: %d signatures", ErrCheckpoint, len(sig.Signatures))
	}
	hdr := sig.Signatures[0].Header
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != CheckpointType {
		return Checkpoint{}, Part{}, fmt.Errorf("%w: typ %q is not %s", ErrCheckpoint, typ, CheckpointType)
	}
	found := keys.Key(hdr.KeyID)
	if len(found) == 0 {
		return Checkpoint{}, Part{}, fmt.Errorf("%w: signed with key %q, which is not one of the broker's signing keys (forged, or the key was retired since)", ErrCheckpoint, hdr.KeyID)
	}
	payload, err := sig.Verify(found[0])
	if err != nil {
		return Checkpoint{}, Part{}, fmt.Errorf("%w: signature of key %s: %v", ErrCheckpoint, hdr.KeyID, err)
	}
	var p checkpointJSON
	if err := json.Unmarshal(payload, &p); err != nil || p.Type != CheckpointType {
		return Checkpoint{}, Part{}, fmt.Errorf("%w: not a checkpoint payload", ErrCheckpoint)
	}
	c := Checkpoint{IssuedAt: time.Unix(p.IssuedAt, 0).UTC(), Chains: make(map[string]Head, len(p.Chains))}
	for _, h := range p.Chains {
		if _, dup := c.Chains[h.Chain]; dup || h.Rows < 0 {
			return Checkpoint{}, Part{}, fmt.Errorf("%w: chain %s listed twice or with a negative count", ErrCheckpoint, h.Chain)
		}
		c.Chains[h.Chain] = h.Head
	}
	part := Part{ID: p.ID, Part: p.Part, Parts: p.Parts}
	switch {
	case p.ID == "" && p.Part == 0 && p.Parts == 0:
		part.Part, part.Parts = 1, 1
	case p.ID == "" || p.Parts < 2 || p.Part < 1 || p.Part > p.Parts:
		return Checkpoint{}, Part{}, fmt.Errorf("%w: part %d of %d of checkpoint %q", ErrCheckpoint, p.Part, p.Parts, p.ID)
	}
	return c, part, nil
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
	cp, err := c.heads(ctx)
	if err != nil {
		return cp, "", err
	}
	jws, err := cp.Sign(c.Signer)
	return cp, jws, err
}

// heads reads every chain's head.
func (c *Checkpointer) heads(ctx context.Context) (Checkpoint, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := Checkpoint{IssuedAt: now().UTC(), Chains: map[string]Head{}}
	for p := (store.Page{Limit: 100}); ; {
		page, next, err := c.Store.ListTenants(ctx, p)
		if err != nil {
			return cp, fmt.Errorf("audit: checkpoint: list tenants: %w", err)
		}
		for _, t := range page {
			rows, hash, err := c.Store.AuditHead(store.WithTenant(ctx, t.ID))
			if err != nil {
				return cp, fmt.Errorf("audit: checkpoint: %w", err)
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
		return cp, fmt.Errorf("audit: checkpoint: %w", err)
	}
	for _, r := range erased {
		cp.Chains[r.TenantID] = Head{Hash: r.Hash, Erased: true}
	}
	rows, hash, err := c.Store.OperatorAuditHead(ctx)
	if err != nil {
		return cp, fmt.Errorf("audit: checkpoint: %w", err)
	}
	cp.Chains[OperatorsChain] = Head{Rows: rows, Hash: hash}
	return cp, nil
}

// log takes a checkpoint and logs it, in parts of PartChains chains when
// there are more (one line each, all signed, "part" and "parts" saying
// which).
func (c *Checkpointer) log(ctx context.Context) error {
	cp, err := c.heads(ctx)
	if err != nil {
		return err
	}
	jwss, err := cp.SignParts(c.Signer, 0)
	if err != nil {
		return err
	}
	for i, jws := range jwss {
		if len(jwss) == 1 {
			c.Log.Info("audit checkpoint", "chains", len(cp.Chains), "checkpoint", jws)
			break
		}
		c.Log.Info("audit checkpoint", "chains", len(cp.Chains), "part", i+1, "parts", len(jwss), "checkpoint", jws)
	}
	return nil
}

// Run logs a checkpoint at once and then every interval, until ctx is
// done. A checkpoint that fails is logged as an error and tried again at
// the next tick.
func (c *Checkpointer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := c.log(ctx); err != nil && ctx.Err() == nil {
			c.Log.Error("audit checkpoint failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
