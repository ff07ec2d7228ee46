// Package dnstest runs a tiny DNS server on loopback for tests: it answers
// TXT questions from a table the test controls (records of one or more
// character-strings, a CNAME to another name of the table, or an error
// code such as SERVFAIL) and NXDOMAIN for every other name, over UDP,
// which is all a domain-verification lookup needs. Point a resolver at
// Server.Addr (IDBROKER_DNS_RESOLVER).
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

	conn    net.PacketConn
	mu      sync.Mutex
	entries map[string]entry
	done    chan struct{}
}

// entry is what one name answers: TXT records (each its character-strings),
// a CNAME, or an error code.
type entry struct {
	txt   [][]string
	cname string
	rcode int
}

// Response codes SetRcode may give a name.
const (
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeRefused  = 5
)

// Start starts a server that stops when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: listen: %v", err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), conn: pc, entries: map[string]entry{}, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		pc.Close()
		<-s.done
	})
	return s
}

// SetTXT makes name (without trailing dot, any case) answer values, one
// TXT record each (split into 255-byte character-strings as DNS must); no
// values removes it.
func (s *Server) SetTXT(name string, values ...string) {
	var records [][]string
	for _, v := range values {
		records = append(records, chunks(v))
	}
	s.SetTXTStrings(name, records...)
}

// SetTXTStrings makes name answer TXT records given as their
// character-strings (each at most 255 bytes), as a zone file writes them
// ("part one" "part two"); none removes it.
func (s *Server) SetTXTStrings(name string, records ...[]string) {
	if len(records) == 0 {
		s.set(name, nil)
		return
	}
	s.set(name, &entry{txt: records})
}

// SetCNAME makes name an alias of target, another name of the table: the
// answer carries the CNAME and target's TXT records, as a recursive
// resolver's does.
func (s *Server) SetCNAME(name, target string) {
	s.set(name, &entry{cname: key(target)})
}

// SetRcode makes name answer with the error code rcode (RcodeServFail…).
func (s *Server) SetRcode(name string, rcode int) {
	s.set(name, &entry{rcode: rcode})
}

func (s *Server) set(name string, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e == nil {
		delete(s.entries, key(name))
		return
	}
	s.entries[key(name)] = *e
}

func key(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

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
	typeTXT   = 16
	typeCNAME = 5
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
	e, ok := s.entries[name]
	var alias entry // what the CNAME's target answers
	if ok && e.cname != "" {
		alias = s.entries[e.cname]
	}
	s.mu.Unlock()

	resp := make([]byte, 12, 512)
	copy(resp, q[:2])               // id
	flags := uint16(0x8400)         // response, authoritative
	flags |= uint16(q[2]&0x01) << 8 // recursion desired, echoed
	flags |= 0x0080                 // recursion available
	type rr struct {
		typ   uint16
		owner []byte // a compression pointer, or a name
		data  []byte
	}
	var answers []rr
	ptr := []byte{0xC0, 12} // the question's name
	switch {
	case !ok:
		flags |= RcodeNXDomain
	case e.rcode != 0:
		flags |= uint16(e.rcode)
	case e.cname != "":
		answers = append(answers, rr{typeCNAME, ptr, encodeName(e.cname)})
		if qtype == typeTXT {
			for _, r := range alias.txt {
				answers = append(answers, rr{typeTXT, encodeName(e.cname), txtRData(r)})
			}
		}
	case qtype == typeTXT:
		for _, r := range e.txt {
			answers = append(answers, rr{typeTXT, ptr, txtRData(r)})
		}
	}
	binary.BigEndian.PutUint16(resp[2:4], flags)
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, a.owner...)
		resp = binary.BigEndian.AppendUint16(resp, a.typ)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 60)
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(a.data)))
		resp = append(resp, a.data...)
	}
	return resp, nil
}

// chunks is v as the 255-byte character-strings of one TXT record.
func chunks(v string) []string {
	var out []string
	for {
		chunk := v
		if len(chunk) > 255 {
			chunk = chunk[:255]
		}
		out = append(out, chunk)
		v = v[len(chunk):]
		if v == "" {
			return out
		}
	}
}

// txtRData is a TXT record's RDATA: each character-string after its
// length byte.
func txtRData(strs []string) []byte {
	var out []byte
	for _, c := range strs {
		out = append(out, byte(len(c)))
		out = append(out, c...)
	}
	return out
}

// encodeName is name in DNS wire form, uncompressed.
func encodeName(name string) []byte {
	var out []byte
	for _, l := range strings.Split(name, ".") {
		out = append(out, byte(len(l)))
		out = append(out, l...)
	}
	return append(out, 0)
}
