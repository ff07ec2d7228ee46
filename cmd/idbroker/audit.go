package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/store"
)

const auditHelp = `
Check the audit log's tamper evidence.

	audit verify [--tenant ID]   re-hash every audit chain (or one tenant's)

Each audit row carries the hash of the row before it: one chain per
tenant, and one for the operators' own trail (console sign-ins, lockouts,
enrolment, API keys). verify re-computes every hash and reports rows that
were changed, removed or inserted after they were written; it exits 1
when any chain is broken.`

// errChainBroken makes audit verify exit non-zero after printing why.
var errChainBroken = errors.New("audit chain broken")

func runAudit(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "audit verify [flags]", auditHelp, args, "verify")
	if sub == "" {
		return err
	}
	fs := newFlagSet(c, "audit verify [flags]", auditHelp)
	only := fs.String("tenant", "", "verify only this tenant (tnt_…)")
	addDatabaseFlag(fs)
	st, _, err := openDatabase(ctx, c, fs, rest)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := requireSchema(ctx, st); err != nil {
		return err
	}

	var tenants []string
	if *only != "" {
		if _, err := st.Tenant(store.WithTenant(ctx, *only)); errors.Is(err, store.ErrNotFound) {
			// Erased, its chain is its erase report; or no tenant at all.
			return verifyErased(ctx, c, st, *only)
		}
		tenants = []string{*only}
	} else {
		for p := (store.Page{Limit: 100}); ; {
			page, next, err := st.ListTenants(ctx, p)
			if err != nil {
				return fmt.Errorf("list tenants: %w", err)
			}
			for _, t := range page {
				tenants = append(tenants, t.ID)
			}
			if next == "" {
				break
			}
			p.After = next
		}
	}
	broken := 0
	for _, id := range tenants {
		tctx := store.WithTenant(ctx, id)
		if _, err := st.Tenant(tctx); err != nil {
			return fmt.Errorf("tenant %s: %w", id, err)
		}
		rep, err := audit.Verify(tctx, st)
		if err != nil {
			return err
		}
		if rep.OK() {
			fmt.Fprintf(c.stdout, "%s: ok (%d rows)\n", id, rep.Rows)
			continue
		}
		broken++
		fmt.Fprintf(c.stdout, "%s: BROKEN (%d rows, %d breaks)\n", id, rep.Rows, len(rep.Breaks))
		for _, b := range rep.Breaks {
			fmt.Fprintf(c.stdout, "  %s: %s\n", b.ID, b.Reason)
		}
	}
	// An erased tenant's chain ends in its erase report, kept outside the
	// erased tables: it must still hash to what it says.
	if *only == "" {
		reports, err := st.TenantErasures(ctx)
		if err != nil {
			return fmt.Errorf("list erase reports: %w", err)
		}
		for _, r := range reports {
			tenants = append(tenants, r.TenantID)
			if !checkErasure(c, r) {
				broken++
			}
		}
	}
	operators := ""
	if *only == "" {
		ok, err := verifyOperators(ctx, c, st)
		if err != nil {
			return err
		}
		if !ok {
			operators = "the operators' audit trail"
		}
	}
	switch {
	case broken > 0 && operators != "":
		return fmt.Errorf("%w in %d of %d tenants and in %s", errChainBroken, broken, len(tenants), operators)
	case broken > 0:
		return fmt.Errorf("%w in %d of %d tenants", errChainBroken, broken, len(tenants))
	case operators != "":
		return fmt.Errorf("%w in %s", errChainBroken, operators)
	}
	return nil
}

// verifyOperators re-hashes the operators' audit chain and prints its
// line; it reports whether the chain holds.
func verifyOperators(ctx context.Context, c *cli, w audit.OperatorWalker) (bool, error) {
	rep, err := audit.VerifyOperators(ctx, w)
	if err != nil {
		return false, err
	}
	before := ""
	if rep.Unchained > 0 {
		before = fmt.Sprintf(", %d older rows from before the chain", rep.Unchained)
	}
	if rep.OK() {
		fmt.Fprintf(c.stdout, "operators: ok (%d rows%s)\n", rep.Rows, before)
		return true, nil
	}
	fmt.Fprintf(c.stdout, "operators: BROKEN (%d rows, %d breaks%s)\n", rep.Rows, len(rep.Breaks), before)
	for _, b := range rep.Breaks {
		fmt.Fprintf(c.stdout, "  %s: %s\n", b.ID, b.Reason)
	}
	return false, nil
}

// checkErasure prints whether erase report r still hashes to itself.
func checkErasure(c *cli, r store.AuditEvent) bool {
	if h, err := store.AuditHash(r); err != nil || h != r.Hash {
		fmt.Fprintf(c.stdout, "%s: BROKEN erase report %s: content does not match its hash\n", r.TenantID, r.ID)
		return false
	}
	fmt.Fprintf(c.stdout, "%s: erased, report %s ok\n", r.TenantID, r.ID)
	return true
}

// verifyErased is verify --tenant of a tenant the tables no longer hold:
// its erase report if it was erased, else an error that says there is no
// such tenant.
func verifyErased(ctx context.Context, c *cli, st *store.DB, id string) error {
	reports, err := st.TenantErasures(ctx)
	if err != nil {
		return fmt.Errorf("list erase reports: %w", err)
	}
	for _, r := range reports {
		if r.TenantID != id {
			continue
		}
		if !checkErasure(c, r) {
			return fmt.Errorf("%w in the erase report of %s", errChainBroken, id)
		}
		return nil
	}
	return fmt.Errorf("no tenant %s: none in service, deleted or erased has that id", id)
}
