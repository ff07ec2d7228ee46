package store

import (
	"context"
	"testing"
)

// TestSQLiteSettings: every connection, writer and readers, runs with the
// embedded database's settings (see sqlitePragmas).
func TestSQLiteSettings(t *testing.T) {
	db := openTestDB(t, "sqlite://"+t.TempDir()+"/settings.db")
	s := db.d.(*sqliteDB)
	ctx := context.Background()
	want := map[string]int64{"synchronous": 1, "cache_size": -16384, "mmap_size": 268435456, "busy_timeout": 5000, "foreign_keys": 1, "temp_store": 2}
	for who, c := range map[string]sqlConn{"writer": s.w, "reader": s.r} {
		var mode string
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode %q, %v; want wal", who, mode, err)
		}
		for p, v := range want {
			var got int64
			if err := c.QueryRowContext(ctx, "PRAGMA "+p).Scan(&got); err != nil || got != v {
				t.Errorf("%s: %s = %d, %v; want %d", who, p, got, err, v)
			}
		}
	}
}
