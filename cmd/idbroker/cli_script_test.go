package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
)

func init() {
	// In-process commands never take the test's stdin for a terminal, nor
	// read from it: TestConfirm gives its own.
	stdinTerminal = func() (io.Reader, bool) { return strings.NewReader(""), false }
}

// databases are the two deployments the admin commands run on: the
// embedded SQLite file and PostgreSQL (a fresh database, no schema yet).
func databases(t *testing.T) map[string]map[string]string {
	return map[string]map[string]string{
		"sqlite": {envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))},
		"postgres": {
			envDatabaseURL: testdb.PostgresURL(t),
			envMasterKey:   testMasterKey,
		},
	}
}

// TestCommandsForScripts drives the built binary as a script does, on
// SQLite and on PostgreSQL: --json results on stdout that parse, secrets
// (the API key, the enrolment link) there and never on stderr, and no
// warning on stderr for a routine command, which names its database.
func TestCommandsForScripts(t *testing.T) {
	t.Parallel()
	for driver, env := range databases(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			run := func(args ...string) (string, string) {
				t.Helper()
				out, errOut, code := runBinary(t, env, args...)
				if code != exitOK {
					t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
				}
				// migrate up warns once, rightly, of the master key it generated
				// beside a new SQLite database.
				if strings.Contains(errOut, "level=WARN") && !strings.Contains(errOut, "GENERATED A NEW MASTER KEY") {
					t.Errorf("%v warned on stderr:\n%s", args, errOut)
				}
				return out, errOut
			}
			decode := func(args []string, out string, v any) {
				t.Helper()
				if err := json.Unmarshal([]byte(out), v); err != nil {
					t.Fatalf("%v --json: %v\n%s", args, err, out)
				}
			}
			run("migrate", "up")

			var status []struct {
				Version   int        `json:"version"`
				Name      string     `json:"name"`
				AppliedAt *time.Time `json:"applied_at"`
			}
			out, errOut := run("migrate", "status", "--json")
			decode([]string{"migrate", "status"}, out, &status)
			if len(status) < 10 || status[0].AppliedAt == nil || status[0].Name == "" {
				t.Errorf("migrate status --json: %+v", status)
			}
			if !strings.Contains(errOut, "using database") {
				t.Errorf("migrate status does not say which database it used:\n%s", errOut)
			}

			// The bare key, as scripts capture it today.
			bare, _ := run("apikey", "create", "--name", "bare")
			if !regexp.MustCompile(`^idb_sk_\S+\n$`).MatchString(bare) {
				t.Errorf("apikey create printed %q, want the key alone on a line", bare)
			}
			var created struct{ ID, Name, Prefix, Key string }
			out, errOut = run("apikey", "create", "--name", "ci", "--json")
			decode([]string{"apikey", "create"}, out, &created)
			if created.Name != "ci" || !strings.HasPrefix(created.ID, "ak_") || !strings.HasPrefix(created.Key, created.Prefix) || len(created.Key) < 32 {
				t.Errorf("apikey create --json: %+v", created)
			}
			if strings.Contains(errOut, created.Key) || strings.Contains(errOut, strings.TrimSpace(bare)) {
				t.Errorf("apikey create logged the key:\n%s", errOut)
			}

			type key struct {
				ID        string     `json:"id"`
				Name      string     `json:"name"`
				RevokedAt *time.Time `json:"revoked_at"`
			}
			list := func() map[string]key {
				var keys []key
				out, _ := run("apikey", "list", "--json")
				decode([]string{"apikey", "list"}, out, &keys)
				byID := map[string]key{}
				for _, k := range keys {
					byID[k.ID] = k
				}
				return byID
			}
			if k, ok := list()[created.ID]; !ok || k.Name != "ci" || k.RevokedAt != nil {
				t.Fatalf("apikey list --json: %+v, want %s unrevoked", k, created.ID)
			}
			// No terminal: --yes or not, nothing is asked, nothing waits.
			run("apikey", "revoke", created.ID)
			if k := list()[created.ID]; k.RevokedAt == nil {
				t.Errorf("after revoke, apikey list --json shows %+v unrevoked", k)
			}

			var op struct {
				ID, Email string
				Link      string `json:"enrolment_link"`
			}
			args := []string{"operator", "create", "--email", "ana@ops.example", "--issuer", "https://id.example", "--json"}
			out, errOut = run(args...)
			decode(args, out, &op)
			if !strings.HasPrefix(op.Link, "https://id.example/console/") || op.Email != "ana@ops.example" {
				t.Errorf("operator create --json: %+v", op)
			}
			if strings.Contains(errOut, op.Link) {
				t.Errorf("operator create logged the enrolment link:\n%s", errOut)
			}
			var ops []struct{ ID, Email, Status string }
			out, _ = run("operator", "list", "--json")
			decode([]string{"operator", "list"}, out, &ops)
			if len(ops) != 1 || ops[0].ID != op.ID || ops[0].Status != "pending" {
				t.Errorf("operator list --json: %+v", ops)
			}
			// The tables stay as scripts parse them today.
			if out, _ := run("operator", "list"); !strings.HasPrefix(out, "ID ") || !strings.Contains(out, op.ID) {
				t.Errorf("operator list:\n%s", out)
			}
			if out, _ := run("operator", "disable", op.ID, "--json"); !strings.Contains(out, `"status": "disabled"`) {
				t.Errorf("operator disable --json:\n%s", out)
			}
		})
	}
}

// TestUsageErrorsAreOneLine: a wrong command line exits 2 with one line
// saying what is wrong and one saying where the usage is, on stderr, and
// nothing on stdout; it opens no database to find out (the named one is
// not there, which would be exit 1).
func TestUsageErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	env := map[string]string{envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "absent.db"))}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apikey", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"apikey", "revoke"}, "takes the id of the key"},
		{[]string{"apikey", "revoke", "--yes"}, "takes the id of the key"},
		{[]string{"apikey", "frob"}, `unknown apikey command "frob"`},
		{[]string{"apikey", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"operator", "disable"}, "takes the operator's id"},
		{[]string{"operator", "reset", "a@ops.example", "--email", "b@ops.example"}, "name one operator"},
		{[]string{"operator", "create"}, "needs --email"},
		{[]string{"keys", "rotate", "--overlap", "-1h"}, "--overlap must not be negative"},
		{[]string{"keys", "rewrap", "--batch", "0"}, "--batch must be at least 1"},
		{[]string{"migrate", "status", "--yes"}, "flag provided but not defined: -yes"},
		{[]string{"audit", "verify", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"audit", "verify", "--write-anchors", "a.json", "--tenant", "tnt_x"}, "cannot go with --tenant"},
		{[]string{"audit", "verify", "--anchors", "a.json", "--checkpoint", "c.jws"}, "one or the other"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := runBinary(t, env, tc.args...)
			lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			if code != exitUsage || out != "" || len(lines) != 2 || !strings.Contains(lines[0], tc.want) ||
				!strings.HasPrefix(lines[1], `Run "idbroker `) || !strings.HasSuffix(lines[1], ` --help" for usage.`) {
				t.Errorf("exit %d, want %d with two lines, the first saying %q\nstdout: %q\nstderr: %q", code, exitUsage, tc.want, out, errOut)
			}
		})
	}
}

// TestEveryCommandHelp: every command and verb answers --help on stdout,
// exit 0, with examples and its exit statuses.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve"}, {"migrate", "up"}, {"migrate", "status"}, {"apikey", "create"}, {"apikey", "list"}, {"apikey", "revoke"},
		{"operator", "create"}, {"operator", "list"}, {"operator", "disable"}, {"operator", "reset"},
		{"keys", "rotate"}, {"keys", "rewrap"}, {"audit", "verify"}, {"healthcheck"}, {"version"},
		{"migrate"}, {"apikey"}, {"operator"}, {"keys"}, {"audit"},
	} {
		out, errOut, code := runInProcess(append(args, "--help")...)
		if code != exitOK || errOut != "" || !strings.Contains(out, "Usage: idbroker "+args[0]) ||
			!strings.Contains(out, "\nExamples:\n") || !strings.Contains(out, "\nExit status: 0 ") {
			t.Errorf("%v --help: exit %d, stderr %q, want usage, examples and exit statuses on stdout:\n%s", args, code, errOut, out)
		}
	}
	// The destructive verbs take --yes; the lists and the secrets, --json.
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"apikey", "revoke"}, "-yes"}, {[]string{"operator", "disable"}, "-yes"}, {[]string{"operator", "reset"}, "-yes"},
		{[]string{"keys", "rotate"}, "-yes"}, {[]string{"keys", "rewrap"}, "-yes"},
		{[]string{"apikey", "list"}, "-json"}, {[]string{"apikey", "create"}, "-json"}, {[]string{"operator", "list"}, "-json"},
		{[]string{"operator", "create"}, "-json"}, {[]string{"migrate", "status"}, "-json"},
	} {
		out, _, _ := runInProcess(append(tc.args, "--help")...)
		if !regexp.MustCompile(`(?m)^  ` + tc.flag + `\b`).MatchString(out) {
			t.Errorf("%v --help does not list %s:\n%s", tc.args, tc.flag, out)
		}
	}
}

// TestConfirm: on a terminal, revoke asks and does nothing unless told
// yes; --yes asks nothing. (Without a terminal nothing is asked:
// TestCommandsForScripts.)
func TestConfirm(t *testing.T) {
	url := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
	if _, errOut, code := runInProcess("migrate", "up", "--database-url", url); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	newKey := func() string {
		out, errOut, code := runInProcess("apikey", "create", "--json", "--database-url", url)
		var k struct{ ID string }
		if code != exitOK || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("create: %d %s", code, errOut)
		}
		return k.ID
	}
	revoked := func(id string) bool {
		out, _, _ := runInProcess("apikey", "list", "--json", "--database-url", url)
		var keys []struct {
			ID        string
			RevokedAt *time.Time `json:"revoked_at"`
		}
		json.Unmarshal([]byte(out), &keys)
		for _, k := range keys {
			if k.ID == id {
				return k.RevokedAt != nil
			}
		}
		t.Fatalf("key %s not listed:\n%s", id, out)
		return false
	}
	for _, tc := range []struct {
		answer      string
		yes         bool
		wantCode    int
		wantRevoked bool
		wantAsked   bool
	}{
		{answer: "n\n", wantCode: exitError, wantAsked: true},
		{answer: "", wantCode: exitError, wantAsked: true}, // EOF: no
		{answer: "whatever\n", wantCode: exitError, wantAsked: true},
		{answer: "y\n", wantCode: exitOK, wantRevoked: true, wantAsked: true},
		{answer: "YES\n", wantCode: exitOK, wantRevoked: true, wantAsked: true},
		{yes: true, wantCode: exitOK, wantRevoked: true},
	} {
		id := newKey()
		args := []string{"apikey", "revoke", id, "--database-url", url}
		if tc.yes {
			args = append(args, "--yes")
		}
		var out, errOut bytes.Buffer
		stdinTerminal = func() (io.Reader, bool) { return strings.NewReader(tc.answer), true }
		code := run(t.Context(), args, &out, &errOut, func(string) string { return "" })
		stdinTerminal = func() (io.Reader, bool) { return strings.NewReader(""), false }
		asked := strings.Contains(errOut.String(), "Revoke API key "+id+"?")
		if code != tc.wantCode || revoked(id) != tc.wantRevoked || asked != tc.wantAsked {
			t.Errorf("answer %q, --yes %v: exit %d, revoked %v, asked %v; want %d, %v, %v\nstdout: %s\nstderr: %s",
				tc.answer, tc.yes, code, revoked(id), asked, tc.wantCode, tc.wantRevoked, tc.wantAsked, &out, &errOut)
		}
		if !tc.wantRevoked && !strings.Contains(errOut.String(), "nothing was changed") {
			t.Errorf("answer %q: stderr does not say nothing was changed:\n%s", tc.answer, &errOut)
		}
	}
}

// TestDatabaseTrouble: an unreachable database and one that was never
// migrated each fail with exit 1 and one line naming the database (its
// password hidden) and, for the second, what to run.
func TestDatabaseTrouble(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"unreachable", map[string]string{
			envDatabaseURL: "postgres://idbroker:hunter2@127.0.0.1:1/idbroker?sslmode=disable", envMasterKey: testMasterKey,
		}, []string{"database postgres://idbroker:xxxxx@127.0.0.1:1/idbroker", "connect"}},
		{"not migrated", map[string]string{envDatabaseURL: testdb.PostgresURL(t), envMasterKey: testMasterKey},
			[]string{"has no schema yet", `run "idbroker migrate up" first`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, args := range [][]string{{"apikey", "list"}, {"operator", "list"}, {"keys", "rotate", "--yes"}, {"keys", "rewrap"}} {
				out, errOut, code := runBinary(t, tc.env, args...)
				var last string
				if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) > 0 {
					last = lines[len(lines)-1]
				}
				ok := code == exitError && out == "" && strings.HasPrefix(last, "idbroker "+args[0]+": ") && !strings.Contains(errOut, "hunter2")
				for _, w := range tc.want {
					ok = ok && strings.Contains(last, w)
				}
				if !ok {
					t.Errorf("%v: exit %d, want %d and a last line with %q\nstdout: %s\nstderr: %s", args, code, exitError, tc.want, out, errOut)
				}
			}
		})
	}
}

// TestAdminCommandsBesideServe: on the embedded SQLite database, the admin
// commands run while serve has it open and is busy, as an operator runs
// them on the one machine: none fails with "database is locked", a key
// created from the command line authenticates to the running broker at
// once and stops at once when revoked.
func TestAdminCommandsBesideServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(dir, "idbroker.db"))}
	b := startBroker(t, env)

	// Keep the broker writing (tenants) and reading while the commands run.
	stop := make(chan struct{})
	var busy sync.WaitGroup
	bootstrap, _, code := runBinary(t, env, "apikey", "create", "--name", "load")
	if code != exitOK {
		t.Fatal("apikey create beside serve failed")
	}
	bootstrap = strings.TrimSpace(bootstrap)
	busy.Add(1)
	go func() {
		defer busy.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b.do(http.MethodPost, "/api/v1/tenants", bootstrap, map[string]any{"name": "Load " + time.Now().Format(time.RFC3339Nano)}, nil)
			b.do(http.MethodGet, "/.well-known/jwks.json", "", nil, nil)
		}
	}()

	var wg sync.WaitGroup
	for _, args := range [][]string{
		{"apikey", "create", "--name", "a"}, {"apikey", "create", "--name", "b"}, {"apikey", "list", "--json"},
		{"operator", "create", "--email", "ana@ops.example"}, {"operator", "list"},
		{"keys", "rotate", "--yes"}, {"audit", "verify"}, {"migrate", "status"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, errOut, code := runBinary(t, env, args...); code != exitOK {
				t.Errorf("%v beside serve: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	close(stop)
	busy.Wait()

	out, errOut, code := runBinary(t, env, "apikey", "create", "--name", "live", "--json")
	var k struct{ ID, Key string }
	if code != exitOK || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("apikey create: exit %d: %s", code, errOut)
	}
	if got := b.do(http.MethodGet, "/api/v1/tenants", k.Key, nil, nil); got != http.StatusOK {
		t.Fatalf("a key created beside serve: GET /api/v1/tenants answered %d, want 200", got)
	}
	if _, errOut, code := runBinary(t, env, "apikey", "revoke", k.ID); code != exitOK {
		t.Fatalf("apikey revoke: exit %d: %s", code, errOut)
	}
	if got := b.do(http.MethodGet, "/api/v1/tenants", k.Key, nil, nil); got != http.StatusUnauthorized {
		t.Errorf("a key revoked beside serve: GET /api/v1/tenants answered %d, want 401", got)
	}
}

// TestFlagsOverrideEnvironment: as serve --help says, a command's flag wins
// over the variable it names, and the command says which database it used.
func TestFlagsOverrideEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "real.db")
	url := "sqlite://" + filepath.ToSlash(dbPath)
	if _, errOut, code := runInProcess("migrate", "up", "--database-url", url); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	env := map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(dir, "elsewhere.db")),
		envIssuer:      "https://from-env.example",
	}
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"operator", "create", "--email", "ana@ops.example", "--issuer", "https://from-flag.example", "--database-url", url},
		&out, &errOut, func(k string) string { return env[k] })
	if code != exitOK || !strings.HasPrefix(out.String(), "https://from-flag.example/") || !strings.Contains(errOut.String(), "database="+dbPath) {
		t.Fatalf("exit %d, want the flag's issuer and database\nstdout: %s\nstderr: %s", code, &out, &errOut)
	}
	// Without the flags, the environment's database is used: here, none.
	out.Reset()
	errOut.Reset()
	code = run(t.Context(), []string{"operator", "list"}, &out, &errOut, func(k string) string { return env[k] })
	if code != exitError || !strings.Contains(errOut.String(), "no database at "+filepath.Join(dir, "elsewhere.db")) {
		t.Fatalf("exit %d, want the environment's database refused\nstderr: %s", code, &errOut)
	}
}
