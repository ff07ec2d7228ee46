package main

import (
	"context"
	"fmt"
)

const migrateHelp = `
Manage the database schema.

	migrate up       apply every pending migration, in order, each in its own
	                 transaction; safe to run from several nodes at once
	migrate status   list every migration and when it was applied

serve runs "migrate up" itself at start unless given --no-migrate.`

func runMigrate(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "migrate up|status [flags]", migrateHelp, args, "up", "status")
	if sub == "" {
		return err
	}
	up := sub == "up"
	fs := newFlagSet(c, "migrate "+sub+" [flags]", migrateHelp)
	addDatabaseFlag(fs)
	st, _, err := openDatabase(ctx, c, fs, rest)
	if err != nil {
		return err
	}
	defer st.Close()

	if up {
		if err := st.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	if up {
		fmt.Fprintf(c.stdout, "database is up to date (%d migrations)\n", len(states))
		return nil
	}
	tb := newTable("VERSION", "NAME", "APPLIED")
	for _, m := range states {
		tb.add(m.Version, m.Name, timeOr(m.AppliedAt, "pending"))
	}
	return tb.write(c.stdout)
}
