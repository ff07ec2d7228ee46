package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/usage"
)

var backends = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{"sqlite", storetest.SQLite},
	{"postgres", storetest.Postgres},
}

func eachBackend(t *testing.T, fn func(t *testing.T, st *store.DB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open(t))
		})
	}
}

// env is a real SCIM server over a real store, with one tenant and one
// directory.
type env struct {
	t        testing.TB
	st       *store.DB
	sessions sessions.Store
	srv      *scim.Server
	http     *httptest.Server
	tenant   string
	dir      string
	token    string
}

func newEnv(t testing.TB, st *store.DB, ss sessions.Store) *env {
	t.Helper()
	if ss == nil {
		ss = sessions.NewMemory()
	}
	e := echo.New()
	hs := httptest.NewServer(e)
	t.Cleanup(hs.Close)
	srv, err := scim.New(scim.Config{Issuer: hs.URL, Store: st, Sessions: ss, Usage: usage.New(st, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount(e)
	en := &env{t: t, st: st, sessions: ss, srv: srv, http: hs}
	en.tenant, en.dir, en.token = en.newDirectory("Acme")
	return en
}

// newDirectory creates a tenant with a directory and returns its token.
func (e *env) newDirectory(name string) (tenantID, dirID, token string) {
	e.t.Helper()
	ctx := context.Background()
	tn, err := e.st.CreateTenant(ctx, store.Tenant{Name: name, Status: store.TenantActive})
	if err != nil {
		e.t.Fatal(err)
	}
	token = secrets.NewToken("scim")
	d, err := e.st.CreateDirectory(store.WithTenant(ctx, tn.ID), store.Directory{Name: "okta", TokenHash: secrets.HashToken(token)})
	if err != nil {
		e.t.Fatal(err)
	}
	return tn.ID, d.ID, token
}

// secondDirectory adds the directory entra to the env's tenant, beside its
// okta, and returns how to send a SCIM request to it with its own token.
func (e *env) secondDirectory() func(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	token := secrets.NewToken("scim")
	d, err := e.st.CreateDirectory(e.ctx(), store.Directory{Name: "entra", TokenHash: secrets.HashToken(token)})
	if err != nil {
		e.t.Fatal(err)
	}
	return func(method, path string, body any, hdr ...string) resp {
		e.t.Helper()
		return e.doAs(d.ID, token, method, path, body, hdr...)
	}
}

func (e *env) ctx() context.Context { return store.WithTenant(context.Background(), e.tenant) }

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a SCIM request to the env's directory with its token.
func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	return e.doAs(e.dir, e.token, method, path, body, hdr...)
}

func (e *env) doAs(dir, token, method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.http.URL+"/scim/v2/"+dir+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", scim.MediaType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
		}
	}
	return r
}

// want fails unless r has status; SCIM errors must use the error schema.
func (r resp) want(t testing.TB, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if status >= 400 {
		if s, _ := r.body["status"].(string); s != strconv.Itoa(status) {
			t.Fatalf("error body status %q, want %q: %s", r.body["status"], strconv.Itoa(status), r.raw)
		}
		if sch, _ := r.body["schemas"].([]any); len(sch) != 1 || sch[0] != scim.SchemaError {
			t.Fatalf("error body schemas %v: %s", r.body["schemas"], r.raw)
		}
	}
	return r
}

func (r resp) str(path string) string {
	v := lookup(r.body, path)
	s, _ := v.(string)
	return s
}

// lookup walks a dotted path ("Resources.0.id", "name.givenName").
func lookup(v any, path string) any {
	if path == "" {
		return v
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			i := 0
			for _, c := range part {
				if c < '0' || c > '9' {
					return nil
				}
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func userBody(userName string, extra map[string]any) map[string]any {
	b := map[string]any{
		"schemas":  []string{scim.SchemaUser},
		"userName": userName,
		"name":     map[string]any{"givenName": "Given", "familyName": "Family"},
		"emails":   []any{map[string]any{"value": userName, "type": "work", "primary": true}},
		"active":   true,
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}
