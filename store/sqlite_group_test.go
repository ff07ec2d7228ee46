package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestSQLiteGroupCommit: concurrent write transactions share SQLite
// transactions, yet each keeps its own outcome: a unique violation (a
// SCIM 409), an error of its own and a panic roll back only that
// request's work, a cancelled request does not abort the group, and every
// request that returned nil is in the database afterwards.
func TestSQLiteGroupCommit(t *testing.T) {
	db := openTestDB(t, "sqlite://"+t.TempDir()+"/group.db")
	s := db.d.(*sqliteDB)
	if s.group == nil {
		t.Fatal("group commit is off on a file database")
	}
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
	tn, err := db.CreateTenant(ctx, Tenant{Name: "Acme", Status: TenantActive})
	if err != nil {
		t.Fatal(err)
	}
	tctx := WithTenant(ctx, tn.ID)
	d, err := db.CreateDirectory(tctx, Directory{Name: "okta", TokenHash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
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
