package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
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
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, m := range states {
		applied := "pending"
		if m.AppliedAt != nil {
			applied = m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, applied)
	}
	return tw.Flush()
}
