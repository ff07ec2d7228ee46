package sessions_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// BenchmarkRedisMemoryPerSession measures what one active broker session
// costs in Redis, on a redis-server of its own: the session hash (with a
// broker-sized claims blob and one application), its three index-set
// entries, one refresh family (broker-sized grant) and the spent-code
// marker of its login; then what a day of refreshes every ten minutes adds
// (it should be nothing: families hold their current generation only).
// It reports bytes/session and bytes/rotation.
func BenchmarkRedisMemoryPerSession(b *testing.B) {
	srv := sessionstest.StartServer(b)
	opts, _ := redis.ParseURL(srv.URL())
	c := redis.NewClient(opts)
	defer c.Close()
	r := sessions.NewRedis(c, sessions.RedisOptions{})
	ctx := context.Background()
	used := func() int64 {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		b.Fatal("no used_memory")
		return 0
	}
	const n = 5000
	claims := `{"email":"alice.example@acme-corporation.example","email_verified":true,"name":"Alice Example",` +
		`"given_name":"Alice","family_name":"Example","groups":["Engineering","Everyone"],"connection_type":"saml",` +
		`"idp_subject":"00u1abcd2EFGH3ijkl4"}`
	grant := []byte(`{"client_id":"app_01M94Y92N2S269ZB2HXSKM022R","scopes":["openid","email","profile","offline_access"],` +
		`"sid":"ses_01M94Y92N2S269ZB2HXSKM0000","tenant_id":"tnt_01M94Y91FEJZ0B6AX8XBXDNYXD","sub":"usr_01M94Y92W7RT9GZPEA42DX5139",` +
		`"family":"Xq3kP0aZ8rT2mN5vB7cD9eFgH1jK4lM6","expires":1799999999,"iat":1765000000}`)
	for b.Loop() {
		if err := c.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		before := used()
		exp := time.Now().Add(30 * 24 * time.Hour)
		for i := range n {
			id := fmt.Sprintf("ses_01M94Y92N2S269ZB2HX%07d", i)
			s := sessions.Session{ID: id, TenantID: "tnt_01M94Y91FEJZ0B6AX8XBXDNYXD", UserID: fmt.Sprintf("usr_01M94Y92W7RT9GZPEA4%07d", i),
				ConnectionID: "conn_01M94Y91XXNXF4M1PM3EDPGP24", AuthTime: time.Now(), ExpiresAt: exp,
				Extra: map[string]string{"claims": claims, "sso": strings.Repeat("ab", 32)}}
			if err := r.Create(ctx, s); err != nil {
				b.Fatal(err)
			}
			if err := r.AddApp(ctx, id, "app_01M94Y92N2S269ZB2HXSKM022R"); err != nil {
				b.Fatal(err)
			}
			if err := r.StartFamily(ctx, sessions.Family{ID: fmt.Sprintf("fam%029d", i), SessionID: id, Hash: strings.Repeat("cd", 32),
				Grant: grant, ExpiresAt: exp}); err != nil {
				b.Fatal(err)
			}
			if err := r.Put(ctx, "broker:usedcode:"+strings.Repeat("ef", 32)+strconv.Itoa(i), grant, 30*24*time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		perSession := float64(used()-before) / n
		// A day of refreshes every ten minutes, for the first 100 families.
		before = used()
		const families, rotations = 100, 144
		for i := range families {
			for g := range uint64(rotations) {
				next := sessions.Family{Hash: fmt.Sprintf("%064d", g+1), Grant: grant, ExpiresAt: exp}
				prev := strings.Repeat("cd", 32)
				if g > 0 {
					prev = fmt.Sprintf("%064d", g)
				}
				if res, _, err := r.Rotate(ctx, fmt.Sprintf("fam%029d", i), g, prev, next); err != nil || res != sessions.Rotated {
					b.Fatalf("rotate: %v %v", res, err)
				}
			}
		}
		perRotation := float64(used()-before) / (families * rotations)
		b.ReportMetric(perSession, "bytes/session")
		b.ReportMetric(perRotation, "bytes/rotation")
	}
}
