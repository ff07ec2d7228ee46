package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOperatorDisable: an operator is disabled by id, by email, or by
// --email as create names them; a mismatch or nobody is a usage error.
func TestOperatorDisable(t *testing.T) {
	t.Parallel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "idbroker.db")
	if _, errOut, code := runInProcess("migrate", "up", "--database-url", url); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	for _, email := range []string{"a@ops.example", "b@ops.example", "c@ops.example"} {
		if _, errOut, code := runInProcess("operator", "create", "--email", email, "--issuer", "https://id.example", "--database-url", url); code != exitOK {
			t.Fatalf("create %s: %s", email, errOut)
		}
	}
	for _, tc := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"a@ops.example"}, exitOK, "disabled"},
		{[]string{"--email", "b@ops.example"}, exitOK, "disabled"},
		{[]string{"c@ops.example", "--email", "a@ops.example"}, exitUsage, "name one operator"},
		{nil, exitUsage, "takes the operator's id"},
		{[]string{"--email", "nobody@ops.example"}, exitError, "no operator"},
	} {
		args := append(append([]string{"operator", "disable"}, tc.args...), "--database-url", url)
		out, errOut, code := runInProcess(args...)
		if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: code %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, code, tc.wantCode, tc.want, out, errOut)
		}
	}
}

// TestCommandsNeedASchema: the commands that use the database without
// migrating it say so on a database no migration has run on, instead of
// failing on a missing table.
func TestCommandsNeedASchema(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"apikey", "create"},
		{"apikey", "list"},
		{"operator", "list"},
		{"operator", "create", "--email", "a@ops.example", "--issuer", "https://id.example"},
		{"keys", "rotate"},
		{"audit", "verify"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			// An empty file: a database, there, that no migration has run on
			// (a file that is not there is refused before: no database at).
			path := filepath.Join(t.TempDir(), "fresh.db")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			url := "sqlite://" + path
			out, errOut, code := runInProcess(append(args, "--database-url", url)...)
			want := exitError
			if args[0] == "audit" {
				want = exitUnchecked // no verdict on a log it could not read
			}
			if code != want || !strings.Contains(errOut, "idbroker migrate up") || strings.Contains(errOut, "no such table") {
				t.Errorf("code %d, want %d with a pointer to migrate up\nstdout: %s\nstderr: %s", code, want, out, errOut)
			}
		})
	}
}

// TestOperatorReset: operator reset names one operator like disable; an
// operator who has not enrolled is pointed at operator create, a disabled
// one stays disabled, an unknown one is an error. (An enrolled operator's
// reset, through the console, is TestResetOperator of admin-portal/console.)
func TestOperatorReset(t *testing.T) {
	t.Parallel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "idbroker.db")
	if _, errOut, code := runInProcess("migrate", "up", "--database-url", url); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	for _, email := range []string{"a@ops.example", "b@ops.example"} {
		if _, errOut, code := runInProcess("operator", "create", "--email", email, "--issuer", "https://id.example", "--database-url", url); code != exitOK {
			t.Fatalf("create %s: %s", email, errOut)
		}
	}
	if _, errOut, code := runInProcess("operator", "disable", "b@ops.example", "--database-url", url); code != exitOK {
		t.Fatalf("disable: %s", errOut)
	}
	for _, tc := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"a@ops.example"}, exitError, "operator create"},
		{[]string{"--email", "b@ops.example"}, exitError, "disabled"},
		{[]string{"a@ops.example", "--email", "b@ops.example"}, exitUsage, "name one operator"},
		{nil, exitUsage, "takes the operator's id"},
		{[]string{"nobody@ops.example"}, exitError, "no operator"},
	} {
		args := append(append([]string{"operator", "reset"}, tc.args...), "--issuer", "https://id.example", "--database-url", url)
		out, errOut, code := runInProcess(args...)
		if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: code %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, code, tc.wantCode, tc.want, out, errOut)
		}
	}
}
