package samltest

import "testing"

func TestKeysHandsOutDistinctKeysInTurn(t *testing.T) {
	a, b := Keys(), Keys()
	var first []string
	for i := range PoolSize + 1 {
		k, err := a()
		if err != nil {
			t.Fatal(err)
		}
		n := k.N.String()
		if i < PoolSize {
			for j, f := range first {
				if f == n {
					t.Fatalf("key %d repeats key %d within the pool", i, j)
				}
			}
			first = append(first, n)
		} else if n != first[0] {
			t.Errorf("key %d is not the pool's first again", i)
		}
	}
	// Another Type starts from the first key: its connections have keys
	// of their own among themselves, whatever other tests took.
	if k, err := b(); err != nil || k.N.String() != first[0] {
		t.Errorf("a new Keys starts at another key (%v)", err)
	}
}
