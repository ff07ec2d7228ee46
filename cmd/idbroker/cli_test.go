package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runInProcess(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(string) string { return "" })
	return out.String(), errOut.String(), code
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{args: nil, wantCode: exitUsage, wantStderr: []string{"Usage:", "serve", "migrate"}},
		{args: []string{"--help"}, wantCode: exitOK, wantStdout: []string{"Usage:", "serve", "migrate", "apikey", "keys", "version"}},
		{args: []string{"-h"}, wantCode: exitOK, wantStdout: []string{"Usage:"}},
		{args: []string{"help"}, wantCode: exitOK, wantStdout: []string{"Usage:"}},
		{args: []string{"help", "serve"}, wantCode: exitOK, wantStdout: []string{"idbroker serve", "--dev"}},
		{args: []string{"frobnicate"}, wantCode: exitUsage, wantStderr: []string{`unknown command "frobnicate"`, "Usage:"}},
		{args: []string{"serve", "--help"}, wantCode: exitOK,
			wantStdout: []string{"Usage: idbroker serve", "-dev", "-no-migrate", "-listen", "-issuer", "-database-url", "-redis-url",
				envIssuer, envListen, envDatabaseURL, envRedisURL, envMasterKey, envBootstrapAPIKey, envAllowPrivateNetworks}},
		{args: []string{"serve", "--bogus"}, wantCode: exitUsage, wantStderr: []string{"flag provided but not defined: -bogus"}},
		{args: []string{"serve", "extra"}, wantCode: exitUsage, wantStderr: []string{`unexpected argument "extra"`}},
		{args: []string{"serve", "--listen", "abc"}, wantCode: exitError,
			wantStderr: []string{`--listen (IDBROKER_LISTEN): "abc" is not host:port`}},
		{args: []string{"migrate"}, wantCode: exitUsage, wantStderr: []string{"migrate up", "migrate status"}},
		{args: []string{"migrate", "--help"}, wantCode: exitOK, wantStdout: []string{"migrate up", "migrate status"}},
		{args: []string{"migrate", "sideways"}, wantCode: exitUsage, wantStderr: []string{`unknown migrate command "sideways"`}},
		{args: []string{"migrate", "up", "--help"}, wantCode: exitOK, wantStdout: []string{"-database-url"}},
		{args: []string{"migrate", "status", "--database-url", "mysql://x"}, wantCode: exitError,
			wantStderr: []string{`--database-url (IDBROKER_DATABASE_URL): scheme "mysql" is not supported`}},
		{args: []string{"apikey"}, wantCode: exitUsage, wantStderr: []string{"apikey create"}},
		{args: []string{"apikey", "create", "--help"}, wantCode: exitOK, wantStdout: []string{"-name", "once"}},
		{args: []string{"apikey", "delete"}, wantCode: exitUsage, wantStderr: []string{`unknown apikey command "delete"`}},
		{args: []string{"keys"}, wantCode: exitUsage, wantStderr: []string{"keys rotate"}},
		{args: []string{"keys", "rotate", "--help"}, wantCode: exitOK, wantStdout: []string{"-overlap"}},
		{args: []string{"keys", "rotate", "--overlap", "-1h"}, wantCode: exitUsage, wantStderr: []string{"--overlap"}},
		{args: []string{"version"}, wantCode: exitOK, wantStdout: []string{"idbroker dev", "go1."}},
		{args: []string{"--version"}, wantCode: exitOK, wantStdout: []string{"idbroker "}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runInProcess(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout does not contain %q:\n%s", want, stdout)
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
		})
	}
}

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	ver, _ := buildVersion()
	if ver == "" {
		t.Fatal("buildVersion returned an empty version")
	}
}

// TestAdminCommandsNeedTheDatabase: the commands that work on an existing
// embedded database (apikey, operator, keys, audit, migrate status), run
// where there is none, say where they looked and create nothing: no empty
// database, no master key beside it. migrate up creates both, and the
// commands then ask for the schema only while it is missing.
func TestAdminCommandsNeedTheDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "idbroker.db")
	getenv := func(k string) string {
		if k == envDatabaseURL {
			return "sqlite://" + filepath.ToSlash(db)
		}
		return ""
	}
	cmd := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), args, &out, &errOut, getenv)
		return errOut.String(), code
	}
	for _, args := range [][]string{{"apikey", "list"}, {"apikey", "create"}, {"operator", "list"},
		{"keys", "rotate"}, {"audit", "verify"}, {"migrate", "status"}} {
		stderr, code := cmd(args...)
		if code == exitOK || !strings.Contains(stderr, "no database at "+db) {
			t.Errorf("%v: exit %d, stderr %q; want a failure naming %s", args, code, stderr, db)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("the commands left %v (%v) behind; want nothing", entries, err)
	}
	if stderr, code := cmd("migrate", "up"); code != exitOK {
		t.Fatalf("migrate up: exit %d: %s", code, stderr)
	}
	if stderr, code := cmd("apikey", "list"); code != exitOK {
		t.Fatalf("apikey list after migrate up: exit %d: %s", code, stderr)
	}
}
