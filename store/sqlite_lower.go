package store

import (
	"database/sql/driver"
	"strings"

	"modernc.org/sqlite"
)

// SQLite's own lower() folds ASCII letters only, PostgreSQL's (in a UTF-8
// database) every letter: "ÄLICE" and "älice" were one userName on
// PostgreSQL and two on SQLite, for the unique index users_user_name, a
// SCIM filter eq, and a sign-in found by userName. SCIM's userName is
// case-insensitive for every letter (RFC 7643 §4.1.1, caseExact false),
// so on SQLite lower() is replaced, on every connection, by Go's
// strings.ToLower: the folding NormalizeEmail gives stored emails, and
// PostgreSQL's for the letters people write. The generated _lc columns,
// the indexes over them and over lower(), and the queries that fold their
// arguments with lower() then agree without a change to any of them
// (migration 0115 rebuilds the indexes folded by the old lower()).
//
// The cost is a call into Go per lower(): a handful per SCIM create or
// sign-in, no new statement; strings.ToLower returns ASCII-lower text as
// it is, without allocating.
//
// The sqlite3 shell still has the ASCII lower(): a row it writes with
// non-ASCII capitals in userName or email is indexed differently (REINDEX
// in the broker fixes it). Reading with the shell is unaffected.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("lower", 1, sqliteLower)
}

// sqliteLower is lower(x): NULL for NULL, text folded by strings.ToLower,
// and anything else (a number, which no query folds) as it is.
func sqliteLower(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case string:
		return strings.ToLower(v), nil
	case []byte:
		return strings.ToLower(string(v)), nil
	default:
		return v, nil
	}
}
