package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/idbroker/idbroker/internal/testdb"
)

// TestPostgresErrorsThatAreOutages: errors of a server that cannot take
// the request now, though the request is fine, are ErrUnavailable (503
// with Retry-After), not a 500.
func TestPostgresErrorsThatAreOutages(t *testing.T) {
	p := &postgres{}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"read-only server (standby, demoted primary)", &pgconn.PgError{Code: "25006"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"out of memory", &pgconn.PgError{Code: "53200"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"pooled connection found closed", fmt.Errorf("failed to deallocate cached statement(s): %w", pgconn.ErrConnClosed), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"client went away", context.Canceled, false},
	} {
		if got := errors.Is(p.classify(c.err), ErrUnavailable); got != c.want {
			t.Errorf("%s: unavailable = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestPostgresReadOnly: a server that refuses writes (a standby, a primary
// demoted during a failover, default_transaction_read_only) fails the
// readiness ping and its refused writes are ErrUnavailable; once it takes
// writes again, both work without reopening the store. Writes answered
// 500 and /readyz kept answering 200.
func TestPostgresReadOnly(t *testing.T) {
	pg := testdb.StartPostgres(t)
	db := openTestDB(t, pg.URL())
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	setReadOnly := func(on bool) {
		t.Helper()
		sql := "ALTER DATABASE test SET default_transaction_read_only = on"
		if !on {
			sql = "ALTER DATABASE test RESET default_transaction_read_only"
		}
		// The setting reaches the pool's connections when they
		// reconnect; the admin's own session stays writable.
		for _, s := range []string{"SET default_transaction_read_only = off", sql,
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'test' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"} {
			if _, err := admin.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	if !strings.Contains(pg.URL(), "/test?") {
		t.Fatalf("the server's database is not named test: %s", pg.URL())
	}
	if _, err := db.CreateTenant(ctx, Tenant{Name: "before"}); err != nil {
		t.Fatal(err)
	}

	setReadOnly(true)
	var pingErr, writeErr error
	for range 5 { // the first uses of dropped connections find them closed
		pingErr = db.Ping(ctx)
		_, writeErr = db.CreateTenant(ctx, Tenant{Name: "during"})
	}
	if pingErr == nil || !errors.Is(pingErr, ErrUnavailable) {
		t.Errorf("Ping on a read-only database = %v, want ErrUnavailable", pingErr)
	}
	if !errors.Is(writeErr, ErrUnavailable) {
		t.Errorf("a write on a read-only database = %v, want ErrUnavailable", writeErr)
	}

	setReadOnly(false)
	for range 5 {
		pingErr = db.Ping(ctx)
		_, writeErr = db.CreateTenant(ctx, Tenant{Name: "after"})
	}
	if pingErr != nil || writeErr != nil {
		t.Errorf("once writable again: Ping %v, write %v", pingErr, writeErr)
	}
}

// TestSQLiteFullIsUnavailable: a write that finds the disk full (here the
// writer's max_page_count, as a full filesystem answers SQLITE_FULL) is
// ErrUnavailable, and writes work again once there is room, without
// reopening the store. It answered 500.
func TestSQLiteFullIsUnavailable(t *testing.T) {
	for _, group := range []string{"on", "off"} {
		t.Run("group_commit="+group, func(t *testing.T) {
			db := openTestDB(t, "sqlite://"+t.TempDir()+"/full.db?group_commit="+group)
			s := db.d.(*sqliteDB)
			ctx := context.Background()
			var pages int64
			if err := s.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
				t.Fatal(err)
			}
			if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
				t.Fatal(err)
			}
			var err error
			for i := 0; i < 1000 && err == nil; i++ {
				_, err = db.CreateTenant(ctx, Tenant{Name: fmt.Sprintf("tenant %d %s", i, strings.Repeat("x", 500))})
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("a write on a full database = %v, want ErrUnavailable", err)
			}
			if _, err := s.w.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.CreateTenant(ctx, Tenant{Name: "after"}); err != nil {
				t.Errorf("a write once there is room again: %v", err)
			}
		})
	}
}

// TestPostgresConnectGivesUp: a server that takes the TCP connection and
// never answers (a frozen primary). The pool makes its connections apart
// from the request that wanted one; with no connect timeout, the attempt
// waited for ever, holding its place in the pool after the request gave
// up. Now it ends after pgConnectTimeout (or the URL's connect_timeout).
func TestPostgresConnectGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()

	old := pgConnectTimeout
	pgConnectTimeout = 500 * time.Millisecond
	defer func() { pgConnectTimeout = old }()
	url := "postgres://idbroker@" + ln.Addr().String() + "/idbroker?sslmode=disable"
	p, err := openPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer p.pool.Close()
	if got := p.pool.Config().ConnConfig.ConnectTimeout; got != pgConnectTimeout {
		t.Errorf("ConnectTimeout without connect_timeout = %s, want %s", got, pgConnectTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := p.ping(ctx); err == nil {
		t.Fatal("ping of a server that never answers succeeded")
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for p.pool.Stat().ConstructingConns() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a connection to a server that never answers is still being made 5 s on (connect timeout %s)", pgConnectTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}

	withURL, err := openPostgres(context.Background(), url+"&connect_timeout=3")
	if err != nil {
		t.Fatal(err)
	}
	defer withURL.pool.Close()
	if got := withURL.pool.Config().ConnConfig.ConnectTimeout; got != 3*time.Second {
		t.Errorf("ConnectTimeout with connect_timeout=3 = %s, want 3s", got)
	}
}
