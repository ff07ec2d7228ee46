package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runInProcess(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(string) string { return "" })
	return out.String(), errOut.String(), code
}

func TestCommandLine(t *testing.T) {
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
	ver, _ := buildVersion()
	if ver == "" {
		t.Fatal("buildVersion returned an empty version")
	}
}
