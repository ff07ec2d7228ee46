package broker_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// racingSessions ends a session between two reads of it: once armed,
// the first Get of the armed session answers, every later one fails with
// err. That is a logout (or a Redis outage) landing between the checks
// of one UserInfo request.
type racingSessions struct {
	sessions.Store
	mu    sync.Mutex
	sid   string
	seen  int
	err   error
	armed bool
}

func (r *racingSessions) arm(sid string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sid, r.err, r.seen, r.armed = sid, err, 0, true
}

func (r *racingSessions) Get(ctx context.Context, id string) (sessions.Session, error) {
	r.mu.Lock()
	fail := r.armed && id == r.sid && r.seen > 0
	if r.armed && id == r.sid {
		r.seen++
	}
	err := r.err
	r.mu.Unlock()
	if fail {
		return sessions.Session{}, err
	}
	return r.Store.Get(ctx, id)
}

// TestUserinfoRace ends the session between the broker's check of the
// access token and the answer: a 401 still carries the Bearer challenge
// (RFC 6750 §3 asks it of every 401) with error invalid_token, and a
// session store that stops answering is 503 with Retry-After, not a 401
// that would make the app sign the user out.
func TestUserinfoRace(t *testing.T) {
	var race *racingSessions
	mem := sessions.NewMemory()
	n := newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{}, func(c *broker.Config) {
		race = &racingSessions{Store: c.Sessions}
		c.Sessions = race
	})
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})

	for _, tc := range []struct {
		name      string
		method    string
		err       error
		status    int
		challenge string // prefix of WWW-Authenticate
		code      string
	}{
		{"ended, GET", http.MethodGet, sessions.ErrNotFound, 401, `Bearer realm="idbroker", error="invalid_token"`, "invalid_token"},
		{"ended, POST", http.MethodPost, sessions.ErrNotFound, 401, `Bearer realm="idbroker", error="invalid_token"`, "invalid_token"},
		{"ended, HEAD", http.MethodHead, sessions.ErrNotFound, 401, `Bearer realm="idbroker", error="invalid_token"`, ""},
		{"store down, GET", http.MethodGet, errors.New("redis: connection refused"), 503, "", "temporarily_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := a.login(t)
			race.arm(tok.SID, tc.err)
			t.Cleanup(func() { race.arm("", nil) })
			req, _ := http.NewRequest(tc.method, n.URL+broker.PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.challenge) || (tc.challenge == "" && got != "") {
				t.Errorf("WWW-Authenticate = %q, want %q…", got, tc.challenge)
			}
			if tc.status == 503 && res.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tc.code != "" && !strings.Contains(string(body), `"error":"`+tc.code+`"`) {
				t.Errorf("body %s, want error %s", body, tc.code)
			}
		})
	}
}

// TestUserinfoHead: HEAD answers as GET does, without the body (RFC 9110
// §9.3.2), so that a client or monitor checking a token gets the status
// and the challenge, not 405.
func TestUserinfoHead(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	tok := a.login(t)
	ended := a.login(t)
	if err := n.Sess.Revoke(context.Background(), ended.SID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, auth string
		status     int
		challenge  string
	}{
		{"live token", "Bearer " + tok.AccessToken, 200, ""},
		{"no token", "", 401, `Bearer realm="idbroker"`},
		{"garbage", "Bearer garbage", 401, `Bearer realm="idbroker", error="invalid_token"`},
		{"ended session", "Bearer " + ended.AccessToken, 401, `Bearer realm="idbroker", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get := userinfoCall(t, n, http.MethodGet, tc.auth)
			head := userinfoCall(t, n, http.MethodHead, tc.auth)
			if head.StatusCode != tc.status || get.StatusCode != tc.status {
				t.Fatalf("HEAD %d, GET %d, want %d", head.StatusCode, get.StatusCode, tc.status)
			}
			for _, h := range []string{"WWW-Authenticate", "Cache-Control", "Content-Type", "Access-Control-Allow-Origin"} {
				if head.Header.Get(h) != get.Header.Get(h) {
					t.Errorf("%s: HEAD %q, GET %q", h, head.Header.Get(h), get.Header.Get(h))
				}
			}
			if !strings.HasPrefix(head.Header.Get("WWW-Authenticate"), tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q…", head.Header.Get("WWW-Authenticate"), tc.challenge)
			}
		})
	}
	// The Allow of a refused method names HEAD.
	put := userinfoCall(t, n, http.MethodPut, "Bearer "+tok.AccessToken)
	if put.StatusCode != 405 || !strings.Contains(put.Header.Get("Allow"), "HEAD") {
		t.Fatalf("PUT: %d, Allow %q", put.StatusCode, put.Header.Get("Allow"))
	}
}

func userinfoCall(t *testing.T, n *node, method, auth string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, n.URL+broker.PathUserinfo, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}
