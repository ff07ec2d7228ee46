package store

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestEverySealedColumnIsRewrapped: every binary column of the schema is
// either a hash (named …hash) or listed in sealedColumns, so that a new
// sealed column cannot be left out of a master-key rotation.
func TestEverySealedColumnIsRewrapped(t *testing.T) {
	_, pg := openPG(t)
	rows, err := pg.pool.Query(context.Background(), `
		SELECT ARRAY[table_name::text, column_name::text] FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type = 'bytea'`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, c := range sealedColumns {
		listed[c.table+"."+c.column] = true
	}
	for _, c := range cols {
		name := c[0] + "." + c[1]
		if strings.HasSuffix(c[1], "hash") || listed[name] {
			continue
		}
		t.Errorf("%s is binary, not a hash and not in sealedColumns: is it sealed? then list it", name)
	}
}
