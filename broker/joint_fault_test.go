package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// killBefore is a go-redis hook that kills the test's redis-server just
// before the first command naming a key that contains match is sent: Redis
// dying in the middle of a step of the sign-in, after whatever the step
// sent before that command.
type killBefore struct {
	srv   *sessionstest.Server
	match atomic.Pointer[string]
}

func (k *killBefore) arm(match string) { k.match.Store(&match) }

func (k *killBefore) check(cmd redis.Cmder) {
	m := k.match.Load()
	if m == nil {
		return
	}
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.Contains(s, *m) {
			if k.match.CompareAndSwap(m, nil) {
				k.srv.Kill()
			}
			return
		}
	}
}

func (k *killBefore) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k *killBefore) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		k.check(cmd)
		return next(ctx, cmd)
	}
}

func (k *killBefore) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			k.check(c)
		}
		return next(ctx, cmds)
	}
}

// keys lists the keys of the test's Redis that match pattern.
func keys(t *testing.T, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	out, err := c.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSignInStepsAllOrNothingWhenRedisDies: Redis dies in the middle of a
// step that writes two records — the session and its code at the end of
// the upstream login, the application and its refresh family at the code
// exchange — and comes back from its append-only file. Neither half may
// be left without the other: no session without the code that was to
// hand it over (a session the user never got, listed and revoked with
// theirs), no application recorded in a session without the tokens it
// was to get (a back-channel logout to an application that never signed
// in). The sign-in fails and can be started again.
func TestSignInStepsAllOrNothingWhenRedisDies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match string // the key whose write Redis dies before
		// during the code exchange rather than the upstream login
		atExchange bool
	}{
		{"session and code", "take:broker:code:", false},
		{"application and refresh family", "fam:", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := sessionstest.StartServer(t)
			c := srv.Client(t) // the first failure is the answer
			kill := &killBefore{srv: srv}
			c.AddHook(kill)
			r := sessions.NewRedis(c, sessions.RedisOptions{})
			n := newNodeServer(t, storetest.Postgres(t), r, r, "", httpserver.Config{})
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			hint := url.Values{"login_hint": {"alice@acme.test"}}

			if !tc.atExchange {
				kill.arm(tc.match)
				resp := a.authorize(t, browser(t), hint)
				if loc, _ := resp.Location(); loc != nil && loc.Query().Get("code") != "" {
					t.Fatal("the sign-in handed over a code while Redis was down")
				}
			} else {
				cd := code(t, a.authorize(t, browser(t), hint))
				kill.arm(tc.match)
				_, err := a.Conf.Exchange(ctx, cd)
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("exchange while Redis died: %v, want 503", err)
				}
			}
			if kill.match.Load() != nil {
				t.Fatalf("no command wrote a %q key", tc.match)
			}
			srv.Start()

			ses := keys(t, c, "idb:ses:*")
			codes := keys(t, c, "idb:take:broker:code:*")
			fams := keys(t, c, "idb:fam:*")
			if !tc.atExchange {
				if len(ses) != 0 || len(codes) != 0 {
					t.Errorf("after Redis died between the session and its code: sessions %v, codes %v; want neither", ses, codes)
				}
			} else {
				if len(ses) != 1 {
					t.Fatalf("sessions %v, want the one signed in", ses)
				}
				got, err := r.Get(ctx, strings.TrimPrefix(ses[0], "idb:ses:"))
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Apps) != 0 || len(fams) != 0 {
					t.Errorf("after Redis died between the application and its family: apps %v, families %v; want neither", got.Apps, fams)
				}
			}

			// Nothing is stuck: the next sign-in goes through.
			tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), hint)))
			if tok.RefreshToken == "" {
				t.Error("no refresh token after Redis came back")
			}
		})
	}
}
