package sessions

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// EraseTenant deletes every key under this store's prefix that names
// tenantID or holds it in its value: sessions and their indexes, pending
// sign-ins, one-time entries, rate-limit buckets. It reads every key, so it
// is for the rare erasure of a tenant, never a request path; revocation
// (RevokeTenant) is what ends a tenant's sessions at once.
func (r *Redis) EraseTenant(ctx context.Context, tenantID string) (int, error) {
	if tenantID == "" {
		return 0, fmt.Errorf("sessions: erase: no tenant")
	}
	n := 0
	iter := r.c.Scan(ctx, 0, r.prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
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
