package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
)

const auditHelp = `
Check the audit log's tamper evidence.

	audit verify [--tenant ID] [--checkpoint FILE] [--write-checkpoint FILE]
	             [--anchors FILE] [--write-anchors FILE]
	                             re-hash every audit chain (or one tenant's)

Each audit row carries the hash of the row before it: one chain per
tenant, and one for the operators' own trail (console sign-ins, lockouts,
enrolment, API keys), and a mac of its hash under an audit key sealed
under the master key, so someone who can write the database but has no
master key cannot re-compute a chain past a mac. verify re-computes every
hash and mac and reports, by row, rows that were changed, removed,
inserted or re-hashed without the key (and how many of a chain's newest
rows no mac vouches for yet: rows of a node from before the audit key);
it exits 1 when any chain is broken, and 3 when it could not check
the log (the database unreachable, an unknown tenant, an unreadable or
forged checkpoint).

A chain alone cannot show that its newest rows were removed, nor that a
tenant's whole chain went with its tenant row. --write-checkpoint FILE
writes, after a clean verify, every chain's head signed with the broker's
signing key (serve also logs one every IDBROKER_AUDIT_CHECKPOINT_INTERVAL);
a later verify --checkpoint FILE checks the signature and that each chain
still reaches its head unchanged and that none is gone. FILE may hold
several checkpoints, one a line (a log's lines): the last one is used.
--anchors and --write-anchors do the same with an unsigned file, which
must then be kept where the database's writers cannot change it.`

// errChainBroken makes audit verify exit non-zero after printing why.
var errChainBroken = errors.New("audit chain broken")

// errUnchecked wraps what kept audit verify from checking the log: not a
// verdict on it (exit status 3, not 1).
var errUnchecked = errors.New("the audit log could not be checked")

func runAudit(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "audit verify [flags]", auditHelp, args, "verify")
	if sub == "" {
		return err
	}
	err = verifyAudit(ctx, c, rest)
	var ce *ConfigError
	if err == nil || errors.Is(err, errChainBroken) || errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) || errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("%w: %w", errUnchecked, err)
}

// verifyAudit is audit verify: nil for an intact log, errChainBroken for a
// broken one, any other error for a log it could not check.
func verifyAudit(ctx context.Context, c *cli, rest []string) error {
	fs := newFlagSet(c, "audit verify [flags]", auditHelp)
	only := fs.String("tenant", "", "verify only this tenant (tnt_…)")
	anchorsIn := fs.String("anchors", "", "check every chain against the anchors in this file (from --write-anchors)")
	anchorsOut := fs.String("write-anchors", "", "after a clean verify, write every chain's anchor to this file")
	checkpointIn := fs.String("checkpoint", "", "check every chain against the signed checkpoint in this file (the last one when it holds several)")
	checkpointOut := fs.String("write-checkpoint", "", "after a clean verify, write every chain's head, signed, to this file")
	addDatabaseFlag(fs)
	// Flags that cannot go together are a usage error (exit 2), told
	// before the database is opened.
	if err := parseFlags(c, fs, rest); err != nil {
		return err
	}
	if (*anchorsOut != "" || *checkpointOut != "") && *only != "" {
		return usageError(c, fs, "--write-anchors and --write-checkpoint anchor every chain; they cannot go with --tenant")
	}
	if *anchorsIn != "" && *checkpointIn != "" {
		return usageError(c, fs, "--anchors and --checkpoint: check against one or the other")
	}
	st, _, err := openDatabase(ctx, c, fs, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := requireSchema(ctx, st); err != nil {
		return err
	}
	var signer *signing.Manager
	if *checkpointIn != "" || *checkpointOut != "" {
		// The broker's signing keys, opened under the master key: a key
		// put in the database without it does not open, so it verifies
		// nothing and signs nothing.
		if signer, err = signing.NewManager(st, signing.Options{}); err != nil {
			return err
		}
		if err := signer.Reload(ctx); err != nil {
			return err
		}
	}
	anchors := anchorFile{}
	if *anchorsIn != "" {
		if anchors, err = readAnchors(*anchorsIn); err != nil {
			return err
		}
	}
	if *checkpointIn != "" {
		cp, err := readCheckpoint(*checkpointIn, signer)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "checkpoint of %s: signature ok, %d chains\n", cp.IssuedAt.Format(time.RFC3339), len(cp.Chains))
		anchors = anchorsOf(cp)
	}
	heads := anchorFile{}

	var tenants []string
	if *only != "" {
		if _, err := st.Tenant(store.WithTenant(ctx, *only)); errors.Is(err, store.ErrNotFound) {
			// Erased, its chain is its erase report; or no tenant at all.
			return verifyErased(ctx, c, st, *only, anchors)
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
		a, err := anchors.take(id)
		if err != nil {
			return err
		}
		rep, err := audit.VerifyAnchored(tctx, st, a)
		if err != nil {
			return err
		}
		heads[id] = anchorLine{Anchor: rep.Anchor()}
		if rep.OK() {
			fmt.Fprintf(c.stdout, "%s: ok (%d rows)%s\n", id, rep.Rows, unvouched(rep))
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
		keys, err := st.AuditKeys(ctx)
		if err != nil {
			return err
		}
		reports, err := st.TenantErasures(ctx)
		if err != nil {
			return fmt.Errorf("list erase reports: %w", err)
		}
		for _, r := range reports {
			tenants = append(tenants, r.TenantID)
			heads[r.TenantID] = anchorLine{Anchor: audit.Anchor{Hash: r.Hash}, erased: true}
			if !checkErasure(c, keys, r, anchors) {
				broken++
			}
		}
	}
	operators := ""
	if *only == "" {
		a, err := anchors.take(operatorsChain)
		if err != nil {
			return err
		}
		rep, ok, err := verifyOperators(ctx, c, st, a)
		if err != nil {
			return err
		}
		heads[operatorsChain] = anchorLine{Anchor: rep.Anchor()}
		if !ok {
			operators = "the operators' audit trail"
		}
	}
	// What is still anchored was verified once and is in the log no more:
	// a tenant's rows removed with its tenant row, or an erase report
	// removed.
	for _, id := range anchors.left(*only) {
		broken++
		tenants = append(tenants, id)
		fmt.Fprintf(c.stdout, "%s: BROKEN: anchored (%s), now gone: neither in service, deleted nor erased; its chain was removed\n", id, anchors[id])
	}
	if *anchorsOut != "" {
		if broken > 0 || operators != "" {
			fmt.Fprintf(c.stderr, "anchors not written to %s: the log is broken\n", *anchorsOut)
		} else if err := heads.write(*anchorsOut); err != nil {
			return err
		}
	}
	if *checkpointOut != "" {
		if broken > 0 || operators != "" {
			fmt.Fprintf(c.stderr, "checkpoint not written to %s: the log is broken\n", *checkpointOut)
		} else if err := writeCheckpoint(*checkpointOut, heads.checkpoint(time.Now()), signer); err != nil {
			return err
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
func verifyOperators(ctx context.Context, c *cli, w audit.OperatorWalker, a *audit.Anchor) (audit.Report, bool, error) {
	rep, err := audit.VerifyOperatorsAnchored(ctx, w, a)
	if err != nil {
		return rep, false, err
	}
	before := ""
	if rep.Unchained > 0 {
		before = fmt.Sprintf(", %d older rows from before the chain", rep.Unchained)
	}
	if rep.OK() {
		fmt.Fprintf(c.stdout, "operators: ok (%d rows%s)%s\n", rep.Rows, before, unvouched(rep))
		return rep, true, nil
	}
	fmt.Fprintf(c.stdout, "operators: BROKEN (%d rows, %d breaks%s)\n", rep.Rows, len(rep.Breaks), before)
	for _, b := range rep.Breaks {
		fmt.Fprintf(c.stdout, "  %s: %s\n", b.ID, b.Reason)
	}
	return rep, false, nil
}

// unvouched says how many of a sound chain's newest rows no mac vouches
// for (rows a node from before the audit keys wrote, or whose macs were
// stripped): only a checkpoint taken since covers them.
func unvouched(rep audit.Report) string {
	if rep.Unvouched == 0 {
		return ""
	}
	return fmt.Sprintf(", the newest %d without a mac: only a checkpoint vouches for them", rep.Unvouched)
}

// checkErasure prints whether erase report r still hashes to itself and,
// when the tenant was anchored after its erasure, to its anchor. (An
// anchor from before the erasure cannot be checked: the rows after it
// were erased with the others.)
func checkErasure(c *cli, keys *store.AuditKeys, r store.AuditEvent, anchors anchorFile) bool {
	if h, err := keys.Hash(r); err != nil || h != r.Hash {
		fmt.Fprintf(c.stdout, "%s: BROKEN erase report %s: content does not match its hash\n", r.TenantID, r.ID)
		return false
	}
	// Its mac vouches for it and the erased chain before it. A report
	// without one was written by a node from before the keys (or had its
	// mac stripped): its hash alone holds, and only an anchor (a
	// checkpoint) after the erasure vouches for it.
	if r.MAC != "" {
		if ok, err := keys.MACOK(r); err != nil || !ok {
			fmt.Fprintf(c.stdout, "%s: BROKEN erase report %s: its mac does not match its hash: it was re-computed without the audit key\n", r.TenantID, r.ID)
			return false
		}
	}
	a, ok := anchors[r.TenantID]
	delete(anchors, r.TenantID)
	if ok && a.erased && a.Hash != r.Hash {
		fmt.Fprintf(c.stdout, "%s: BROKEN erase report %s: its hash %.12s… is not the anchored %.12s…: the report was replaced\n", r.TenantID, r.ID, r.Hash, a.Hash)
		return false
	}
	fmt.Fprintf(c.stdout, "%s: erased, report %s ok\n", r.TenantID, r.ID)
	return true
}

// verifyErased is verify --tenant of a tenant the tables no longer hold:
// its erase report if it was erased, else an error that says there is no
// such tenant.
func verifyErased(ctx context.Context, c *cli, st *store.DB, id string, anchors anchorFile) error {
	keys, err := st.AuditKeys(ctx)
	if err != nil {
		return err
	}
	reports, err := st.TenantErasures(ctx)
	if err != nil {
		return fmt.Errorf("list erase reports: %w", err)
	}
	for _, r := range reports {
		if r.TenantID != id {
			continue
		}
		if !checkErasure(c, keys, r, anchors) {
			return fmt.Errorf("%w in the erase report of %s", errChainBroken, id)
		}
		return nil
	}
	if a, ok := anchors[id]; ok {
		fmt.Fprintf(c.stdout, "%s: BROKEN: anchored (%s), now gone: neither in service, deleted nor erased; its chain was removed\n", id, a)
		return fmt.Errorf("%w: the chain of %s was removed", errChainBroken, id)
	}
	return fmt.Errorf("no tenant %s: none in service, deleted or erased has that id", id)
}
