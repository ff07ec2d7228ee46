package store

import (
	"context"
	"fmt"
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

// TestSQLiteStatementCache: a cached statement whose rows are still open is
// not rebound by a second use of the same text, and eviction of a busy
// statement waits for its rows to close.
func TestSQLiteStatementCache(t *testing.T) {
	db := openTestDB(t, "sqlite://"+t.TempDir()+"/stmts.db")
	s := db.d.(*sqliteDB)
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	const q = "SELECT value FROM json_each('[1,2,3]') WHERE value >= $1 ORDER BY value"
	outer, err := tx.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() {
		var v int
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		// The same text while outer's rows are open, then more distinct
		// statements than the cache holds (evicting outer's).
		var inner []int
		rs, err := tx.QueryContext(ctx, q, v)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var w int
			if err := rs.Scan(&w); err != nil {
				t.Fatal(err)
			}
			inner = append(inner, w)
		}
		rs.Close()
		if len(inner) != 4-v {
			t.Errorf("inner query from %d gave %v", v, inner)
		}
		for i := range stmtCacheSize + 5 {
			var n int
			if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT %d + $1", i), v).Scan(&n); err != nil || n != i+v {
				t.Fatalf("SELECT %d + %d = %d, %v", i, v, n, err)
			}
		}
		got = append(got, v)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("outer rows %v, want [1 2 3]", got)
	}
	// And the evicted text prepares afresh.
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+q+")", 2).Scan(&n); err != nil || n != 2 {
		t.Fatalf("count %d, %v", n, err)
	}
}
