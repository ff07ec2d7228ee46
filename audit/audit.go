// Package audit checks the tamper evidence of the audit log (contract
// section 6). Rows are appended by the surfaces through store.AppendAudit,
// each hashing its predecessor; Verify walks a tenant's chain and reports
// every row that was changed, removed or inserted after the fact.
package audit

import (
	"context"
	"fmt"

	"github.com/idbroker/idbroker/store"
)

// Break is one place where a chain does not hold.
type Break struct {
	ID     string // the row at which the chain breaks
	Reason string
}

// Report is the outcome of verifying one tenant's chain.
type Report struct {
	TenantID string
	Rows     int
	Breaks   []Break
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

// Walker is the part of the store Verify reads.
type Walker interface {
	WalkAudit(ctx context.Context, fn func(store.AuditEvent) error) error
}

// Verify re-hashes the audit chain of the tenant in ctx. A changed row no
// longer matches its own hash; a removed or inserted row breaks the link to
// the next one's prev_hash. (Removing the newest rows leaves no trace in
// the chain itself: compare Rows with an earlier report, or anchor the
// latest hash elsewhere.)
func Verify(ctx context.Context, w Walker) (Report, error) {
	tenantID, _ := store.TenantFrom(ctx)
	rep := Report{TenantID: tenantID}
	prev := ""
	err := w.WalkAudit(ctx, func(e store.AuditEvent) error {
		rep.Rows++
		if e.PrevHash != prev {
			rep.Breaks = append(rep.Breaks, Break{e.ID, fmt.Sprintf("prev_hash %.12s… does not link to the row before (%.12s…): a row was removed or inserted", e.PrevHash, prev)})
		}
		h, err := store.AuditHash(e)
		if err != nil {
			rep.Breaks = append(rep.Breaks, Break{e.ID, "cannot be re-hashed: " + err.Error()})
		} else if h != e.Hash {
			rep.Breaks = append(rep.Breaks, Break{e.ID, "content does not match its hash: the row was changed"})
		}
		prev = e.Hash
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify tenant %s: %w", tenantID, err)
	}
	return rep, nil
}
