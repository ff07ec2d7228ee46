package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/idbroker/idbroker/store"
)

const restoreCheckHelp = `
After the database was restored from a backup: apply again every revocation
made since the backup that the restored database forgot, and list them.

Operator API keys revoked, directory tokens and client secrets ended by a
rotation, console operators disabled, portal links used, tenants paused or
deleted, connections deactivated and users deprovisioned are written, before
they commit, as tombstones into Redis, which a database restore does not
reach. "idbroker serve" applies the ones written since the database's last
check at every start, before it serves; this command checks all of them
(--dry-run: only lists) and prints what it applied again. Run it with the
nodes' IDBROKER_DATABASE_URL and IDBROKER_REDIS_URL, after the restore and
before starting the nodes (see "Restoring from a backup" in the operations
guide). A database restored from a backup older than the tombstone horizon
(IDBROKER_TOMBSTONE_HORIZON_DAYS) is warned of: tombstones written after it
may have been forgotten.

A directory token or client secret ended again has no successor the
restored database knows: rotate it (the table says which) and give the new
one to the IdP or application. Exit status 0 when the check completed, 1 when
it could not (no Redis configured, Redis or the database unreachable).`

// runRestoreCheck is `restore-check`: see restoreCheckHelp.
func runRestoreCheck(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet(c, "restore-check [flags]", restoreCheckHelp)
	dry := fs.Bool("dry-run", false, "list what would be applied again, change nothing")
	addDatabaseFlag(fs)
	st, log, err := openDatabase(ctx, c, fs, args)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.ReapplyTombstones(ctx, true, *dry)
	if errors.Is(err, store.ErrNoLedger) {
		return fmt.Errorf("%s is not set: without Redis no revocation is kept outside the database, and a restore "+
			"forgets every revocation made since the backup (see \"Restoring from a backup\" in the operations guide)", envRedisURL)
	}
	if err != nil {
		return err
	}
	logTombstoneCheck(ctx, log, res, *dry)
	verb := "applied again"
	if *dry {
		verb = "to apply again"
	}
	fmt.Fprintf(c.stdout, "%d revocations kept outside the database checked, %d %s\n", res.Checked, len(res.Reapplied), verb)
	if res.BeyondHorizon {
		fmt.Fprintf(c.stdout, "warning: the database is older than the tombstone horizon (%s): revocations made after its backup "+
			"and forgotten since are not applied again; treat it as a restore with Redis lost (see \"Restoring from a backup\" in the operations guide)\n",
			envTombstoneHorizonDays)
	}
	if len(res.Reapplied) == 0 {
		return nil
	}
	tb := newTable("KIND", "ID", "TENANT", "REVOKED", "DONE", "THEN")
	for _, r := range res.Reapplied {
		tb.add(r.Kind, orDash(r.ID), orDash(r.TenantID), timeOr(&r.At, "-"), r.What, restoreFollowUp(r.Kind))
	}
	return tb.write(c.stdout)
}

// restoreFollowUp says what an operator does after a tombstone of kind
// was applied again.
func restoreFollowUp(kind store.TombstoneKind) string {
	switch kind {
	case store.TombDirectoryToken:
		return "rotate the directory's token, give it to the IdP"
	case store.TombApplicationSecret:
		return "rotate the application's secret, deploy it"
	case store.TombOperatorReset:
		return "operator create --email (same email): a new enrolment link"
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// reapplyAtStart is serve's check, before it serves anything: the
// tombstones written since the database's last check applied again, so
// that a node started on a database restored from a backup never
// honours a key, token, secret, operator, link, tenant, connection or
// user revoked since. A ledger that cannot be read stops the start: the
// node could not tell.
func reapplyAtStart(ctx context.Context, st *store.DB, log *slog.Logger) error {
	res, err := st.ReapplyTombstones(ctx, false, false)
	if errors.Is(err, store.ErrNoLedger) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apply again the revocations kept outside the database (is Redis reachable?): %w", err)
	}
	logTombstoneCheck(ctx, log, res, false)
	return nil
}

// logTombstoneCheck logs what a check found. A dry run (restore-check
// --dry-run) changed nothing, and says so: its log is read during a restore.
func logTombstoneCheck(ctx context.Context, log *slog.Logger, res store.TombstoneCheck, dry bool) {
	if res.BeyondHorizon {
		log.WarnContext(ctx, "the database is older than the tombstone horizon: it was restored from a backup taken before tombstones "+
			"that have since been forgotten, so revocations made after the backup may be honoured again "+
			"(see \"Restoring from a backup\" in the operations guide)", "database_checked", res.From, "forgotten_up_to", res.Forgotten)
	}
	if res.LedgerBehind {
		log.WarnContext(ctx, "the tombstone ledger in Redis is older than the database's last check: Redis was emptied or restored, "+
			"and revocations it kept since are lost; a database restored as well may honour them again "+
			"(see \"Restoring from a backup\" in the operations guide)", "ledger_last", res.To, "database_checked", res.From)
	}
	if dry {
		for _, r := range res.Reapplied {
			log.InfoContext(ctx, "a revocation the database forgot (restored from a backup) would be applied again (dry run)",
				"kind", string(r.Kind), "id", r.ID, "tenant_id", r.TenantID, "revoked_at", r.At, "would_do", r.What)
		}
		return
	}
	for _, r := range res.Reapplied {
		log.WarnContext(ctx, "a revocation the database forgot (restored from a backup) applied again",
			"kind", string(r.Kind), "id", r.ID, "tenant_id", r.TenantID, "revoked_at", r.At, "done", r.What)
	}
	if len(res.Reapplied) > 0 {
		log.WarnContext(ctx, "revocations kept outside the database applied again", "checked", res.Checked, "applied", len(res.Reapplied))
	}
}
