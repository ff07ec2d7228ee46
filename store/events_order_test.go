package store

import (
	"context"
	"testing"
	"time"
)

// TestEventStreamNeverSkips commits two events out of seq order: a reader
// following the cursor must not be shown the later one while the earlier
// one can still appear (PostgreSQL; SQLite's one writer commits in order).
func TestEventStreamNeverSkips(t *testing.T) {
	db, pg := openPG(t)
	ctx := context.Background()
	appended, hold := make(chan struct{}), make(chan struct{})
	var first Event
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, func(ctx context.Context) error {
			var err error
			first, err = db.AppendEvent(ctx, Event{Type: "first"})
			if err == nil {
				// In a transaction the INSERT waits for the next
				// statement (execLater); until then it has no seq
				// and nothing can skip it. Reading it back sends it.
				_, err = db.Event(ctx, first.ID)
			}
			close(appended)
			<-hold
			return err
		})
	}()
	<-appended
	second, err := db.AppendEvent(ctx, Event{Type: "second"}) // higher seq, committed first
	if err != nil {
		t.Fatal(err)
	}
	type page struct {
		evs []Event
		err error
	}
	read := make(chan page, 1)
	go func() {
		evs, _, err := db.ListEvents(ctx, Page{})
		read <- page{evs, err}
	}()
	// The reader must be waiting for the writer's lock. Rather than
	// wait a while and conclude it blocked (which a slow machine passes
	// by luck), watch PostgreSQL until the reader's lock request is
	// queued behind the writer's.
	fail := func(format string, args ...any) {
		t.Helper()
		close(hold) // let the writer finish, or closing the database waits for it
		<-done
		t.Fatalf(format, args...)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		select {
		case p := <-read:
			fail("read %v while an earlier event could still commit: a cursor past it would skip that one", p.evs)
		default:
		}
		var waiting int
		if err := pg.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
			fail("pg_locks: %v", err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			fail("the reader neither returned nor queued for the events lock in a minute")
		}
	}
	select {
	case p := <-read:
		fail("read %v while an earlier event could still commit", p.evs)
	default:
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p := <-read
	if p.err != nil {
		t.Fatal(p.err)
	}
	if len(p.evs) != 2 || p.evs[0].ID != first.ID || p.evs[1].ID != second.ID {
		t.Fatalf("stream %v, want %s then %s", p.evs, first.ID, second.ID)
	}
}

// TestEventStreamReadHoldsUpNoWriter: a reader holds the events lock only
// to fix the horizon of its page, not while it reads the page. A filter
// that matches few events reads a long stretch of the table, and every
// sign-in and SCIM change waited that long to write its event (a poller
// of one rare type, on two million events, made SCIM writes 100 times
// slower). An event written meanwhile is on the next page.
func TestEventStreamReadHoldsUpNoWriter(t *testing.T) {
	db, pg := openPG(t)
	ctx := context.Background()
	before, err := db.AppendEvent(ctx, Event{Type: "before"})
	if err != nil {
		t.Fatal(err)
	}
	var during Event
	wrote := make(chan error, 1)
	beforeEventsRead = func() {
		go func() {
			var err error
			during, err = db.AppendEvent(ctx, Event{Type: "during"})
			wrote <- err
		}()
		// Rather than give the writer a while and call it blocked, watch
		// PostgreSQL until it has written or queued for the events lock.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			select {
			case err := <-wrote:
				if err != nil {
					t.Errorf("append during the read: %v", err)
				}
				wrote <- nil
				return
			default:
			}
			var waiting int
			if err := pg.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
				WHERE locktype = 'advisory' AND NOT granted
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
				t.Errorf("pg_locks: %v", err)
				return
			}
			if waiting > 0 {
				t.Error("an event writer waits for a reader that is reading its page")
				return
			}
			if time.Now().After(deadline) {
				t.Error("the writer neither wrote nor queued for the events lock in a minute")
				return
			}
		}
	}
	t.Cleanup(func() { beforeEventsRead = nil })
	evs, _, err := db.ListEvents(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	beforeEventsRead = nil
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != before.ID {
		t.Fatalf("page %v, want only %s: an event past the horizon is the next page's", evs, before.ID)
	}
	evs, _, err = db.ListEvents(ctx, Page{After: before.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != during.ID {
		t.Fatalf("next page %v, want %s", evs, during.ID)
	}
}
