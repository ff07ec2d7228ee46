package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const migrateHelp = `
Manage the database schema.

	migrate up       apply every pending migration, in order, each in its own
	                 transaction; safe to run from several nodes at once
	migrate status   list every migration and when it was applied, and
	                 those a newer idbroker applied that this one lacks

serve runs "migrate up" itself at start unless given --no-migrate.`

func runMigrate(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "migrate up|status [flags]", migrateHelp, args, "up", "status")
	if sub == "" {
		return err
	}
	up := sub == "up"
	fs := newFlagSet(c, "migrate "+sub+" [flags]", migrateHelp)
	var asJSON *bool
	if !up {
		asJSON = addJSONFlag(fs)
	}
	addDatabaseFlag(fs)
	need := dbExisting
	if up {
		need = dbMayCreate
	}
	st, _, err := openDatabaseTo(ctx, c, fs, rest, need)
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
	if newer := newerMigrations(states); len(newer) > 0 {
		fmt.Fprintf(c.stderr, "the database was migrated by a newer idbroker than this one (%s); see \"Rolling back\" in docs/reference/operations.md\n",
			strings.Join(newer, ", "))
	}
	if up {
		fmt.Fprintf(c.stdout, "database is up to date (%d migrations)\n", len(states))
		return nil
	}
	if *asJSON {
		type migration struct {
			Version   int        `json:"version"`
			Name      string     `json:"name"`
			AppliedAt *time.Time `json:"applied_at"` // null: pending
			Newer     bool       `json:"newer"`      // applied by a newer idbroker than this one
		}
		out := make([]migration, 0, len(states))
		for _, m := range states {
			out = append(out, migration{Version: m.Version, Name: m.Name, AppliedAt: utc(m.AppliedAt), Newer: m.Newer})
		}
		return writeJSON(c.stdout, out)
	}
	tb := newTable("VERSION", "NAME", "APPLIED")
	for _, m := range states {
		name := m.Name
		if m.Newer {
			name += " (newer than this binary)"
		}
		tb.add(m.Version, name, timeOr(m.AppliedAt, "pending"))
	}
	return tb.write(c.stdout)
}
