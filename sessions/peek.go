package sessions

import (
	"context"
	"time"
)

// Peek implements OnceCache.
func (m *Memory) Peek(ctx context.Context, key string) ([]byte, error) {
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	v, ok := m.values[key]
	if !ok || !time.Now().Before(v.expires) {
		return nil, ErrNotFound
	}
	// A copy: the value stays for its Take, which must see it unchanged.
	return append([]byte(nil), v.value...), nil
}

// Peek implements OnceCache with GET on the key Put wrote.
func (r *Redis) Peek(ctx context.Context, key string) ([]byte, error) {
	return onceRead("peek", r.c.Get(ctx, r.onceKey(key)))
}
