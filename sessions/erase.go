package sessions

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// TenantEraser is a store that can forget a tenant entirely: the last step
// of a tenant's erasure, after its restore window. Memory and Redis are
// both, so the embedded deployment erases as much as the scaled-out one.
type TenantEraser interface {
	// EraseTenant deletes everything that names tenantID and says how many
	// entries went.
	EraseTenant(ctx context.Context, tenantID string) (int, error)
}

var (
	_ TenantEraser = (*Memory)(nil)
	_ TenantEraser = (*Redis)(nil)
	_ TenantEraser = (*Cached)(nil)
)

// EraseTenant deletes the tenant's sessions, its refresh families, and
// every one-time entry and rate-limit bucket whose key or value names
// tenantID — the same rule as Redis's. Revocation already ended the
// sessions when the tenant was deleted; this removes what remains of it
// in memory.
func (m *Memory) EraseTenant(ctx context.Context, tenantID string) (int, error) {
	if tenantID == "" {
		return 0, fmt.Errorf("sessions: erase: no tenant")
	}
	n := 0
	gone := map[string]bool{}
	m.mu.Lock()
	for id := range m.byTenant[tenantID] {
		m.removeLocked(m.sessions[id])
		gone[id] = true
		n++
	}
	m.mu.Unlock()

	m.famMu.Lock()
	for id, f := range m.families {
		if gone[f.SessionID] || strings.Contains(id, tenantID) || bytes.Contains(f.Grant, []byte(tenantID)) {
			delete(m.families, id)
			n++
		}
	}
	m.famMu.Unlock()

	m.onceMu.Lock()
	for k := range m.seen {
		if strings.Contains(k, tenantID) {
			delete(m.seen, k)
			n++
		}
	}
	for k, v := range m.values {
		if strings.Contains(k, tenantID) || bytes.Contains(v.value, []byte(tenantID)) {
			delete(m.values, k)
			n++
		}
	}
	for k := range m.buckets {
		if strings.Contains(k, tenantID) {
			delete(m.buckets, k)
			n++
		}
	}
	m.onceMu.Unlock()
	return n, nil
}

// EraseTenant deletes every key under this store's prefix that names
// tenantID or holds it in its value: sessions and their indexes, pending
// sign-ins, one-time entries, rate-limit buckets. It reads every key, so it
// is for the rare erasure of a tenant, never a request path; revocation
// (RevokeTenant) is what ends a tenant's sessions at once.
//
// The tombstone ledger's keys (RedisLedger, under the same prefix) are
// left alone: they hold every tenant's tombstones, and the erased tenant's
// own must outlive it. The store removes the erased tenant's other
// tombstones one by one (store.DB.EraseTenant).
func (r *Redis) EraseTenant(ctx context.Context, tenantID string) (int, error) {
	if tenantID == "" {
		return 0, fmt.Errorf("sessions: erase: no tenant")
	}
	shared := map[string]bool{r.prefix + ledgerKey: true, r.prefix + ledgerSeqKey: true, r.prefix + ledgerNumKey: true, r.prefix + ledgerGoneKey: true}
	n := 0
	iter := r.c.Scan(ctx, 0, r.prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if shared[key] {
			continue
		}
		hit := strings.Contains(key, tenantID)
		if !hit {
			var err error
			if hit, err = r.mentions(ctx, key, tenantID); err != nil {
				return n, fmt.Errorf("sessions: erase %s: %w", tenantID, err)
			}
		}
		if !hit {
			continue
		}
		if err := r.c.Del(ctx, key).Err(); err != nil {
			return n, fmt.Errorf("sessions: erase %s: %w", tenantID, err)
		}
		n++
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("sessions: erase %s: %w", tenantID, err)
	}
	return n, nil
}

// mentions reports whether the value of key contains s.
func (r *Redis) mentions(ctx context.Context, key, s string) (bool, error) {
	typ, err := r.c.Type(ctx, key).Result()
	if err != nil {
		return false, err
	}
	var vals []string
	switch typ {
	case "string":
		v, err := r.c.Get(ctx, key).Result()
		if err == redis.Nil {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		vals = []string{v}
	case "hash":
		m, err := r.c.HGetAll(ctx, key).Result()
		if err != nil {
			return false, err
		}
		for k, v := range m {
			vals = append(vals, k, v)
		}
	case "set":
		vals, err = r.c.SMembers(ctx, key).Result()
	case "zset":
		vals, err = r.c.ZRange(ctx, key, 0, -1).Result()
	case "list":
		vals, err = r.c.LRange(ctx, key, 0, -1).Result()
	}
	if err != nil {
		return false, err
	}
	for _, v := range vals {
		if strings.Contains(v, s) {
			return true, nil
		}
	}
	return false, nil
}
