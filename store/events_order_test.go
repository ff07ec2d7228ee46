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
	db, _ := openPG(t)
	ctx := context.Background()
	appended, hold := make(chan struct{}), make(chan struct{})
	var first Event
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, func(ctx context.Context) error {
			var err error
			first, err = db.AppendEvent(ctx, Event{Type: "first"})
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
	select {
	case p := <-read:
		close(hold) // let the writer finish, or closing the database waits for it
		<-done
		t.Fatalf("read %v while an earlier event could still commit: a cursor past it would skip that one", p.evs)
	case <-time.After(200 * time.Millisecond):
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
