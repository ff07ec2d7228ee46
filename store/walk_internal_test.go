package store

import (
	"errors"
	"slices"
	"testing"
)

// chain is a fake hash chain for walkBySeq: seqs with gaps, as a chain
// keeps after rows are rolled back, and a reader that answers as the
// walks' queries do.
type chain []int64

func (c chain) read(reads *int) func(after int64, limit int) ([]seqRow[int64], error) {
	return func(after int64, limit int) ([]seqRow[int64], error) {
		*reads++
		var page []seqRow[int64]
		for _, seq := range c {
			if seq > after && len(page) < limit {
				page = append(page, seqRow[int64]{seq: seq, v: seq})
			}
		}
		return page, nil
	}
}

// TestWalkBySeqVisitsEveryRowOnce: a walk of pages of two visits every
// row once in order, whether the last page is full, short or empty, and
// reads one page past a full one only.
func TestWalkBySeqVisitsEveryRowOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     chain
		reads int
	}{
		{"empty", nil, 1},
		{"one short page", chain{3}, 1},
		{"full pages then an empty one", chain{1, 2, 5, 9}, 3},
		{"full pages then a short one", chain{1, 2, 5, 9, 10}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			reads := 0
			err := walkBySeq(2, tc.c.read(&reads), func(v int64) error { got = append(got, v); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.c) || reads != tc.reads {
				t.Fatalf("visited %v in %d reads, want %v in %d", got, reads, tc.c, tc.reads)
			}
		})
	}
}

// TestWalkBySeqStopsAtAnError: an error of fn or of a read ends the walk
// and is returned as it is.
func TestWalkBySeqStopsAtAnError(t *testing.T) {
	stop := errors.New("stop")
	reads, n := 0, 0
	err := walkBySeq(2, chain{1, 2, 3, 4, 5}.read(&reads), func(v int64) error {
		n++
		if v == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 || reads != 2 {
		t.Fatalf("fn error: %v after %d rows and %d reads, want %v after 3 and 2", err, n, reads, stop)
	}
	err = walkBySeq(2, func(int64, int) ([]seqRow[int64], error) { return nil, stop }, func(int64) error {
		t.Fatal("fn called after a failed read")
		return nil
	})
	if err != stop {
		t.Fatalf("read error: %v, want %v", err, stop)
	}
}

// fakeRow scans its values into the destinations it is given, as
// database/sql and pgx do.
type fakeRow []int64

func (r fakeRow) Scan(dest ...any) error {
	if len(dest) != len(r) {
		return errors.New("column count")
	}
	for i, d := range dest {
		*d.(*int64) = r[i]
	}
	return nil
}

// TestWithSeqReadsSeqFirst: withSeq hands the first column to seq and the
// rest to the row's own scanner.
func TestWithSeqReadsSeqFirst(t *testing.T) {
	scan := withSeq(func(r row) (int64, error) {
		var v int64
		return v, r.Scan(&v)
	})
	s, err := scan(fakeRow{42, 7})
	if err != nil || s.seq != 42 || s.v != 7 {
		t.Fatalf("got %+v %v, want seq 42 and value 7", s, err)
	}
}
