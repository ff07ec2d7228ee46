package storetest

import (
	"encoding/binary"
	"io"
	"net"
	neturl "net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// RoundTrips counts the round trips a store makes to PostgreSQL: every
// simple-protocol Query and every Sync (which ends a statement or a
// pipeline of the extended protocol) is one, what the client then waits
// on. Read it with Load.
type RoundTrips struct{ n atomic.Int64 }

// Load returns the round trips counted so far.
func (r *RoundTrips) Load() int64 { return r.n.Load() }

// PostgresCounted is Postgres, the store talking to the server through a
// proxy on the loopback that counts its round trips: the same server and
// protocol, nothing stubbed, for tests and benchmarks that state what a
// path costs. The proxy reads the client's messages only. url is the
// database's, for a second, uncounted store on it.
func PostgresCounted(t testing.TB) (db *store.DB, rt *RoundTrips, url string) {
	t.Helper()
	url = PostgresURL(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rt = &RoundTrips{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { rt.proxy(c, upstream) })
		}
	})
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable") // the counter reads the protocol in clear
	u.RawQuery = q.Encode()
	return Open(t, u.String(), NewCipher(t)), rt, url
}

// proxy forwards one connection, counting what the client sends.
func (r *RoundTrips) proxy(c net.Conn, upstream string) {
	defer c.Close()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(c, up)
		c.Close()
	}()
	pr, pw := io.Pipe()
	go r.count(pr)
	io.Copy(io.MultiWriter(up, pw), c)
	pw.Close()
}

// Protocol codes of the untyped messages a client may open with.
const (
	sslRequest    = 80877103
	gssencRequest = 80877104
)

// count reads the client's side of the protocol: untyped messages
// (length, body) until the startup message, then typed ones (a byte, a
// length, a body).
func (r *RoundTrips) count(in io.Reader) {
	defer io.Copy(io.Discard, in)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(in, hdr[:8]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if code := binary.BigEndian.Uint32(hdr[4:8]); n == 8 && (code == sslRequest || code == gssencRequest) {
			continue // the server answers with one byte; startup follows
		}
		if _, err := io.CopyN(io.Discard, in, int64(n)-8); err != nil {
			return
		}
		break
	}
	for {
		if _, err := io.ReadFull(in, hdr[:5]); err != nil {
			return
		}
		if hdr[0] == 'Q' || hdr[0] == 'S' {
			r.n.Add(1)
		}
		if _, err := io.CopyN(io.Discard, in, int64(binary.BigEndian.Uint32(hdr[1:5]))-4); err != nil {
			return
		}
	}
}
