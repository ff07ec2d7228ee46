package sessionstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/redis/go-redis/v9"
)

// Server is a redis-server of a test's own, on a spare port, for fault
// tests that stop Redis: the machine's shared Redis is never touched. It
// persists every write (appendonly, fsync always) in a directory of the
// test, so that Kill and Start behave like a crash and a restart, not like
// a wipe.
type Server struct {
	t    testing.TB
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	noInfo bool // DenyInfo: applied at every Start
}

// StartServer starts a redis-server (from PATH) and stops it when t ends.
// Without the binary the test is skipped, or failed when CI=true.
func StartServer(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testdb.Unavailable(t, "redis-server not in PATH: %v", err)
		return nil
	}
	s := &Server{t: t, port: freePort(t), dir: t.TempDir()}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URL is the server's redis:// URL; it stays the same across restarts.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Client returns a client of the server, closed when t ends, that does not
// retry: a fault test sees the first failure as the caller would.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Start (re)starts the server on its port with its data, and waits until
// it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("sessionstest: redis-server already running")
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		if err == nil && s.noInfo {
			err = c.Do(ctx, "ACL", "SETUSER", "default", "-info").Err()
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d not answering: %v", s.port, err)
		}
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it
// to exit. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause stops the server with SIGSTOP: its connections stay open and
// every request hangs, as with a server that is frozen (swapping, a VM
// paused) rather than gone. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("sessionstest: redis-server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server: %v", err)
	}
}

// Snapshot copies the server's data as it is now (every write is on disk
// already: fsync always) and returns where, for RestartFrom: the backup an
// operator restores, the RDB or AOF a restart finds, a replica that lags.
func (s *Server) Snapshot() string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := filepath.Join(s.t.TempDir(), "snapshot")
	if err := os.CopyFS(dst, os.DirFS(s.dir)); err != nil {
		s.t.Fatalf("snapshot redis data: %v", err)
	}
	return dst
}

// RestartFrom kills the server and starts it again on the data of
// snapshot, as Redis does after a crash with the snapshot on disk: every
// write after the snapshot is lost. The new process has a new run_id.
func (s *Server) RestartFrom(snapshot string) {
	s.t.Helper()
	s.Kill()
	if err := os.RemoveAll(s.dir); err != nil {
		s.t.Fatal(err)
	}
	if err := os.CopyFS(s.dir, os.DirFS(snapshot)); err != nil {
		s.t.Fatalf("restore redis data: %v", err)
	}
	s.Start()
}

// RestartEmpty kills the server and starts it again with no data, as a
// Redis without persistence restarts.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Kill()
	if err := os.RemoveAll(s.dir); err != nil {
		s.t.Fatal(err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	s.Start()
}

// DenyInfo refuses INFO to every client (the default user's ACL), now and
// after every restart, as some managed Redis offerings do.
func (s *Server) DenyInfo() {
	s.t.Helper()
	s.mu.Lock()
	s.noInfo = true
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer c.Close()
	if err := c.Do(context.Background(), "ACL", "SETUSER", "default", "-info").Err(); err != nil {
		s.t.Fatalf("deny INFO: %v", err)
	}
}

// RestoreInPlace replaces every key of the running server with the keys
// of snapshot, in one MULTI, without restarting it: the server keeps its
// run_id, as a managed Redis restored from a backup, or keys RESTOREd by
// an operator, may. The snapshot is read by a second redis-server of its
// own, stopped before returning.
func (s *Server) RestoreInPlace(snapshot string) {
	s.t.Helper()
	src := &Server{t: s.t, port: freePort(s.t), dir: s.t.TempDir()}
	if err := os.CopyFS(src.dir, os.DirFS(snapshot)); err != nil {
		s.t.Fatalf("copy snapshot: %v", err)
	}
	src.Start()
	defer src.Kill()
	ctx := context.Background()
	sc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", src.port)})
	defer sc.Close()
	type entry struct {
		key, dump string
		ttl       time.Duration
	}
	var keys []entry
	iter := sc.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		d, err := sc.Dump(ctx, k).Result()
		if err != nil {
			s.t.Fatalf("dump %s: %v", k, err)
		}
		ttl, err := sc.PTTL(ctx, k).Result()
		if err != nil {
			s.t.Fatalf("pttl %s: %v", k, err)
		}
		keys = append(keys, entry{k, d, max(ttl, 0)})
	}
	if err := iter.Err(); err != nil {
		s.t.Fatalf("scan snapshot: %v", err)
	}
	dst := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer dst.Close()
	_, err := dst.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.FlushDB(ctx)
		for _, e := range keys {
			p.Restore(ctx, e.key, e.ttl, e.dump)
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("restore snapshot in place: %v", err)
	}
}
