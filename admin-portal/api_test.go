package adminportal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/admin-portal/portal"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/usage"
)

// backends are the real databases every test runs against.
var backends = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{"sqlite", storetest.SQLite},
	{"postgres", storetest.Postgres},
}

// eachBackend runs fn once per backend against a fresh database, a real
// HTTP server and an API key.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b.open(t)))
		})
	}
}

// fakeDNS is a DNS stub: TXT answers by name, or an error.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]string
	err     error
}

func (f *fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if r, ok := f.records[name]; ok {
		return r, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeDNS) set(name string, values ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[name] = values
	f.err = nil
}

func (f *fakeDNS) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

type env struct {
	t     *testing.T
	st    *store.DB
	url   string
	key   string
	keyID string
	dns   *fakeDNS
}

// testBodyLimit is small so that the 413 test needs no megabyte.
const testBodyLimit = 16 << 10

func newEnv(t *testing.T, st *store.DB) *env {
	t.Helper()
	dns := &fakeDNS{records: map[string][]string{}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	srv := httpserver.New(httpserver.Config{Logger: logger, BodyLimit: testBodyLimit})
	links, err := portal.New(portal.Config{Issuer: "https://id.example", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	adminportal.NewAPI(adminportal.APIConfig{
		Store: st, Resolver: dns, Logger: logger, Portal: links, Usage: usage.New(st, nil, nil), SLO: st,
	}).Mount(srv.Echo())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e := keyedEnv(t, st, ts.URL)
	e.dns = dns
	return e
}

// keyedEnv is the env of an operator API served at serverURL over st,
// holding a fresh API key for it.
func keyedEnv(t *testing.T, st *store.DB, serverURL string) *env {
	t.Helper()
	key, k, err := adminportal.CreateAPIKey(context.Background(), st, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, url: serverURL + "/api/v1", key: key, keyID: k.ID}
}

// mountedEnv is newEnv with only what cfg gives the API (its Store is st),
// logging nowhere unless cfg says where.
func mountedEnv(t *testing.T, st *store.DB, cfg adminportal.APIConfig) *env {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Store = st
	srv := httpserver.New(httpserver.Config{BodyLimit: testBodyLimit})
	adminportal.NewAPI(cfg).Mount(srv.Echo())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return keyedEnv(t, st, ts.URL)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// response is one API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (r response) err(t *testing.T) httpserver.ErrorDetail {
	t.Helper()
	var b httpserver.ErrorBody
	r.decode(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error body without code or message: %s", r.body)
	}
	return b.Error
}

// call sends body (a string is sent raw, anything else as JSON) with the
// environment's API key unless an Authorization header is given.
func (e *env) call(method, path string, body any, header ...string) response {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// must asserts the status of a call.
func (e *env) must(status int, method, path string, body any) response {
	e.t.Helper()
	r := e.call(method, path, body)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	return r
}

type domainOut struct {
	ID           string `json:"id"`
	TenantID     string `json:"tenant_id"`
	Domain       string `json:"domain"`
	Verified     bool   `json:"verified"`
	Verification struct {
		RecordType  string `json:"record_type"`
		RecordName  string `json:"record_name"`
		RecordValue string `json:"record_value"`
	} `json:"verification"`
}

type tenantOut struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Status    string      `json:"status"`
	Tier      *string     `json:"tier"`
	Domains   []domainOut `json:"domains"`
	CreatedAt string      `json:"created_at"`
	UpdatedAt string      `json:"updated_at"`
}

type listOut[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func (e *env) createTenant(body any) tenantOut {
	e.t.Helper()
	var out tenantOut
	e.must(http.StatusCreated, http.MethodPost, "/tenants", body).decode(e.t, &out)
	return out
}

func (e *env) addDomain(tenantID string, body any) domainOut {
	e.t.Helper()
	var out domainOut
	e.must(http.StatusCreated, http.MethodPost, "/tenants/"+tenantID+"/domains", body).decode(e.t, &out)
	return out
}

// tenantCount counts all tenants in the store.
func (e *env) tenantCount() int {
	e.t.Helper()
	n, after := 0, ""
	for {
		ts, next, err := e.st.ListTenants(context.Background(), store.Page{Limit: 100, After: after})
		if err != nil {
			e.t.Fatal(err)
		}
		n += len(ts)
		if next == "" {
			return n
		}
		after = next
	}
}

// audits lists the audit rows of a tenant with the given action.
func (e *env) audits(tenantID, action string) []store.AuditEvent {
	e.t.Helper()
	rows, _, err := e.st.AuditEvents(store.WithTenant(context.Background(), tenantID), action, store.Page{Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// events lists the outbox events of a tenant with the given type.
func (e *env) events(tenantID, typ string) []store.Event {
	e.t.Helper()
	var out []store.Event
	after := ""
	for {
		evs, next, err := e.st.ListEvents(context.Background(), store.Page{Limit: 100, After: after})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.TenantID == tenantID && ev.Type == typ {
				out = append(out, ev)
			}
		}
		if next == "" {
			return out
		}
		after = next
	}
}

func TestUnauthenticated(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tnt := e.createTenant(map[string]any{"name": "Acme", "domains": []any{map[string]any{"domain": "acme.com"}}})
		dom := tnt.Domains[0].ID

		revoked, k, err := adminportal.CreateAPIKey(context.Background(), e.st, "revoked")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.RevokeAPIKey(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}

		routes := []struct{ method, path string }{
			{"POST", "/tenants"},
			{"GET", "/tenants"},
			{"GET", "/tenants/" + tnt.ID},
			{"PATCH", "/tenants/" + tnt.ID},
			{"DELETE", "/tenants/" + tnt.ID},
			{"GET", "/tenants/" + tnt.ID + "/domains"},
			{"POST", "/tenants/" + tnt.ID + "/domains"},
			{"GET", "/tenants/" + tnt.ID + "/domains/" + dom},
			{"DELETE", "/tenants/" + tnt.ID + "/domains/" + dom},
			{"POST", "/tenants/" + tnt.ID + "/domains/" + dom + "/verify"},
			{"GET", "/no-such-route"},
		}
		// A key sent and refused is invalid_token (RFC 6750 §3.1); no key
		// at all gets the challenge without an error code.
		creds := []struct{ name, header, challenge string }{
			{"no header", "", `Bearer realm="idbroker"`},
			{"basic scheme", "Basic " + e.key, `Bearer realm="idbroker"`},
			{"empty bearer", "Bearer ", `Bearer realm="idbroker"`},
			{"unknown key", "Bearer idb_sk_" + strings.Repeat("x", 43), `Bearer realm="idbroker", error="invalid_token"`},
			{"key with a byte changed", "Bearer " + e.key[:len(e.key)-1] + "!", `Bearer realm="idbroker", error="invalid_token"`},
			{"revoked key", "Bearer " + revoked, `Bearer realm="idbroker", error="invalid_token"`},
		}
		for _, r := range routes {
			for _, c := range creds {
				res := e.call(r.method, r.path, `{"name":"x"}`, "Authorization", c.header)
				if res.status != http.StatusUnauthorized {
					t.Errorf("%s %s with %s: status %d, want 401", r.method, r.path, c.name, res.status)
					continue
				}
				if got := res.err(t).Code; got != "unauthorized" {
					t.Errorf("%s %s with %s: code %q", r.method, r.path, c.name, got)
				}
				if res.header.Get("WWW-Authenticate") != c.challenge {
					t.Errorf("%s %s with %s: WWW-Authenticate %q", r.method, r.path, c.name, res.header.Get("WWW-Authenticate"))
				}
			}
		}
		// Nothing above changed anything.
		e.must(http.StatusOK, "GET", "/tenants/"+tnt.ID+"/domains/"+dom, nil)
		if n := e.tenantCount(); n != 1 {
			t.Errorf("%d tenants after unauthenticated calls, want 1", n)
		}
		// The scheme is case-insensitive (RFC 7235).
		if res := e.call("GET", "/tenants", nil, "Authorization", "bearer "+e.key); res.status != http.StatusOK {
			t.Errorf("lower-case scheme: status %d", res.status)
		}
	})
}

func TestTenantLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		created := e.createTenant(map[string]any{
			"name":   "  Acme Corp ",
			"status": "trial",
			"tier":   "enterprise",
			"domains": []any{
				map[string]any{"domain": "ACME.com.", "verified": true},
				map[string]any{"domain": "acme-eu.example"},
			},
		})
		if !store.HasPrefix(created.ID, store.PrefixTenant) || created.Name != "Acme Corp" ||
			created.Status != "trial" || created.Tier == nil || *created.Tier != "enterprise" ||
			created.CreatedAt == "" || created.UpdatedAt == "" {
			t.Fatalf("created = %+v", created)
		}
		if len(created.Domains) != 2 {
			t.Fatalf("domains = %+v", created.Domains)
		}
		byName := map[string]domainOut{}
		for _, d := range created.Domains {
			byName[d.Domain] = d
		}
		acme, eu := byName["acme.com"], byName["acme-eu.example"]
		if !acme.Verified || eu.Verified || !store.HasPrefix(eu.ID, store.PrefixDomain) || eu.TenantID != created.ID {
			t.Errorf("domains = %+v", created.Domains)
		}
		if eu.Verification.RecordType != "TXT" || eu.Verification.RecordName != "_idbroker-verification.acme-eu.example" ||
			!strings.HasPrefix(eu.Verification.RecordValue, "idbroker-verification=") ||
			len(eu.Verification.RecordValue) < len("idbroker-verification=")+32 {
			t.Errorf("verification = %+v", eu.Verification)
		}

		var got tenantOut
		e.must(http.StatusOK, "GET", "/tenants/"+created.ID, nil).decode(t, &got)
		if got.ID != created.ID || got.Name != "Acme Corp" || len(got.Domains) != 2 {
			t.Errorf("GET = %+v", got)
		}

		var patched tenantOut
		e.must(http.StatusOK, "PATCH", "/tenants/"+created.ID, map[string]any{"name": "Acme Inc", "tier": "growth"}).decode(t, &patched)
		if patched.Name != "Acme Inc" || *patched.Tier != "growth" || patched.Status != "trial" || len(patched.Domains) != 2 {
			t.Errorf("PATCH = %+v", patched)
		}
		// An empty patch changes nothing and is not audited.
		e.must(http.StatusOK, "PATCH", "/tenants/"+created.ID, map[string]any{})

		var l listOut[tenantOut]
		e.must(http.StatusOK, "GET", "/tenants", nil).decode(t, &l)
		if len(l.Data) != 1 || l.Data[0].Name != "Acme Inc" || len(l.Data[0].Domains) != 2 || l.NextCursor != nil {
			t.Errorf("list = %+v", l)
		}

		var dl listOut[domainOut]
		e.must(http.StatusOK, "GET", "/tenants/"+created.ID+"/domains", nil).decode(t, &dl)
		if len(dl.Data) != 2 {
			t.Errorf("domains list = %+v", dl)
		}
		var one domainOut
		e.must(http.StatusOK, "GET", "/tenants/"+created.ID+"/domains/acme-eu.example", nil).decode(t, &one)
		if one.ID != eu.ID {
			t.Errorf("domain by name = %+v, want %s", one, eu.ID)
		}
		added := e.addDomain(created.ID, map[string]any{"domain": "Bücher.example"})
		if added.Domain != "xn--bcher-kva.example" || added.Verified {
			t.Errorf("added = %+v", added)
		}
		if r := e.call("POST", "/tenants/"+created.ID+"/domains", map[string]any{"domain": "acme.com"}); r.status != http.StatusConflict {
			t.Errorf("adding a domain twice: status %d, want 409: %s", r.status, r.body)
		}
		e.must(http.StatusNoContent, "DELETE", "/tenants/"+created.ID+"/domains/"+added.ID, nil)
		e.must(http.StatusNotFound, "GET", "/tenants/"+created.ID+"/domains/"+added.ID, nil)

		// Every mutation was audited, by this key, with its request id.
		for action, n := range map[string]int{"tenant.created": 1, "tenant.updated": 1, "domain.added": 3, "domain.removed": 1} {
			rows := e.audits(created.ID, action)
			if len(rows) != n {
				t.Errorf("%d %s audit rows, want %d", len(rows), action, n)
				continue
			}
			for _, r := range rows {
				if r.Actor.Type != "operator" || r.Actor.ID != e.keyID || r.Actor.IP == "" || r.RequestID == "" || r.TenantID != created.ID {
					t.Errorf("%s audit row = %+v", action, r)
				}
			}
		}
		res := e.must(http.StatusOK, "PATCH", "/tenants/"+created.ID, map[string]any{"name": "Acme Audited"})
		rows := e.audits(created.ID, "tenant.updated")
		if len(rows) != 2 || rows[0].RequestID != res.header.Get("X-Request-Id") {
			t.Errorf("newest tenant.updated row %+v, want request id %s", rows, res.header.Get("X-Request-Id"))
		}

		e.must(http.StatusNoContent, "DELETE", "/tenants/"+created.ID, nil)
		e.must(http.StatusNotFound, "GET", "/tenants/"+created.ID, nil)
		e.must(http.StatusNotFound, "DELETE", "/tenants/"+created.ID, nil)
		// Out of service but restorable: its verified domain stays its own.
		other := e.createTenant(map[string]any{"name": "Other"})
		e.must(http.StatusConflict, "POST", "/tenants/"+other.ID+"/domains", map[string]any{"domain": "acme.com", "verified": true})
		if got := len(e.audits(created.ID, "tenant.deleted")); got != 1 {
			t.Errorf("%d tenant.deleted audit rows, want 1", got)
		}
	})
}

func TestPagination(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		var want []string
		for _, name := range []string{"a", "b", "c", "d", "e"} {
			want = append(want, e.createTenant(map[string]any{"name": name}).ID)
		}
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatal("too many pages")
			}
			path := "/tenants?limit=2"
			if after != "" {
				path += "&after=" + after
			}
			var l listOut[tenantOut]
			e.must(http.StatusOK, "GET", path, nil).decode(t, &l)
			for _, tn := range l.Data {
				got = append(got, tn.ID)
			}
			if l.NextCursor == nil {
				if len(l.Data) != 1 {
					t.Errorf("last page has %d tenants, want 1", len(l.Data))
				}
				break
			}
			if len(l.Data) != 2 {
				t.Errorf("page has %d tenants, want 2", len(l.Data))
			}
			after = *l.NextCursor
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("paged ids %v, want %v", got, want)
		}
		var all listOut[tenantOut]
		e.must(http.StatusOK, "GET", "/tenants", nil).decode(t, &all)
		if len(all.Data) != 5 || all.NextCursor != nil {
			t.Errorf("default page: %d tenants, next %v", len(all.Data), all.NextCursor)
		}
		if !strings.Contains(string(e.must(http.StatusOK, "GET", "/tenants", nil).body), `"next_cursor":null`) {
			t.Error("next_cursor is not null on the last page")
		}

		for _, q := range []string{"limit=0", "limit=101", "limit=-1", "limit=abc", "limit=2.5", "after=nope", "after=dom_01ARZ3NDEKTSV4RRFFQ69G5FAV"} {
			r := e.call("GET", "/tenants?"+q, nil)
			field, _, _ := strings.Cut(q, "=")
			if r.status != http.StatusBadRequest || r.err(t).Field != field {
				t.Errorf("?%s: status %d %s, want 400 naming %s", q, r.status, r.body, field)
			}
		}
	})
}

func TestStrictInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		existing := e.createTenant(map[string]any{"name": "Existing"})
		tests := []struct {
			name, method, path, body, contentType string
			status                                int
			field, message                        string
		}{
			{"unknown field", "POST", "/tenants", `{"nmae":"Acme"}`, "", 400, "nmae", `unknown field "nmae"`},
			{"unknown nested field", "POST", "/tenants", `{"name":"Acme","domains":[{"domian":"a.com"}]}`, "", 400, "domian", `unknown field "domian"`},
			{"wrong type", "POST", "/tenants", `{"name":5}`, "", 400, "name", "must be a string"},
			{"wrong nested type", "POST", "/tenants", `{"name":"Acme","domains":[{"domain":"a.com","verified":"yes"}]}`, "", 400, "domains.verified", "must be a boolean"},
			{"array body", "POST", "/tenants", `[{"name":"Acme"}]`, "", 400, "", "must be a JSON object"},
			{"null body", "POST", "/tenants", ` null `, "", 400, "", "must be a JSON object, not null"},
			{"patch null body", "PATCH", "/tenants/" + existing.ID, `null`, "", 400, "", "must be a JSON object, not null"},
			{"trailing garbage", "POST", "/tenants", `{"name":"Acme"} garbage`, "", 400, "", "nothing after it"},
			{"second object", "POST", "/tenants", `{"name":"Acme"}{"name":"Evil"}`, "", 400, "", "nothing after it"},
			{"truncated", "POST", "/tenants", `{"name":"Acme"`, "", 400, "", "malformed JSON"},
			{"syntax error", "POST", "/tenants", `{"name":'Acme'}`, "", 400, "", "malformed JSON"},
			{"empty body", "POST", "/tenants", ``, "", 400, "", "body is required"},
			{"whitespace body", "POST", "/tenants", "  \n", "", 400, "", "body is required"},
			{"not json", "POST", "/tenants", `name=Acme`, "application/x-www-form-urlencoded", 415, "", "application/json"},
			{"missing name", "POST", "/tenants", `{"tier":"pro"}`, "", 400, "name", "name is required"},
			{"blank name", "POST", "/tenants", `{"name":"   "}`, "", 400, "name", "name is required"},
			{"control characters", "POST", "/tenants", `{"name":"Ac\u0000me"}`, "", 400, "name", "control characters"},
			{"paused at birth", "POST", "/tenants", `{"name":"Acme","status":"paused"}`, "", 400, "status", "active"},
			{"bad domain", "POST", "/tenants", `{"name":"Acme","domains":[{"domain":"ok.com"},{"domain":"localhost"}]}`, "", 400, "domains[1].domain", "localhost"},
			{"ip domain", "POST", "/tenants", `{"name":"Acme","domains":[{"domain":"10.0.0.1"}]}`, "", 400, "domains[0].domain", "IP address"},
			{"public suffix", "POST", "/tenants", `{"name":"Acme","domains":[{"domain":"co.uk"}]}`, "", 400, "domains[0].domain", "public suffix"},
			{"duplicate domain", "POST", "/tenants", `{"name":"Acme","domains":[{"domain":"a.com"},{"domain":"A.com."}]}`, "", 400, "domains[1].domain", "twice"},
			{"too large", "POST", "/tenants", `{"name":"` + strings.Repeat("a", testBodyLimit) + `"}`, "", 413, "", "limit"},
			{"patch unknown field", "PATCH", "/tenants/" + existing.ID, `{"name":"New","statuss":"paused"}`, "", 400, "statuss", `unknown field "statuss"`},
			{"patch wrong type", "PATCH", "/tenants/" + existing.ID, `{"name":["New"]}`, "", 400, "name", "must be a string"},
			{"patch bad status", "PATCH", "/tenants/" + existing.ID, `{"status":"gone"}`, "", 400, "status", "status must be"},
			{"patch trailing", "PATCH", "/tenants/" + existing.ID, `{"name":"New"}]`, "", 400, "", "nothing after it"},
			{"domain unknown field", "POST", "/tenants/" + existing.ID + "/domains", `{"domain":"a.com","verify":true}`, "", 400, "verify", `unknown field "verify"`},
			{"domain wrong type", "POST", "/tenants/" + existing.ID + "/domains", `{"domain":{"name":"a.com"}}`, "", 400, "domain", "must be a string"},
			{"domain with email", "POST", "/tenants/" + existing.ID + "/domains", `{"domain":"alice@a.com"}`, "", 400, "domain", "part after @"},
			{"domain single label", "POST", "/tenants/" + existing.ID + "/domains", `{"domain":"intranet"}`, "", 400, "domain", "fully qualified"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ct := tt.contentType
				if ct == "" {
					ct = "application/json; charset=utf-8"
				}
				var body any = tt.body
				r := e.call(tt.method, tt.path, body, "Content-Type", ct)
				if r.status != tt.status {
					t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
				}
				got := r.err(t)
				if got.Field != tt.field || !strings.Contains(got.Message, tt.message) {
					t.Errorf("error = %+v, want field %q and a message with %q", got, tt.field, tt.message)
				}
			})
		}
		// A compressed (or so labelled) body is refused as such, not read as
		// malformed JSON or taken as it is.
		for _, ce := range []string{"gzip", "br"} {
			r := e.call("POST", "/tenants", `{"name":"Acme"}`, "Content-Encoding", ce)
			if r.status != http.StatusUnsupportedMediaType || !strings.Contains(r.err(t).Message, "Content-Encoding") {
				t.Errorf("Content-Encoding %s: %d %s, want 415", ce, r.status, r.body)
			}
		}
		// The store is untouched: one tenant, unchanged, no domains.
		if n := e.tenantCount(); n != 1 {
			t.Errorf("%d tenants, want 1", n)
		}
		var got tenantOut
		e.must(http.StatusOK, "GET", "/tenants/"+existing.ID, nil).decode(t, &got)
		if got.Name != "Existing" || got.Status != "active" || len(got.Domains) != 0 {
			t.Errorf("tenant changed by refused requests: %+v", got)
		}
		if n := len(e.audits(existing.ID, "")); n != 1 {
			t.Errorf("%d audit rows, want only tenant.created", n)
		}
	})
}

func TestVerifiedDomainBelongsToOneTenant(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		a := e.createTenant(map[string]any{"name": "A", "domains": []any{map[string]any{"domain": "acme.com", "verified": true}}})
		b := e.createTenant(map[string]any{"name": "B"})

		// B may claim it unverified, but never verify it.
		bDom := e.addDomain(b.ID, map[string]any{"domain": "acme.com"})
		e.dns.set(bDom.Verification.RecordName, bDom.Verification.RecordValue)
		r := e.call("POST", "/tenants/"+b.ID+"/domains/"+bDom.ID+"/verify", nil)
		if r.status != http.StatusConflict || !strings.Contains(r.err(t).Message, "another tenant") {
			t.Errorf("verify of A's domain by B: %d %s, want 409", r.status, r.body)
		}
		c := e.createTenant(map[string]any{"name": "C"})
		if r := e.call("POST", "/tenants/"+c.ID+"/domains", map[string]any{"domain": "acme.com", "verified": true}); r.status != http.StatusConflict {
			t.Errorf("adding A's verified domain as verified to C: %d %s, want 409", r.status, r.body)
		}

		// A tenant created with a domain another holds verified is not
		// created at all, nor any of its other domains.
		before := e.tenantCount()
		r = e.call("POST", "/tenants", map[string]any{"name": "D", "domains": []any{
			map[string]any{"domain": "fresh.example", "verified": true},
			map[string]any{"domain": "acme.com", "verified": true},
		}})
		if r.status != http.StatusConflict || !strings.Contains(r.err(t).Message, "acme.com") {
			t.Fatalf("create with a taken domain: %d %s, want 409 naming it", r.status, r.body)
		}
		if after := e.tenantCount(); after != before {
			t.Errorf("failed creation left a tenant behind: %d tenants, want %d", after, before)
		}
		// fresh.example was rolled back with it: someone else can verify it.
		e.addDomain(c.ID, map[string]any{"domain": "fresh.example", "verified": true})

		// Routing still goes to A.
		owner, err := e.st.ResolveDomain(context.Background(), "acme.com")
		if err != nil || owner != a.ID {
			t.Errorf("acme.com resolves to %q, %v; want %s", owner, err, a.ID)
		}
	})
}

func TestVerifyDomain(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tn := e.createTenant(map[string]any{"name": "Acme"})
		d := e.addDomain(tn.ID, map[string]any{"domain": "acme.example"})
		if d.Verified || d.Verification.RecordName != "_idbroker-verification.acme.example" {
			t.Fatalf("added = %+v", d)
		}
		verify := "/tenants/" + tn.ID + "/domains/" + d.ID + "/verify"
		want := d.Verification.RecordValue

		failures := []struct {
			name    string
			setup   func()
			message string
		}{
			{"no record", func() {}, "no TXT record found at _idbroker-verification.acme.example"},
			{"wrong value", func() {
				e.dns.set(d.Verification.RecordName, "v=spf1 -all", "idbroker-verification=wrong")
			}, `found "v=spf1 -all", "idbroker-verification=wrong"`},
			{"dns down", func() {
				e.dns.fail(&net.DNSError{Err: "i/o timeout", Name: d.Verification.RecordName, Server: "10.9.9.9:53", IsTimeout: true})
			}, "timed out"},
		}
		for _, f := range failures {
			f.setup()
			r := e.call("POST", verify, nil)
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("%s: status %d, want 422: %s", f.name, r.status, r.body)
			}
			got := r.err(t)
			if got.Code != "verification_failed" || !strings.Contains(got.Message, f.message) {
				t.Errorf("%s: error %+v, want verification_failed with %q", f.name, got, f.message)
			}
			if f.name != "dns down" && !strings.Contains(got.Message, want) {
				t.Errorf("%s: message does not say what to publish: %s", f.name, got.Message)
			}
			if strings.Contains(got.Message, "10.9.9.9") {
				t.Errorf("%s: message leaks the resolver: %s", f.name, got.Message)
			}
		}
		if n := len(e.audits(tn.ID, "domain.verified")); n != 0 {
			t.Fatalf("%d domain.verified rows after failures", n)
		}

		e.dns.set(d.Verification.RecordName, "something-else", " "+want+" ")
		var ok domainOut
		e.must(http.StatusOK, "POST", verify, nil).decode(t, &ok)
		if !ok.Verified || ok.ID != d.ID {
			t.Fatalf("verified = %+v", ok)
		}
		// Idempotent, by id or by name.
		e.dns.fail(errors.New("must not be asked"))
		e.must(http.StatusOK, "POST", "/tenants/"+tn.ID+"/domains/ACME.example/verify", nil).decode(t, &ok)
		if !ok.Verified {
			t.Errorf("verify again = %+v", ok)
		}
		if n := len(e.audits(tn.ID, "domain.verified")); n != 1 {
			t.Errorf("%d domain.verified rows, want 1", n)
		}
		if owner, err := e.st.ResolveDomain(context.Background(), "acme.example"); err != nil || owner != tn.ID {
			t.Errorf("ResolveDomain = %q, %v", owner, err)
		}
	})
}

func TestCrossTenant(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		a := e.createTenant(map[string]any{"name": "A", "domains": []any{map[string]any{"domain": "a.example"}}})
		b := e.createTenant(map[string]any{"name": "B", "domains": []any{map[string]any{"domain": "b.example"}}})
		bDom := b.Domains[0]
		e.dns.set(bDom.Verification.RecordName, bDom.Verification.RecordValue)

		tests := []struct{ method, path string }{
			{"GET", "/tenants/" + a.ID + "/domains/" + bDom.ID},
			{"GET", "/tenants/" + a.ID + "/domains/b.example"},
			{"POST", "/tenants/" + a.ID + "/domains/" + bDom.ID + "/verify"},
			{"POST", "/tenants/" + a.ID + "/domains/b.example/verify"},
			{"DELETE", "/tenants/" + a.ID + "/domains/" + bDom.ID},
			{"DELETE", "/tenants/" + a.ID + "/domains/b.example"},
			// Malformed and unknown ids look the same as another's.
			{"GET", "/tenants/tnt_nope"},
			{"GET", "/tenants/" + strings.Replace(a.ID, "tnt_", "dom_", 1)},
			{"GET", "/tenants/tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
			{"PATCH", "/tenants/tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
			{"DELETE", "/tenants/tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
			{"POST", "/tenants/tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV/domains"},
			{"GET", "/tenants/" + a.ID + "/domains/dom_bad"},
			{"GET", "/tenants/" + a.ID + "/domains/not a domain"},
		}
		for _, tt := range tests {
			var body any
			if tt.method == "PATCH" || (tt.method == "POST" && strings.HasSuffix(tt.path, "/domains")) {
				body = map[string]any{"name": "x", "domain": "x.example"}
			}
			r := e.call(tt.method, strings.ReplaceAll(tt.path, " ", "%20"), body)
			if r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
				t.Errorf("%s %s: %d %s, want 404 not_found", tt.method, tt.path, r.status, r.body)
			}
		}
		// B's domain is intact and unverified.
		var got domainOut
		e.must(http.StatusOK, "GET", "/tenants/"+b.ID+"/domains/"+bDom.ID, nil).decode(t, &got)
		if got.Verified || got.TenantID != b.ID {
			t.Errorf("B's domain = %+v", got)
		}
	})
}

func TestStatusTransitions(t *testing.T) {
	tests := []struct {
		from, to string
		status   int
		event    bool
	}{
		// Forward along trial → active → past_due → paused → cancelled.
		{"trial", "active", 200, true},
		{"active", "past_due", 200, true},
		{"past_due", "paused", 200, true},
		{"paused", "cancelled", 200, true},
		// Any live tenant may be paused, and a paused one resumed.
		{"trial", "paused", 200, true},
		{"active", "paused", 200, true},
		{"paused", "active", 200, true},
		{"active", "active", 200, false},
		// Refused: every other move, steps skipped and ways back alike.
		{"trial", "past_due", 409, false},
		{"trial", "cancelled", 409, false},
		{"active", "cancelled", 409, false},
		{"past_due", "active", 409, false},
		{"past_due", "cancelled", 409, false},
		{"active", "trial", 409, false},
		{"paused", "trial", 409, false},
		{"paused", "past_due", 409, false},
		{"cancelled", "active", 409, false},
		{"cancelled", "paused", 409, false},
		{"cancelled", "trial", 409, false},
		{"active", "deleted", 409, false},
		{"paused", "deleted", 409, false},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.from+"→"+tt.to, func(t *testing.T) {
				start := tt.from
				if start != "trial" {
					start = "active"
				}
				tn := e.createTenant(map[string]any{"name": "T", "status": start})
				// Along the chain to tt.from.
				for _, step := range map[string][]string{"past_due": {"past_due"}, "paused": {"paused"}, "cancelled": {"paused", "cancelled"}}[tt.from] {
					e.must(http.StatusOK, "PATCH", "/tenants/"+tn.ID, map[string]any{"status": step})
				}
				before := len(e.events(tn.ID, "tenant.status_changed"))
				audited := len(e.audits(tn.ID, "tenant.updated"))

				r := e.call("PATCH", "/tenants/"+tn.ID, map[string]any{"status": tt.to, "name": "Renamed"})
				if r.status != tt.status {
					t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
				}
				var got tenantOut
				e.must(http.StatusOK, "GET", "/tenants/"+tn.ID, nil).decode(t, &got)
				evs := e.events(tn.ID, "tenant.status_changed")
				if tt.status != 200 {
					if code := r.err(t).Code; tt.status == 409 && code != "invalid_transition" {
						t.Errorf("code %q, want invalid_transition", code)
					}
					if msg := r.err(t).Message; tt.status == 409 && !strings.HasPrefix(msg, map[bool]string{true: "an ", false: "a "}[tt.from == "active"]+tt.from+" tenant") {
						t.Errorf("message %q", msg)
					}
					// All or nothing: the name did not change either.
					if got.Status != tt.from || got.Name != "T" || len(evs) != before {
						t.Errorf("refused change left %+v and %d events", got, len(evs)-before)
					}
					if n := len(e.audits(tn.ID, "tenant.updated")); n != audited {
						t.Errorf("refused change left %d audit rows", n-audited)
					}
					return
				}
				// Every accepted change is one audit row, saying what changed.
				rows := e.audits(tn.ID, "tenant.updated")
				if len(rows) != audited+1 {
					t.Fatalf("%d new tenant.updated audit rows, want 1", len(rows)-audited)
				}
				var ctxJSON struct {
					Changes map[string]struct{ From, To string } `json:"changes"`
				}
				if err := json.Unmarshal(rows[0].Context, &ctxJSON); err != nil {
					t.Fatal(err)
				}
				if st, ok := ctxJSON.Changes["status"]; ok != tt.event || (ok && (st.From != tt.from || st.To != tt.to)) {
					t.Errorf("audit row context %s, want the status change %s → %s", rows[0].Context, tt.from, tt.to)
				}
				if got.Status != tt.to || got.Name != "Renamed" {
					t.Errorf("tenant = %+v", got)
				}
				if !tt.event {
					if len(evs) != before {
						t.Errorf("%d events for a non-change", len(evs)-before)
					}
					return
				}
				if len(evs) != before+1 {
					t.Fatalf("%d new tenant.status_changed events, want 1", len(evs)-before)
				}
				var data map[string]string
				if err := json.Unmarshal(evs[len(evs)-1].Data, &data); err != nil {
					t.Fatal(err)
				}
				if data["tenant_id"] != tn.ID || data["status"] != tt.to || data["previous_status"] != tt.from {
					t.Errorf("event data = %v", data)
				}
			})
		}
	})
}

func TestEnsureBootstrapKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const key = "bootstrap-key-from-the-environment-0123456789"
		// Nodes starting together, then restarts: one key, one row.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = adminportal.EnsureBootstrapKey(ctx, e.st, key)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
		}
		for i := range 2 { // idempotent across restarts
			if err := adminportal.EnsureBootstrapKey(ctx, e.st, key); err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		}
		if r := e.call("GET", "/tenants", nil, "Authorization", "Bearer "+key); r.status != http.StatusOK {
			t.Fatalf("bootstrap key refused: %d %s", r.status, r.body)
		}
		keys, err := e.st.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var boot []store.APIKey
		for _, k := range keys {
			if k.Name == adminportal.BootstrapKeyName {
				boot = append(boot, k)
			}
		}
		if len(boot) != 1 {
			t.Fatalf("%d bootstrap keys stored, want 1", len(boot))
		}
		if sum := sha256.Sum256([]byte(key)); !bytes.Equal(boot[0].Hash, sum[:]) || !strings.HasPrefix(key, boot[0].Prefix) || len(boot[0].Prefix) > 12 {
			t.Errorf("stored key = %+v", boot[0])
		}
		// Its creation is in the operators' trail, once, like a key made
		// with "idbroker apikey create", and never with the key itself.
		created := func() []store.OperatorAuditEvent {
			t.Helper()
			rows, _, err := e.st.OperatorAudit(ctx, "api_key.created", store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		rows := created()
		if len(rows) != 1 || rows[0].Actor != adminportal.BootstrapActor ||
			rows[0].Resource != (store.Resource{Type: "api_key", ID: boot[0].ID, Name: adminportal.BootstrapKeyName}) ||
			!strings.Contains(string(rows[0].Context), boot[0].ID) || strings.Contains(string(rows[0].Context), key) {
			t.Fatalf("api_key.created rows = %+v, want one naming %s", rows, boot[0].ID)
		}
		if err := e.st.RevokeAPIKey(ctx, boot[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := adminportal.EnsureBootstrapKey(ctx, e.st, key); err == nil {
			t.Error("a revoked bootstrap key was revived")
		}
		if rows := created(); len(rows) != 1 {
			t.Errorf("%d api_key.created rows after refusing a revoked bootstrap key, want still 1", len(rows))
		}
		if r := e.call("GET", "/tenants", nil, "Authorization", "Bearer "+key); r.status != http.StatusUnauthorized {
			t.Errorf("revoked bootstrap key: status %d", r.status)
		}
		for _, bad := range []string{"", "has space", "tab\tkey", strings.Repeat("k", 300)} {
			if err := adminportal.EnsureBootstrapKey(ctx, e.st, bad); err == nil {
				t.Errorf("EnsureBootstrapKey(%q) = nil", bad)
			}
		}
	})
}

func TestCreateAPIKey(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	k1, rec, err := adminportal.CreateAPIKey(ctx, st, "ci")
	if err != nil {
		t.Fatal(err)
	}
	k2, _, err := adminportal.CreateAPIKey(ctx, st, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k1, "idb_sk_") || len(k1) < len("idb_sk_")+43 || k1 == k2 {
		t.Errorf("keys %q, %q", k1, k2)
	}
	if !strings.HasPrefix(k1, rec.Prefix) || len(rec.Prefix) > 12 || bytes.Contains(rec.Hash, []byte(k1)) || !store.HasPrefix(rec.ID, store.PrefixAPIKey) {
		t.Errorf("stored %+v", rec)
	}
	if _, _, err := adminportal.CreateAPIKey(ctx, st, " "); err == nil {
		t.Error("a nameless key was created")
	}
}

// TestCancelledTenantDeletedByPatch: the contract's lifecycle ends
// cancelled → deleted, so a PATCH taking that last step is allowed (other
// moves to deleted stay 409) and does what DELETE does: the tenant answers
// 404, is listed with ?status=deleted, is announced and audited once, and
// can be restored, as cancelled, with the PATCH's other changes kept.
func TestCancelledTenantDeletedByPatch(t *testing.T) {
	tests := []struct {
		name     string
		body     map[string]any
		wantName string
	}{
		{"status only", map[string]any{"status": "deleted"}, "T"},
		{"with a rename", map[string]any{"status": "deleted", "name": "Gone"}, "Gone"},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tn := e.createTenant(map[string]any{"name": "T"})
				e.must(http.StatusOK, "PATCH", "/tenants/"+tn.ID, map[string]any{"status": "paused"})
				e.must(http.StatusOK, "PATCH", "/tenants/"+tn.ID, map[string]any{"status": "cancelled"})

				var got tenantOut
				e.must(http.StatusOK, "PATCH", "/tenants/"+tn.ID, tt.body).decode(t, &got)
				if got.ID != tn.ID || got.Status != "deleted" || got.Name != tt.wantName {
					t.Fatalf("PATCH answered %+v", got)
				}
				e.must(http.StatusNotFound, "GET", "/tenants/"+tn.ID, nil)
				var deleted listOut[tenantOut]
				e.must(http.StatusOK, "GET", "/tenants?status=deleted", nil).decode(t, &deleted)
				if !slices.ContainsFunc(deleted.Data, func(d tenantOut) bool { return d.ID == tn.ID }) {
					t.Errorf("?status=deleted does not list %s: %+v", tn.ID, deleted.Data)
				}
				evs := e.events(tn.ID, "tenant.status_changed")
				var data map[string]string
				if err := json.Unmarshal(evs[len(evs)-1].Data, &data); err != nil {
					t.Fatal(err)
				}
				if data["status"] != "deleted" || data["previous_status"] != "cancelled" {
					t.Errorf("last event %v", data)
				}
				if rows := e.audits(tn.ID, "tenant.deleted"); len(rows) != 1 || !strings.Contains(string(rows[0].Context), "restore_until") {
					t.Errorf("tenant.deleted rows %+v", rows)
				}
				e.must(http.StatusOK, "POST", "/tenants/"+tn.ID+"/restore", nil).decode(t, &got)
				if got.Status != "cancelled" || got.Name != tt.wantName {
					t.Errorf("restored %+v", got)
				}
			})
		}
	})
}

// TestBodylessCallsRefuseABody: the calls that take no body (a rotation
// of a webhook's secret, a restore, a domain check, revoke_sessions, a
// logout's or a delivery's redelivery) answer as always with no body or {}, and refuse
// anything else as every other call does — an unknown field is a 400
// naming it, another media type a 415 — rather than ignore it: a
// previous_secret_expires_in sent to a webhook's rotation by analogy with
// an application's would otherwise be dropped without a word.
func TestBodylessCallsRefuseABody(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			e := mountedEnv(t, st, adminportal.APIConfig{Sessions: sessions.NewMemory(), Resolver: &fakeDNS{records: map[string][]string{}}})
			tn := e.createTenant(map[string]any{"name": "Acme", "domains": []any{map[string]any{"domain": "acme.test"}}})
			var hook struct{ ID string }
			e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/h", "events": []string{"*"}}).decode(t, &hook)
			u, err := st.CreateUser(store.WithTenant(context.Background(), tn.ID), store.User{Email: "u@acme.test", Active: true})
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name, path string
				status     int // with no body or {}
			}{
				{"webhook secret", "/webhooks/" + hook.ID + "/secret", http.StatusOK},
				{"restore of a live tenant", "/tenants/" + tn.ID + "/restore", http.StatusConflict},
				{"domain check without its record", "/tenants/" + tn.ID + "/domains/" + tn.Domains[0].ID + "/verify", http.StatusUnprocessableEntity},
				{"revoke_sessions", "/users/" + u.ID + "/revoke_sessions", http.StatusNoContent},
				{"logout redelivery", "/tenants/" + tn.ID + "/logouts/" + store.NewID(store.PrefixLogout) + "/redeliver", http.StatusNotFound},
				{"delivery redelivery", "/webhooks/" + hook.ID + "/deliveries/dlv_00000000000000000000000000000000/redeliver", http.StatusNotFound},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					for _, body := range []any{nil, map[string]any{}} {
						if r := e.call("POST", tt.path, body); r.status != tt.status {
							t.Errorf("body %v: status %d, want %d: %s", body, r.status, tt.status, r.body)
						}
					}
					r := e.call("POST", tt.path, `{"previous_secret_expires_in":0}`)
					if r.status != http.StatusBadRequest || r.err(t).Field != "previous_secret_expires_in" {
						t.Errorf("unknown field: %d %s, want 400 naming it", r.status, r.body)
					}
					if r := e.call("POST", tt.path, "x=1", "Content-Type", "application/x-www-form-urlencoded"); r.status != http.StatusUnsupportedMediaType {
						t.Errorf("form body: %d %s, want 415", r.status, r.body)
					}
				})
			}
		})
	}
}

// TestRepeatedParametersRefused: a list's parameter given twice is a 400
// naming it, not the first value taken and the second dropped (which would
// answer ?tenant_id=A&tenant_id=B with A's rows alone).
func TestRepeatedParametersRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		a := e.createTenant(map[string]any{"name": "A"})
		b := e.createTenant(map[string]any{"name": "B"})
		tests := []struct{ path, field string }{
			{"/tenants?limit=1&limit=2", "limit"},
			{"/tenants?status=active&status=paused", "status"},
			{"/tenants?after=" + a.ID + "&after=" + b.ID, "after"},
			{"/audit_events?tenant_id=" + a.ID + "&tenant_id=" + b.ID, "tenant_id"},
			{"/audit_events?action=tenant.created&action=tenant.updated", "action"},
			{"/events?limit=1&limit=2", "limit"},
			{"/tenants/" + a.ID + "/domains?limit=1&limit=2", "limit"},
			{"/tenants/" + a.ID + "/usage?granularity=day&granularity=month", "granularity"},
			{"/usage/export?format=csv&format=ndjson", "format"},
			{"/webhooks?limit=5&limit=5", "limit"},
		}
		for _, tt := range tests {
			r := e.call("GET", tt.path, nil)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400: %.200s", tt.path, r.status, r.body)
				continue
			}
			if got := r.err(t); got.Field != tt.field || !strings.Contains(got.Message, "once") {
				t.Errorf("%s: %+v, want field %s and a message saying once", tt.path, got, tt.field)
			}
		}
	})
}
