package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/gctune"
	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store/storetest"
)

// childEnv marks a process started by these tests to be the idbroker binary
// rather than the test binary: the end-to-end tests run the real main,
// signals and exit codes included, in a subprocess built with the same
// flags (-race) as the tests themselves.
const childEnv = "IDBROKER_TEST_RUN_MAIN"

// binaryEnv, in a child's env map, names another idbroker binary to run
// instead of this test binary (an earlier release, in the upgrade tests);
// it is not passed on to the child.
const binaryEnv = "IDBROKER_TEST_BINARY"

// freshDatabaseEnv, in a child's env map, leaves a SQLite database that is
// not there yet for `serve` to create and migrate itself (a test of a
// first start); without it startBroker writes a migrated copy first (see
// seedSQLite). It is not passed on to the child.
const freshDatabaseEnv = "IDBROKER_TEST_FRESH_DATABASE"

// Tests here run in parallel (t.Parallel) unless they change state of this
// process: every broker is a child process on its own port, with its own
// SQLite file, PostgreSQL database (testdb) and, when it uses Redis, its
// own redis-server (ownRedis). The few that stay sequential set a package
// variable (stdinTerminal, applyGC), serve in-process, or rely on a timing
// window (TestRevocationSurvivesSameEpochRestore); see TESTING.md.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	// serve in-process must not change this test binary's collector.
	applyGC = func(gctune.Choice) {}
	os.Exit(m.Run())
}

// ---- running the binary ----

// syncBuffer collects a child's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// childCommand returns a command running idbroker with args, with env on
// top of this process's environment minus every IDBROKER_ and OTEL_
// variable (so a developer's own settings cannot leak into a test).
func childCommand(ctx context.Context, env map[string]string, args ...string) *exec.Cmd {
	prog := os.Args[0]
	if p := env[binaryEnv]; p != "" {
		prog = p
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IDBROKER_") && !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "GORACE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=1", "GORACE="+childGORACE())
	for k, v := range env {
		if k != binaryEnv && k != freshDatabaseEnv {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	return cmd
}

// raceReport opens every report of the race detector.
const raceReport = "WARNING: DATA RACE"

// childGORACE is the race detector's options for a child: this process's
// GORACE plus atexit_sleep_ms=0 unless it sets that itself. By default a
// race-enabled process sleeps a second when it exits (for goroutines still
// running to report a race), and the tests wait for hundreds of children
// to exit: minutes of sleep. Reports already under way are still waited
// for and still make the exit status 66; the sleep only gives goroutines
// abandoned at exit a second to race, which no test relies on.
func childGORACE() string {
	opts := os.Getenv("GORACE")
	if !strings.Contains(opts, "atexit_sleep_ms") {
		opts = strings.TrimSpace(opts + " atexit_sleep_ms=0")
	}
	return opts
}

// runBinary runs idbroker to completion and returns its output and exit
// code.
func runBinary(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := childCommand(ctx, env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("run idbroker %v: %v", args, err)
	}
	if strings.Contains(errOut.String(), raceReport) {
		t.Errorf("idbroker %v reported a data race:\n%s", args, errOut.String())
	}
	return out.String(), errOut.String(), code
}

// node is a running `idbroker serve`.
type node struct {
	t      *testing.T
	base   string
	cmd    *exec.Cmd
	output *syncBuffer
	client *http.Client
	done   chan struct{}
	err    error // of cmd.Wait, once done is closed
}

// productionEnv is the environment of a production deployment on a fresh
// PostgreSQL database and the Redis at redisURL (a test's own server, so
// that it can be stopped, frozen or rewound).
func productionEnv(t *testing.T, redisURL string) map[string]string {
	return map[string]string{
		envDatabaseURL:     testdb.PostgresURL(t),
		envRedisURL:        redisURL,
		envMasterKey:       testMasterKey,
		envBootstrapAPIKey: e2eBootstrapKey,
	}
}

// startNodes starts n brokers (serve --dev) with env, the nodes of one
// deployment: the second and later serve the first one's issuer.
func startNodes(t *testing.T, env map[string]string, n int) []*node {
	t.Helper()
	nodes := []*node{startBroker(t, env, "--dev")}
	rest := map[string]string{envIssuer: nodes[0].base}
	for k, v := range env {
		rest[k] = v
	}
	for len(nodes) < n {
		nodes = append(nodes, startBroker(t, rest, "--dev"))
	}
	return nodes
}

// startBroker starts `idbroker serve` on a free loopback port with env and
// waits until it is ready. The broker is stopped when t ends.
func startBroker(t *testing.T, env map[string]string, args ...string) *node {
	t.Helper()
	// The port is free when chosen but may be taken before the child binds
	// it (by a broker another test starts at the same moment): try again.
	for attempt := 1; ; attempt++ {
		b, err := tryStartBroker(t, env, args...)
		if err == nil {
			return b
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
	}
}

var errPortTaken = errors.New("port taken")

func tryStartBroker(t *testing.T, env map[string]string, args ...string) (*node, error) {
	t.Helper()
	addr := env[envListen] // a node restarted where it was (the upgrade tests)
	if addr == "" {
		addr = freeAddr(t)
	}
	full := map[string]string{
		envListen: addr,
		envIssuer: "http://" + addr,
	}
	for k, v := range env {
		full[k] = v
	}
	b := &node{
		t:      t,
		base:   "http://" + addr,
		output: new(syncBuffer),
		// A hung broker fails the test in seconds, not at the test timeout.
		client: &http.Client{Timeout: 10 * time.Second},
		done:   make(chan struct{}),
	}
	seedSQLite(t, full)
	b.cmd = childCommand(context.Background(), full, append([]string{"serve"}, args...)...)
	b.cmd.Stdout, b.cmd.Stderr = b.output, b.output
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start idbroker serve: %v", err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
		// The race detector reports as it detects, so a race in a broker
		// the test killed is in its output even though no exit status 66
		// was seen.
		switch out := b.output.String(); {
		case strings.Contains(out, raceReport):
			t.Errorf("idbroker reported a data race; output:\n%s", out)
		case t.Failed():
			t.Logf("idbroker output:\n%s", out)
		}
	})
	return b, b.waitReady(addr)
}

// seedSQLite writes a migrated copy of the schema where env's sqlite://
// database is to be, unless the file is there already, env asks for a
// fresh one (freshDatabaseEnv) or names another binary (an older release
// must migrate from its own schema). Migrating costs a child broker about
// 1.5 s of CPU under -race, most of what its start costs, and the tests
// start hundreds of them; the migrations themselves are tested in store
// and by the tests that ask for a fresh file.
func seedSQLite(t *testing.T, env map[string]string) {
	t.Helper()
	if env[freshDatabaseEnv] != "" || env[binaryEnv] != "" {
		return
	}
	path, ok := strings.CutPrefix(env[envDatabaseURL], "sqlite://")
	if !ok {
		return
	}
	path, _, _ = strings.Cut(path, "?")
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return // serve makes the directory: a first start, left as it is
	}
	storetest.SQLiteFile(t, path)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady waits until the broker has bound addr itself (its server logs
// so; a 200 from the port alone could come from another process) and
// /readyz answers 200. It fails when the process exits first or a minute
// passes (the first start on a fresh database migrates and generates RSA
// keys).
func (b *node) waitReady(addr string) error {
	listening, listeningJSON := "addr="+addr, `"addr":"`+addr+`"` // IDBROKER_LOG_FORMAT text or json
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-b.done:
			if strings.Contains(b.output.String(), "address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("idbroker serve exited before it was ready (%v); output:\n%s", b.err, b.output)
		default:
		}
		if out := b.output.String(); !strings.Contains(out, listening) && !strings.Contains(out, listeningJSON) {
			continue
		}
		if resp, err := b.client.Get(b.base + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("idbroker serve not ready within a minute; output:\n%s", b.output)
}

// stop sends SIGTERM and expects a graceful exit with status 0.
func (b *node) stop() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.t.Fatalf("signal idbroker: %v", err)
	}
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.t.Fatalf("idbroker did not stop within 30s of SIGTERM; output:\n%s", b.output)
	}
	if b.err != nil {
		b.t.Fatalf("idbroker exited with %v after SIGTERM; output:\n%s", b.err, b.output)
	}
}

// do sends a request with the API key (if any) and decodes a JSON answer
// into out (if non-nil), returning the status.
func (b *node) do(method, path, apiKey string, body, out any) int {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("%s %s: %d, body %q is not JSON: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// ---- services ----

// ownRedis starts a redis-server of t's own and returns its URL. Brokers
// share a Redis by design: they write under one key prefix and announce
// revocations on one channel (pub/sub ignores the database number), and
// rate limits are counted there per client address, which is 127.0.0.1
// for every test. So brokers of tests that run in parallel must not share
// the machine's Redis (sessionstest.RedisURL).
func ownRedis(t *testing.T) string {
	t.Helper()
	return sessionstest.StartServer(t).URL()
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
