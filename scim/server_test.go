package scim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
)

func eventTypes(t testing.TB, st *store.DB) []string {
	t.Helper()
	var out []string
	p := store.Page{Limit: 100}
	for {
		evs, next, err := st.ListEvents(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			out = append(out, e.Type)
		}
		if next == "" {
			return out
		}
		p.After = next
	}
}

func TestUserLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		r := e.do("POST", "/Users", userBody("alice@acme.com", map[string]any{
			"externalId": "00u1",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Eng", "manager": map[string]any{"value": "boss"}},
			"password": "hunter2",
		})).want(t, http.StatusCreated)
		id := r.str("id")
		if !store.HasPrefix(id, store.PrefixUser) || r.header.Get("ETag") != `W/"1"` || !strings.HasSuffix(r.header.Get("Location"), "/Users/"+id) {
			t.Fatalf("create: %v %s", r.header, r.raw)
		}
		if r.str("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department") != "" || lookup(r.body, "password") != nil {
			// lookup splits on dots; the URN key is checked below instead.
		}
		ext, _ := r.body[scim.SchemaEnterpriseUser].(map[string]any)
		if ext["department"] != "Eng" || r.body["password"] != nil || r.str("meta.version") != `W/"1"` {
			t.Fatalf("created resource: %s", r.raw)
		}
		e.do("POST", "/Users", userBody("ALICE@acme.com", nil)).want(t, http.StatusConflict)

		got := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
		if got.str("name.givenName") != "Given" || got.str("externalId") != "00u1" {
			t.Fatalf("get: %s", got.raw)
		}
		l := e.do("GET", `/Users?filter=userName+eq+%22Alice%40ACME.com%22`, nil).want(t, http.StatusOK)
		if lookup(l.body, "totalResults") != float64(1) || l.str("Resources.0.id") != id {
			t.Fatalf("filter: %s", l.raw)
		}
		none := e.do("GET", `/Users?filter=userName+eq+%22nobody%40acme.com%22`, nil).want(t, http.StatusOK)
		if lookup(none.body, "totalResults") != float64(0) || len(none.body["Resources"].([]any)) != 0 {
			t.Fatalf("no match: %s", none.raw)
		}
		e.do("GET", `/Users?filter=title+eq+%22x%22`, nil).want(t, http.StatusBadRequest)
		if r := e.do("GET", `/Users?filter=userName+eq`, nil).want(t, http.StatusBadRequest); r.str("scimType") != "invalidFilter" {
			t.Fatalf("bad filter: %s", r.raw)
		}

		// PUT with a stale ETag loses; with the current one wins.
		put := userBody("alice@acme.com", map[string]any{"displayName": "Alice A"})
		e.do("PUT", "/Users/"+id, put, "If-Match", `W/"7"`).want(t, http.StatusPreconditionFailed)
		pr := e.do("PUT", "/Users/"+id, put, "If-Match", `W/"1"`).want(t, http.StatusOK)
		if pr.str("displayName") != "Alice A" || pr.header.Get("ETag") != `W/"2"` {
			t.Fatalf("put: %s", pr.raw)
		}
		patch := map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{
			map[string]any{"op": "Replace", "path": "name.familyName", "value": "Smith"}}}
		if p := e.do("PATCH", "/Users/"+id, patch).want(t, http.StatusOK); p.str("name.familyName") != "Smith" {
			t.Fatalf("patch: %s", p.raw)
		}
		u, err := st.User(e.ctx(), id)
		if err != nil || u.FamilyName != "Smith" || u.Email != "alice@acme.com" || !u.Active {
			t.Fatalf("stored %+v %v", u, err)
		}
		e.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)
		e.do("GET", "/Users/"+id, nil).want(t, http.StatusNotFound)
		e.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNotFound)

		want := []string{"dsync.user.created", "dsync.user.updated", "dsync.user.updated", "dsync.user.deleted"}
		if got := eventTypes(t, st); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("events %v, want %v", got, want)
		}
		evs, _, _ := st.ListEvents(context.Background(), store.Page{})
		for _, ev := range evs {
			if strings.Contains(string(ev.Data), "hunter2") || strings.Contains(string(ev.Data), e.token) {
				t.Fatalf("secret in event %s", ev.Data)
			}
			// groups is there, an array even when empty, for a consumer
			// to read.
			var data map[string]json.RawMessage
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			if g, ok := data["groups"]; !ok || g[0] != '[' {
				t.Errorf("%s: groups %s, want an array: %s", ev.Type, g, ev.Data)
			}
		}
	})
}

func TestAuthAndTenantIsolation(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		a := newEnv(t, st, nil)
		tenantB, dirB, tokenB := a.newDirectory("Other")
		b := &env{t: t, st: st, srv: a.srv, http: a.http, tenant: tenantB, dir: dirB, token: tokenB}
		ub := b.do("POST", "/Users", userBody("bob@other.com", nil)).want(t, http.StatusCreated).str("id")

		for name, r := range map[string]resp{
			"B's token on A's URL": a.doAs(a.dir, tokenB, "GET", "/Users", nil),
			"no token":             a.doAs(a.dir, "", "GET", "/Users", nil),
			"garbage token":        a.doAs(a.dir, "scim_nope", "GET", "/Users", nil),
			"bad directory id":     a.doAs("dir_x", a.token, "GET", "/Users", nil),
		} {
			r.want(t, http.StatusUnauthorized)
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: no WWW-Authenticate", name)
			}
		}
		// B's user through A's directory does not exist.
		a.do("GET", "/Users/"+ub, nil).want(t, http.StatusNotFound)
		a.do("PATCH", "/Users/"+ub, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}).want(t, http.StatusNotFound)
		a.do("DELETE", "/Users/"+ub, nil).want(t, http.StatusNotFound)
		if l := a.do("GET", "/Users", nil).want(t, http.StatusOK); lookup(l.body, "totalResults") != float64(0) {
			t.Fatalf("A lists B's users: %s", l.raw)
		}
		// Nor do B's groups, whatever the method.
		gb := b.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "B team", "members": []any{map[string]any{"value": ub}}}).want(t, http.StatusCreated).str("id")
		a.do("GET", "/Groups/"+gb, nil).want(t, http.StatusNotFound)
		a.do("PUT", "/Groups/"+gb, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "taken"}).want(t, http.StatusNotFound)
		a.do("PATCH", "/Groups/"+gb, map[string]any{"Operations": []any{map[string]any{"op": "remove", "path": "members"}}}).want(t, http.StatusNotFound)
		a.do("DELETE", "/Groups/"+gb, nil).want(t, http.StatusNotFound)
		if g := b.do("GET", "/Groups/"+gb, nil).want(t, http.StatusOK); g.str("displayName") != "B team" || lookup(g.body, "members.0.value") != ub {
			t.Fatalf("A's requests changed B's group: %s", g.raw)
		}
		// A group of A cannot take B's user as a member.
		g := map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng", "members": []any{map[string]any{"value": ub}}}
		a.do("POST", "/Groups", g).want(t, http.StatusBadRequest)
		// Rotating the token stops the old one at once.
		if err := st.SetDirectoryToken(store.WithTenant(context.Background(), tenantB), dirB, []byte("new hash")); err != nil {
			t.Fatal(err)
		}
		b.do("GET", "/Users", nil).want(t, http.StatusUnauthorized)
	})
}

func TestBadInputIsA4xx(t *testing.T) {
	st := backends[0].open(t)
	e := newEnv(t, st, nil)
	for name, tc := range map[string]struct {
		method, path, body, ctype string
		status                    int
	}{
		"malformed JSON":   {"POST", "/Users", `{"userName":`, scim.MediaType, 400},
		"not an object":    {"POST", "/Users", `[1,2]`, scim.MediaType, 400},
		"no userName":      {"POST", "/Users", `{"name":{"givenName":"x"}}`, scim.MediaType, 400},
		"userName number":  {"POST", "/Users", `{"userName":{"a":1}}`, scim.MediaType, 400},
		"emails object":    {"POST", "/Users", `{"userName":"a","emails":{"value":"x"}}`, scim.MediaType, 400},
		"active maybe":     {"POST", "/Users", `{"userName":"a","active":"maybe"}`, scim.MediaType, 400},
		"duplicate attr":   {"POST", "/Users", `{"userName":"a","USERNAME":"b"}`, scim.MediaType, 400},
		"wrong media type": {"POST", "/Users", `userName=a`, "application/x-www-form-urlencoded", 415},
		"compressed":       {"POST", "/Users", `{"userName":"gz"}`, scim.MediaType, 415},
		"too large":        {"POST", "/Users", `{"userName":"` + strings.Repeat("a", 2<<20) + `"}`, scim.MediaType, 413},
		"unknown endpoint": {"GET", "/Bulks", ``, "", 404},
		"garbage user id":  {"GET", "/Users/'%20OR%201=1", ``, "", 404},
		"bad startIndex":   {"GET", "/Users?startIndex=x", ``, "", 400},
		"no Operations":    {"PATCH", "/Users/usr_01ARZ3NDEKTSV4RRFFQ69G5FAV", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, scim.MediaType, 400},
		"null Operations":  {"PATCH", "/Users/usr_01ARZ3NDEKTSV4RRFFQ69G5FAV", `{"Operations":null}`, scim.MediaType, 400},
		"bad If-Match":     {"PUT", "/Users/usr_01ARZ3NDEKTSV4RRFFQ69G5FAV", `{"userName":"a"}`, scim.MediaType, 412},
	} {
		var r resp
		if tc.ctype == "" {
			r = e.do(tc.method, tc.path, nil)
		} else {
			hdr := []string{"Content-Type", tc.ctype}
			switch name {
			case "bad If-Match":
				hdr = append(hdr, "If-Match", "nonsense")
			case "compressed":
				// Labelled gzip, whatever it holds: the server decompresses
				// nothing, and must not take the bytes as they are either.
				hdr = append(hdr, "Content-Encoding", "gzip")
			}
			r = e.do(tc.method, tc.path, tc.body, hdr...)
		}
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %.200s", name, r.status, tc.status, r.raw)
			continue
		}
		r.want(t, tc.status)
	}
	// A body our own decoding refuses is answered with its own detail,
	// not wrapped in a second error's words.
	for _, body := range []string{`{"Operations":{}}`, `{"schemas":"x","Operations":[]}`, `{"Operations":[{"op":1}]}`} {
		r := e.do("PATCH", "/Users/usr_01ARZ3NDEKTSV4RRFFQ69G5FAV", body).want(t, http.StatusBadRequest)
		if d := r.str("detail"); r.str("scimType") != "invalidSyntax" || strings.Contains(d, "scim 400") || strings.Contains(d, "malformed JSON") {
			t.Errorf("PATCH %s: %s, want invalidSyntax saying what is wrong", body, r.raw)
		}
	}
	if n := len(eventTypes(t, st)); n != 0 {
		t.Fatalf("bad input wrote %d events", n)
	}
}

// TestUnsupportedFeaturesAre501: /Me (RFC 7644 §3.11 says so), /Bulk,
// which the ServiceProviderConfig says is not supported, and searches by
// POST to .search (§3.4.3, which it cannot advertise) answer 501 in the
// error schema, whatever the method, rather than a 404 that reads as a
// wrong base URL; without the directory's token they are still 401.
func TestUnsupportedFeaturesAre501(t *testing.T) {
	e := newEnv(t, backends[0].open(t), nil)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/Me"}, {"PATCH", "/Me"}, {"GET", "/Me/whatever"}, {"POST", "/Bulk"}, {"GET", "/Bulk"},
		{"POST", "/.search"}, {"POST", "/Users/.search"}, {"POST", "/Groups/.search"},
	} {
		var body any
		if tc.method != "GET" {
			body = map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": []any{}}
		}
		r := e.do(tc.method, tc.path, body).want(t, http.StatusNotImplemented)
		if d, _ := r.body["detail"].(string); !strings.Contains(d, "not supported") {
			t.Errorf("%s %s: %s, want a detail saying it is not supported", tc.method, tc.path, r.raw)
		}
		e.doAs(e.dir, "not the token", tc.method, tc.path, body).want(t, http.StatusUnauthorized)
	}
	if got := e.do("GET", "/ServiceProviderConfig", nil).want(t, http.StatusOK); lookup(got.body, "bulk.supported") != false {
		t.Errorf("ServiceProviderConfig advertises bulk: %s", got.raw)
	}
}

// TestDeprovisionRevokesSessionsEverywhere: two broker nodes share Redis;
// a SCIM deactivation on node 1 ends the user's sessions, and node 2 — even
// through its local cache — sees that by message, before its cache entry could expire.
func TestDeprovisionRevokesSessionsEverywhere(t *testing.T) {
	for _, how := range []string{"patch", "put", "delete"} {
		t.Run(how, func(t *testing.T) {
			st := backends[0].open(t)
			rc := sessionstest.Redis(t)
			prefix := sessionstest.Prefix(t, rc)
			node1 := sessions.NewRedis(rc, sessions.RedisOptions{Prefix: prefix})
			node2 := sessions.NewRedis(rc, sessions.RedisOptions{Prefix: prefix})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cached, err := sessions.NewCached(ctx, node2, time.Minute, 100)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, st, node1)
			id := e.do("POST", "/Users", userBody("carol@acme.com", nil)).want(t, http.StatusCreated).str("id")
			other := e.do("POST", "/Users", userBody("dave@acme.com", nil)).want(t, http.StatusCreated).str("id")
			sess := sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: e.tenant, UserID: id, ExpiresAt: time.Now().Add(time.Hour)}
			keep := sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: e.tenant, UserID: other, ExpiresAt: time.Now().Add(time.Hour)}
			for _, s := range []sessions.Session{sess, keep} {
				if err := node2.Create(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cached.Get(ctx, sess.ID); err != nil { // now in node 2's cache
				t.Fatal(err)
			}
			switch how {
			case "patch":
				e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp},
					"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}}}).want(t, http.StatusOK)
			case "put":
				e.do("PUT", "/Users/"+id, userBody("carol@acme.com", map[string]any{"active": false})).want(t, http.StatusOK)
			case "delete":
				e.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)
			}
			if _, err := node2.Get(ctx, sess.ID); !errors.Is(err, sessions.ErrNotFound) {
				t.Fatalf("node 2 still has the session: %v", err)
			}
			// Generous, and well under the cache's one-minute TTL: only
			// the revocation message can end the wait in time.
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := cached.Get(ctx, sess.ID); errors.Is(err, sessions.ErrNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("node 2's cache still answers the session 20 s after deprovisioning")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := node2.Get(ctx, keep.ID); err != nil {
				t.Fatalf("another user's session was revoked: %v", err)
			}
			want := "dsync.user.deleted"
			if how != "delete" {
				u, err := st.User(e.ctx(), id)
				if err != nil || u.Active {
					t.Fatalf("user %+v %v, want inactive", u, err)
				}
				want = "dsync.user.deactivated"
			}
			// The change, then the session it ended (its own event, as
			// for every cause of a revocation).
			if types := eventTypes(t, st); len(types) < 2 || types[len(types)-2] != want || types[len(types)-1] != "session.revoked" {
				t.Fatalf("events %v, want last %s then session.revoked", types, want)
			}
		})
	}
}

// TestConcurrentMemberPatches: Okta and Entra push members in parallel
// requests; none may be lost.
func TestConcurrentMemberPatches(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		const n = 16
		gid, ids := patchConcurrently(t, e, n, "u", func(_ int, id string) []any {
			return []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}}}
		})
		g := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
		if m, _ := g.body["members"].([]any); len(m) != n {
			t.Fatalf("%d members after %d concurrent adds: %s", len(m), n, g.raw)
		}
		names, err := st.UserGroupNames(e.ctx(), ids[3])
		if err != nil || len(names) != 1 || names[0] != "Everyone" {
			t.Fatalf("groups claim source: %v %v", names, err)
		}
	})
}

// TestConcurrentGroupPatchesWithoutIfMatch: PATCHes that change the
// group's attributes and members at once, sent in parallel without
// If-Match, all apply: a client that named no version never gets 412.
func TestConcurrentGroupPatchesWithoutIfMatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		const n = 4
		gid, _ := patchConcurrently(t, e, n, "p", func(i int, id string) []any {
			return []any{
				map[string]any{"op": "replace", "path": "externalId", "value": fmt.Sprintf("ext-%d", i)},
				map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}},
			}
		})
		g := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
		if m, _ := g.body["members"].([]any); len(m) != n || !strings.HasPrefix(g.str("externalId"), "ext-") {
			t.Fatalf("after %d concurrent patches: %s", n, g.raw)
		}
	})
}

// patchConcurrently creates the group Everyone and n users (prefix0@acme.com
// and on), then sends at once, without If-Match, one PATCH of the group per
// user, carrying the operations ops makes for the i-th user. Every PATCH
// must answer 204.
func patchConcurrently(t *testing.T, e *env, n int, prefix string, ops func(i int, id string) []any) (gid string, ids []string) {
	t.Helper()
	gid = e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Everyone"}).want(t, http.StatusCreated).str("id")
	ids = make([]string, n)
	for i := range ids {
		ids[i] = e.do("POST", "/Users", userBody(fmt.Sprintf("%s%d@acme.com", prefix, i), nil)).want(t, http.StatusCreated).str("id")
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			r := e.do("PATCH", "/Groups/"+gid, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops(i, id)})
			if r.status != http.StatusNoContent {
				t.Errorf("%d %s", r.status, r.raw)
			}
		})
	}
	wg.Wait()
	return gid, ids
}

// TestUserNameAddressWithoutEmails: a user pushed with only a userName
// that is an email address (no emails[]) is the person who signs in with
// that address: SSO finds the directory's user, the directory adopts the
// user SSO created first, and deprovisioning ends the sessions of the
// person who signed in. A userName that is no address sets no email.
func TestUserNameAddressWithoutEmails(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		ss := sessions.NewMemory()
		e := newEnv(t, st, ss)
		conn, err := st.CreateConnection(e.ctx(), store.Connection{Type: "saml", Name: "Okta"})
		if err != nil {
			t.Fatal(err)
		}
		bare := func(userName string) map[string]any {
			return map[string]any{"schemas": []string{scim.SchemaUser}, "userName": userName, "active": true}
		}

		// Directory first, then the sign-in.
		carol := e.do("POST", "/Users", bare("Carol@Acme.com")).want(t, http.StatusCreated).str("id")
		signedIn, err := st.UpsertSSOUser(e.ctx(), conn.ID, "okta|carol", store.User{Email: "carol@acme.com", EmailVerified: true})
		if err != nil || signedIn.ID != carol {
			t.Fatalf("signed in as %s (%v), want the directory's user %s", signedIn.ID, err, carol)
		}
		// Sign-in first, then the directory.
		jit, err := st.UpsertSSOUser(e.ctx(), conn.ID, "okta|dave", store.User{Email: "dave@acme.com", EmailVerified: true})
		if err != nil {
			t.Fatal(err)
		}
		if dave := e.do("POST", "/Users", bare("dave@acme.com")).want(t, http.StatusCreated).str("id"); dave != jit.ID {
			t.Fatalf("directory created %s, want the signed-in user %s adopted", dave, jit.ID)
		}

		// Deprovisioning carol ends the session she signed in with.
		s := sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: e.tenant, UserID: signedIn.ID, ConnectionID: conn.ID, ExpiresAt: time.Now().Add(time.Hour)}
		if err := ss.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		e.do("PATCH", "/Users/"+carol, map[string]any{"schemas": []string{scim.SchemaPatchOp},
			"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}).want(t, http.StatusOK)
		if _, err := ss.Get(context.Background(), s.ID); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("carol's session after deprovisioning: %v", err)
		}

		// Not an address: no email, and no one else's account.
		id := e.do("POST", "/Users", bare("erin")).want(t, http.StatusCreated).str("id")
		if u, err := st.User(e.ctx(), id); err != nil || u.Email != "" {
			t.Fatalf("user %q: email %q (%v), want none", "erin", u.Email, err)
		}
	})
}

// TestPutWithoutActiveKeepsIt: a PUT that leaves active out, or sends it
// null, keeps the user's state, so a replacement never brings a
// deprovisioned user back; active: true does.
func TestPutWithoutActiveKeepsIt(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		id := e.do("POST", "/Users", userBody("erin@acme.com", nil)).want(t, http.StatusCreated).str("id")
		e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp},
			"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}).want(t, http.StatusOK)
		for _, tc := range []struct {
			name   string
			active any // nil: left out
			want   bool
		}{
			{"left out", nil, false},
			{"null", "null", false},
			{"true", true, true},
			{"left out again", nil, true},
		} {
			body := userBody("erin@acme.com", map[string]any{"displayName": "Erin " + tc.name})
			delete(body, "active")
			if tc.active == "null" {
				body["active"] = nil
			} else if tc.active != nil {
				body["active"] = tc.active
			}
			r := e.do("PUT", "/Users/"+id, body).want(t, http.StatusOK)
			if got, _ := r.body["active"].(bool); got != tc.want {
				t.Errorf("PUT with active %s: answer says active %v, want %v: %s", tc.name, r.body["active"], tc.want, r.raw)
			}
			u, err := st.User(e.ctx(), id)
			if err != nil || u.Active != tc.want {
				t.Errorf("PUT with active %s: stored %+v %v, want active %v", tc.name, u.Active, err, tc.want)
			}
		}
	})
}

// TestPatchRemovingActiveKeepsIt: a PATCH that removes active, or sets it
// to null (with a path or without), keeps the user's state, as a PUT
// without it does: only active: true brings a deprovisioned user back.
func TestPatchRemovingActiveKeepsIt(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		id := e.do("POST", "/Users", userBody("erin@acme.com", nil)).want(t, http.StatusCreated).str("id")
		patch := func(op map[string]any) resp {
			return e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{op}})
		}
		patch(map[string]any{"op": "replace", "path": "active", "value": false}).want(t, http.StatusOK)
		for _, tc := range []struct {
			name string
			op   map[string]any
			want bool
		}{
			{"remove", map[string]any{"op": "remove", "path": "active"}, false},
			{"Entra's Remove", map[string]any{"op": "Remove", "path": "ACTIVE"}, false},
			{"no-path null", map[string]any{"op": "replace", "value": map[string]any{"active": nil, "displayName": "Erin"}}, false},
			{"true", map[string]any{"op": "replace", "path": "active", "value": true}, true},
			{"remove while active", map[string]any{"op": "remove", "path": "active"}, true},
		} {
			r := patch(tc.op).want(t, http.StatusOK)
			if got, _ := r.body["active"].(bool); got != tc.want {
				t.Errorf("PATCH %s: answer says active %v, want %v: %s", tc.name, r.body["active"], tc.want, r.raw)
			}
			if u, err := st.User(e.ctx(), id); err != nil || u.Active != tc.want {
				t.Errorf("PATCH %s: stored active %v (%v), want %v", tc.name, u.Active, err, tc.want)
			}
		}
	})
}
