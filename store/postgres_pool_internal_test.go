package store

import (
	"context"
	"net/url"
	"runtime"
	"testing"
)

// TestPostgresPoolSize: without pool_max_conns in the URL the pool holds
// at least minPoolConns connections; with it, exactly what the URL says.
// Either way the URL migrates: the owner's connection for migrations
// leaves the pool's parameters out (the server refuses them as unknown).
func TestPostgresPoolSize(t *testing.T) {
	base := testPostgresURL(t)
	pgxDefault := int32(max(4, runtime.NumCPU()))
	for _, tc := range []struct {
		name, param string
		want        int32
	}{
		{"default", "", max(pgxDefault, minPoolConns)},
		{"fewer", "2", 2},
		{"more", "20", 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			if tc.param != "" {
				q := u.Query()
				q.Set("pool_max_conns", tc.param)
				u.RawQuery = q.Encode()
			}
			db := openTestDB(t, u.String()) // migrates
			if got := db.d.(*postgres).pool.Config().MaxConns; got != tc.want {
				t.Errorf("MaxConns = %d, want %d", got, tc.want)
			}
			if err := db.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
