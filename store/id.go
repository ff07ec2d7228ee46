package store

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// ID prefixes of the contract.
const (
	PrefixTenant      = "tnt"
	PrefixDomain      = "dom"
	PrefixConnection  = "conn"
	PrefixApplication = "app"
	PrefixDirectory   = "dir"
	PrefixUser        = "usr"
	PrefixGroup       = "grp"
	PrefixSession     = "ses"
	PrefixEvent       = "evt"
	PrefixAudit       = "aud"
	PrefixSigningKey  = "key"
	PrefixAPIKey      = "ak"
	PrefixPortalLink  = "pl"
	PrefixWebhook     = "wh"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// monotonic makes ids minted in the same millisecond by this process sort
// in the order they were minted (the ULID monotonic rule): the random part
// of the previous id plus one. It is the package's one piece of shared
// state, like a random source.
var monotonic struct {
	sync.Mutex
	ms   uint64
	last [10]byte
}

// NewID returns prefix + "_" + a 26-character ULID: 48 bits of milliseconds
// then 80 random bits, Crockford base32. IDs sort by creation time (within
// a process, strictly), which cursor pagination relies on, and cannot be
// guessed.
func NewID(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	monotonic.Lock()
	if ms == monotonic.ms {
		for i := 9; i >= 0; i-- { // increment, carrying
			monotonic.last[i]++
			if monotonic.last[i] != 0 {
				break
			}
		}
	} else {
		if _, err := rand.Read(monotonic.last[:]); err != nil {
			monotonic.Unlock()
			panic("store: crypto/rand failed: " + err.Error())
		}
		monotonic.ms = ms
	}
	copy(b[6:], monotonic.last[:])
	monotonic.Unlock()
	return encodeID(prefix, b)
}

// idAt returns the smallest id with prefix minted at t: every id minted
// before t sorts below it, so "id < idAt(t)" is a range on an id index.
func idAt(prefix string, t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	return encodeID(prefix, b)
}

// encodeID writes prefix + "_" + b as 26 Crockford base32 digits.
func encodeID(prefix string, b [16]byte) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + 27)
	sb.WriteString(prefix)
	sb.WriteByte('_')
	// 128 bits as 26 base32 digits, most significant first (the first digit
	// carries only 3 bits).
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	sb.Write(out[:])
	return sb.String()
}

// HasPrefix reports whether id looks like one of ours with the given prefix;
// handlers use it to answer 404 early for garbage ids.
func HasPrefix(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(crockford, rest[i]) < 0 {
			return false
		}
	}
	return true
}
