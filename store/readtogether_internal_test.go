package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadTogetherPinsOneReader: on SQLite the reads inside ReadTogether
// run on one reader connection, even while another of its reads holds
// rows open (the pool would hand out a second connection then). A temp
// table, which only its own connection sees, tells them apart. Outside
// ReadTogether the same sequence reaches a second connection.
func TestReadTogetherPinsOneReader(t *testing.T) {
	db := openTestDB(t, "sqlite://"+filepath.Join(t.TempDir(), "pin.db"))
	ctx := context.Background()
	probe := func(ctx context.Context) error {
		if err := db.global(ctx, false, func(q querier) error {
			_, err := q.exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS pin_probe (x)")
			return err
		}); err != nil {
			return err
		}
		var open rows
		if err := db.global(ctx, false, func(q querier) (err error) {
			open, err = q.query(ctx, "SELECT 1 UNION ALL SELECT 2")
			return err
		}); err != nil {
			return err
		}
		defer open.Close()
		open.Next()
		return db.global(ctx, false, func(q querier) error {
			var n int
			return q.queryRow(ctx, "SELECT count(*) FROM pin_probe").Scan(&n)
		})
	}
	if err := db.ReadTogether(ctx, probe); err != nil {
		t.Fatalf("inside ReadTogether: %v", err)
	}
	// The control: without the pin the third read lands on another
	// connection, which has no such table.
	if err := probe(ctx); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("outside ReadTogether: %v; want no such table", err)
	}
	// A reader already pinned, or a transaction, is kept.
	if err := db.ReadTogether(ctx, func(ctx context.Context) error { return db.ReadTogether(ctx, probe) }); err != nil {
		t.Fatalf("nested: %v", err)
	}
}
