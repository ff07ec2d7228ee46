package testdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server of a test's own, for fault tests that stop
// the database under a running broker: the machine's shared server is
// never stopped.
type Server struct {
	t    testing.TB
	bin  string // directory of initdb, pg_ctl
	dir  string // data directory
	port int
	cred *syscall.Credential // run as this user when we are root
}

// StartPostgres creates a cluster in a temporary directory (initdb from
// /usr/lib/postgresql/*/bin or PATH), starts it on a free loopback port
// with trust authentication, and stops it when t ends. Without the
// binaries it calls Unavailable.
func StartPostgres(t testing.TB) *Server {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		Unavailable(t, "initdb not found in /usr/lib/postgresql/*/bin or PATH")
	}
	s := &Server{t: t, bin: bin}
	parent, err := os.MkdirTemp("", "idbroker-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	s.dir = filepath.Join(parent, "data")
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			Unavailable(t, "running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(parent, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	s.run("initdb", "-D", s.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	s.port = freePort(t)
	s.Start()
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(s.dir, "postmaster.pid")); err == nil {
			s.run("pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop")
		}
	})
	return s
}

// URL is the server's "test" database, created at first start.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable", s.port)
}

// Start starts the (stopped) server again on its port and waits until it
// accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.run("pg_ctl", "-D", s.dir, "-w", "-t", "60", "-l", filepath.Join(s.dir, "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", s.port, s.dir), "start")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port))
	if err != nil {
		s.t.Fatalf("connect to the test's PostgreSQL: %v", err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = 'test'").Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	if n == 0 {
		if _, err := c.Exec(ctx, "CREATE DATABASE test"); err != nil {
			s.t.Fatal(err)
		}
	}
}

// Stop stops the server at once (as a crash would), dropping every
// connection.
func (s *Server) Stop() {
	s.t.Helper()
	s.run("pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop")
}

func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// postgresBin finds the directory holding initdb and pg_ctl, newest
// version first.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Freeze stops the postmaster and every backend with SIGSTOP: connections
// stay open and nothing answers, as with a database host that is swapping
// or a VM that is paused, rather than one that is gone. Thaw continues it.
func (s *Server) Freeze() { s.signalAll(syscall.SIGSTOP) }

// Thaw continues a frozen server.
func (s *Server) Thaw() { s.signalAll(syscall.SIGCONT) }

// signalAll sends sig to the postmaster (from postmaster.pid) and then to
// its children (backends and background workers), found through /proc
// after the postmaster has it: a backend forked while the children were
// listed (a pool opening a connection) would otherwise miss a SIGSTOP and
// go on answering. A stopped postmaster forks no more, so one listing
// after it is complete.
func (s *Server) signalAll(sig syscall.Signal) {
	s.t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.dir, "postmaster.pid"))
	if err != nil {
		s.t.Fatalf("testdb: read postmaster.pid: %v", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		s.t.Fatalf("testdb: postmaster.pid: %v", err)
	}
	signal := func(pid int) {
		if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
			s.t.Fatalf("testdb: signal %d: %v", pid, err)
		}
	}
	signal(pm)
	if sig == syscall.SIGSTOP {
		waitStopped(pm)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so read after
		// the last ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(pm) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			signal(pid)
		}
	}
}

// waitStopped waits (briefly) until pid's state is T: SIGSTOP is delivered
// asynchronously, and a fork under way completes before it, so the child
// must be in /proc before the postmaster is read as stopped.
func waitStopped(pid int) {
	for range 200 {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
