package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSQLiteGroupCommit: concurrent write transactions share SQLite
// transactions, yet each keeps its own outcome: a unique violation (a
// SCIM 409), an error of its own and a panic roll back only that
// request's work, a cancelled request does not abort the group, and every
// request that returned nil is in the database afterwards.
func TestSQLiteGroupCommit(t *testing.T) {
	db, tn, d := groupedStore(t)
	s := db.d.(*sqliteDB)
	var sizes []int
	var mu sync.Mutex
	committed := s.group.committed
	s.group.committed = func(ctx context.Context, n int) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		committed(ctx, n)
	}
	ctx := context.Background()
	tctx := WithTenant(ctx, tn.ID)
	errOwn := errors.New("own failure")
	const n = 400
	type outcome struct {
		id  string
		err error
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rctx := tctx
			if i%7 == 3 {
				c, cancel := context.WithCancel(tctx)
				cancel()
				rctx = c
			}
			defer func() {
				if p := recover(); p != nil {
					out[i].err = fmt.Errorf("panic: %v", p)
				}
			}()
			out[i].err = db.InTx(rctx, func(ctx context.Context) error {
				// Every fifth request repeats an earlier userName.
				name := fmt.Sprintf("u%d@acme.com", i)
				if i%5 == 4 {
					name = fmt.Sprintf("u%d@acme.com", i-4)
				}
				u, err := db.CreateUser(ctx, User{DirectoryID: d.ID, UserName: name, Email: name, Active: true})
				if err != nil {
					return err
				}
				out[i].id = u.ID
				if _, err := db.AppendEvent(ctx, Event{TenantID: tn.ID, Type: "dsync.user.created", Data: []byte(`{}`)}); err != nil {
					return err
				}
				switch i % 11 {
				case 5:
					return errOwn
				case 6:
					panic("boom")
				}
				return nil
			})
		})
	}
	wg.Wait()
	ok := 0
	for i, o := range out {
		_, err := db.User(tctx, o.id)
		switch {
		case o.err == nil:
			ok++
			if err != nil {
				t.Errorf("request %d returned nil but its user is missing: %v", i, err)
			}
		case errors.Is(o.err, ErrConflict), errors.Is(o.err, errOwn), o.err.Error() == "panic: boom":
			if o.id != "" && err == nil {
				t.Errorf("request %d failed (%v) but its user %s was committed", i, o.err, o.id)
			}
		default:
			t.Errorf("request %d: unexpected error %v", i, o.err)
		}
	}
	var events int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE tenant_id = $1", tn.ID).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != ok {
		t.Errorf("%d events for %d committed requests", events, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	total, most := 0, 0
	for _, s := range sizes {
		total += s
		most = max(most, s)
	}
	t.Logf("%d requests, %d succeeded, %d commits, largest group %d", n, ok, len(sizes), most)
	if most < 2 {
		t.Errorf("no two of %d concurrent transactions shared a commit", n)
	}
}

// TestSQLiteGroupConflictSeesTheWinner: a request that loses a unique key
// to an earlier member of its group returns only once that member's work
// is committed, so that a caller answering the conflict by reading the
// winner (a node storing the bootstrap API key that another node stored
// first) finds it, as it would on PostgreSQL. Request A takes the key and
// holds the writer until B and C wait for it; then whichever of B and C
// runs first conflicts while the other, still to run, keeps the group
// open until the first has returned (or a while has passed).
func TestSQLiteGroupConflictSeesTheWinner(t *testing.T) {
	db, tn, d := groupedStore(t)
	s := db.d.(*sqliteDB)
	tctx := WithTenant(context.Background(), tn.ID)
	create := func(ctx context.Context) (User, error) {
		return db.CreateUser(ctx, User{DirectoryID: d.ID, UserName: "alice@acme.com", Email: "alice@acme.com", Active: true})
	}

	var winner User
	aDone := make(chan error, 1)
	inserted := make(chan struct{})
	go func() {
		aDone <- db.InTx(tctx, func(ctx context.Context) error {
			var err error
			if winner, err = create(ctx); err != nil {
				return err
			}
			close(inserted)
			for deadline := time.Now().Add(30 * time.Second); s.group.waiting.Load() < 2; {
				if time.Now().After(deadline) {
					return errors.New("B and C never waited for the writer")
				}
				time.Sleep(time.Millisecond)
			}
			return nil
		})
	}()
	<-inserted

	var order atomic.Int32
	proceed := make(chan struct{})
	type loser struct {
		err  error
		read error // reading the winner right after the conflict
	}
	losers := make(chan loser, 2)
	for range 2 {
		go func() {
			err := db.InTx(tctx, func(ctx context.Context) error {
				if order.Add(1) == 2 {
					<-proceed
				}
				_, err := create(ctx)
				return err
			})
			_, read := db.User(tctx, winner.ID)
			losers <- loser{err, read}
		}()
	}
	var first loser
	select {
	case first = <-losers:
		close(proceed)
	case <-time.After(200 * time.Millisecond):
		// The first loser waits for the group's COMMIT, which waits for
		// the second: let it run.
		close(proceed)
		first = <-losers
	}
	second := <-losers
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	for i, l := range []loser{first, second} {
		if !errors.Is(l.err, ErrConflict) {
			t.Errorf("loser %d: %v, want ErrConflict", i+1, l.err)
		}
		if l.read != nil {
			t.Errorf("loser %d: reading the winner %s after the conflict: %v", i+1, winner.ID, l.read)
		}
	}
}

// groupedStore opens a SQLite file store, whose writes are grouped, with a
// tenant and a directory.
func groupedStore(t *testing.T) (*DB, Tenant, Directory) {
	t.Helper()
	db := openTestDB(t, "sqlite://"+t.TempDir()+"/group.db")
	if db.d.(*sqliteDB).group == nil {
		t.Fatal("group commit is off on a file database")
	}
	ctx := context.Background()
	tn, err := db.CreateTenant(ctx, Tenant{Name: "Acme", Status: TenantActive})
	if err != nil {
		t.Fatal(err)
	}
	d, err := db.CreateDirectory(WithTenant(ctx, tn.ID), Directory{Name: "okta", TokenHash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	return db, tn, d
}
