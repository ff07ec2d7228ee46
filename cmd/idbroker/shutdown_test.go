package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestServeBindsBeforeAnnouncing: with the port taken, serve fails naming
// the setting that moves it, and never says it is ready nor (with --dev)
// where to open the demo.
func TestServeBindsBeforeAnnouncing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, stderr, code := runBinary(t, map[string]string{
		envListen:      ln.Addr().String(),
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	}, "serve", "--dev")
	if code == 0 {
		t.Fatalf("serve on a taken port exited 0; output:\n%s", stderr)
	}
	for _, never := range []string{"idbroker ready", "dev: open the demo app"} {
		if strings.Contains(stderr, never) {
			t.Errorf("serve logged %q before failing to bind:\n%s", never, stderr)
		}
	}
	for _, want := range []string{"address already in use", envListen} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the bind error does not mention %q:\n%s", want, stderr)
		}
	}
}

// TestServeShutdownJoinsBackground runs serve in process and stops it:
// when serve returns, no goroutine it started (back-channel logout,
// connection maintenance, webhook dispatch, key reloads, session
// subscriptions) may still be running — they are joined before the store
// and the cache close under them.
func TestServeShutdownJoinsBackground(t *testing.T) {
	before := ourGoroutines()
	cfg, err := loadConfig(configSource{getenv: mapEnv(map[string]string{
		envListen:      "127.0.0.1:0",
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	}), dev: true})
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, true, log, nil) }()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), "http server listening"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve not listening within a minute:\n%s", logs)
		}
	}
	if started := len(ourGoroutines()) - len(before); started < 3 {
		t.Fatalf("only %d background goroutines while serving; the check below would prove nothing", started)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not return within a minute of cancellation")
	}
	// No polling: anything still here was not waited for.
	for id, stack := range ourGoroutines() {
		if _, ok := before[id]; !ok {
			t.Errorf("goroutine still running after serve returned:\n%s", stack)
		}
	}
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)

// ourGoroutines returns, by id, the stacks of the other goroutines running
// idbroker code (not tests).
func ourGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, g := range strings.Split(string(buf), "\n\n") {
		m := goroutineHeader.FindStringSubmatch(g)
		if i == 0 || m == nil { // the first is this goroutine
			continue
		}
		ours := false
		for _, line := range strings.Split(g, "\n") {
			if strings.HasPrefix(line, "github.com/idbroker/idbroker/") && !strings.Contains(line, "_test.") &&
				!strings.HasPrefix(line, "github.com/idbroker/idbroker/cmd/idbroker.Test") {
				ours = true
			}
		}
		if ours {
			out[m[1]] = g
		}
	}
	return out
}
