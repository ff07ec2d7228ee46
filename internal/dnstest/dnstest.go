// Package dnstest runs a tiny DNS server on loopback for tests: it answers
// TXT questions from a table the test controls and NXDOMAIN for every other
// name, over UDP, which is all a domain-verification lookup needs. Point a
// resolver at Server.Addr (IDBROKER_DNS_RESOLVER).
package dnstest

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
)

// Server is a running loopback DNS server.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string

	conn net.PacketConn
	mu   sync.Mutex
	txt  map[string][]string
	done chan struct{}
}

// Start starts a server that stops when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: listen: %v", err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), conn: pc, txt: map[string][]string{}, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		pc.Close()
		<-s.done
	})
	return s
}

// SetTXT makes name (without trailing dot, any case) answer values; no
// values removes it.
func (s *Server) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(strings.TrimSuffix(name, "."))
	if len(values) == 0 {
		delete(s.txt, key)
		return
	}
	s.txt[key] = values
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, err := s.answer(buf[:n]); err == nil {
			s.conn.WriteTo(resp, addr)
		}
	}
}

const (
	typeTXT     = 16
	rcodeNXName = 3
)

// answer builds the response to one query: the header and question
// echoed, then the TXT answers.
func (s *Server) answer(q []byte) ([]byte, error) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, errors.New("dnstest: want one question")
	}
	// The question: labels up to the zero byte, then type and class.
	i := 12
	var labels []string
	for {
		if i >= len(q) {
			return nil, errors.New("dnstest: short question")
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil, errors.New("dnstest: bad label")
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil, errors.New("dnstest: short question")
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, "."))

	s.mu.Lock()
	values, ok := s.txt[name]
	s.mu.Unlock()

	resp := make([]byte, 12, 512)
	copy(resp, q[:2])               // id
	flags := uint16(0x8400)         // response, authoritative
	flags |= uint16(q[2]&0x01) << 8 // recursion desired, echoed
	flags |= 0x0080                 // recursion available
	var answers [][]byte
	switch {
	case !ok:
		flags |= rcodeNXName
	case qtype == typeTXT:
		for _, v := range values {
			answers = append(answers, txtRecord(v))
		}
	}
	binary.BigEndian.PutUint16(resp[2:4], flags)
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, 0xC0, 12) // name: pointer to the question
		resp = binary.BigEndian.AppendUint16(resp, typeTXT)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 60)
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(a)))
		resp = append(resp, a...)
	}
	return resp, nil
}

// txtRecord is v as TXT RDATA: character-strings of at most 255 bytes.
func txtRecord(v string) []byte {
	var out []byte
	for {
		chunk := v
		if len(chunk) > 255 {
			chunk = chunk[:255]
		}
		out = append(out, byte(len(chunk)))
		out = append(out, chunk...)
		v = v[len(chunk):]
		if v == "" {
			return out
		}
	}
}
