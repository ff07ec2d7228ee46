package adminportal_test

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/store"
)

// forgotten records the ids the API told its application cache about.
type forgotten struct {
	mu  sync.Mutex
	ids []string
}

func (f *forgotten) ForgetApplication(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, id)
}

func (f *forgotten) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

// newAppEnv is newEnv with an application cache behind the API.
func newAppEnv(t *testing.T, st *store.DB, cache adminportal.ApplicationCache) *env {
	t.Helper()
	return mountedEnv(t, st, adminportal.APIConfig{ApplicationCache: cache})
}

type appOut struct {
	ID                     string   `json:"id"`
	ClientID               string   `json:"client_id"`
	ClientSecret           *string  `json:"client_secret"`
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   *string  `json:"backchannel_logout_uri"`
	InitiateLoginURI       *string  `json:"initiate_login_uri"`
	Public                 bool     `json:"public"`
	Alg                    string   `json:"id_token_signed_response_alg"`
	AccessTTL              *int64   `json:"access_token_ttl_seconds"`
	IDTTL                  *int64   `json:"id_token_ttl_seconds"`
	RefreshTTL             *int64   `json:"refresh_token_ttl_seconds"`
	CreatedAt              string   `json:"created_at"`
	UpdatedAt              string   `json:"updated_at"`
}

func TestManageApplications(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			cache := &forgotten{}
			e := newAppEnv(t, b.open(t), cache)

			// Lifetimes on POST.
			var web appOut
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{
				"name": "Web", "redirect_uris": []string{"https://app.example/cb"},
				"access_token_ttl_seconds": 300, "refresh_token_ttl_seconds": 86400,
			}).decode(t, &web)
			if web.ClientSecret == nil || web.AccessTTL == nil || *web.AccessTTL != 300 || web.IDTTL != nil ||
				web.RefreshTTL == nil || *web.RefreshTTL != 86400 || web.CreatedAt == "" {
				t.Fatalf("created %+v", web)
			}
			var spa appOut
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{
				"name": "SPA", "public": true, "redirect_uris": []string{"http://localhost:3000/cb"},
			}).decode(t, &spa)

			// GET one and the paged list; never a secret.
			var got appOut
			e.must(http.StatusOK, "GET", "/applications/"+web.ID, nil).decode(t, &got)
			if got.ID != web.ID || got.ClientSecret != nil || got.Name != "Web" || *got.AccessTTL != 300 {
				t.Fatalf("get %+v", got)
			}
			var page listOut[appOut]
			e.must(http.StatusOK, "GET", "/applications?limit=1", nil).decode(t, &page)
			if len(page.Data) != 1 || page.NextCursor == nil || page.Data[0].ClientSecret != nil {
				t.Fatalf("page 1 %+v", page)
			}
			first := page.Data[0].ID
			e.must(http.StatusOK, "GET", "/applications?limit=1&after="+*page.NextCursor, nil).decode(t, &page)
			if len(page.Data) != 1 || page.NextCursor != nil || page.Data[0].ID == first {
				t.Fatalf("page 2 %+v", page)
			}

			// PATCH changes what it names and tells the cache.
			var upd appOut
			e.must(http.StatusOK, "PATCH", "/applications/"+web.ID, map[string]any{
				"name": "Web app", "redirect_uris": []string{"https://app.example/cb2"},
				"post_logout_redirect_uris": []string{"https://app.example/bye"},
				"backchannel_logout_uri":    "https://app.example/bcl",
				"id_token_ttl_seconds":      600, "access_token_ttl_seconds": 0,
			}).decode(t, &upd)
			if upd.Name != "Web app" || !reflect.DeepEqual(upd.RedirectURIs, []string{"https://app.example/cb2"}) ||
				!reflect.DeepEqual(upd.PostLogoutRedirectURIs, []string{"https://app.example/bye"}) ||
				upd.BackchannelLogoutURI == nil || *upd.BackchannelLogoutURI != "https://app.example/bcl" ||
				upd.AccessTTL != nil || upd.IDTTL == nil || *upd.IDTTL != 600 || upd.RefreshTTL == nil || *upd.RefreshTTL != 86400 ||
				upd.Alg != "RS256" || upd.ClientSecret != nil {
				t.Fatalf("patched %+v", upd)
			}
			if ids := cache.list(); !slices.Equal(ids, []string{web.ID}) {
				t.Fatalf("cache told %v", ids)
			}
			// "" removes the back-channel URI.
			e.must(http.StatusOK, "PATCH", "/applications/"+web.ID, map[string]any{"backchannel_logout_uri": ""}).decode(t, &upd)
			if upd.BackchannelLogoutURI != nil || upd.Name != "Web app" {
				t.Fatalf("patched %+v", upd)
			}
			// initiate_login_uri is set, kept by other PATCHes, and removed by "".
			e.must(http.StatusOK, "PATCH", "/applications/"+web.ID, map[string]any{"initiate_login_uri": "https://app.example/login"}).decode(t, &upd)
			if upd.InitiateLoginURI == nil || *upd.InitiateLoginURI != "https://app.example/login" {
				t.Fatalf("patched %+v", upd)
			}
			e.must(http.StatusOK, "PATCH", "/applications/"+web.ID, map[string]any{"name": "Web app"}).decode(t, &upd)
			if upd.InitiateLoginURI == nil {
				t.Fatalf("a PATCH of the name dropped initiate_login_uri: %+v", upd)
			}
			e.must(http.StatusOK, "PATCH", "/applications/"+web.ID, map[string]any{"initiate_login_uri": ""}).decode(t, &upd)
			if upd.InitiateLoginURI != nil {
				t.Fatalf("patched %+v", upd)
			}
			// A public client keeps its native redirect rules.
			e.must(http.StatusOK, "PATCH", "/applications/"+spa.ID, map[string]any{"redirect_uris": []string{"com.example.app:/cb"}})

			// Refused PATCHes leave the application as it was.
			before, _ := e.st.Application(context.Background(), web.ID)
			for name, body := range map[string]any{
				"empty name":           map[string]any{"name": " "},
				"no redirect":          map[string]any{"redirect_uris": []string{}},
				"null redirects":       map[string]any{"redirect_uris": nil, "name": 5},
				"plain http":           map[string]any{"redirect_uris": []string{"http://app.example/cb"}},
				"custom scheme conf":   map[string]any{"redirect_uris": []string{"com.example.app:/cb"}},
				"fragment":             map[string]any{"post_logout_redirect_uris": []string{"https://a.example/#x"}},
				"bcl query":            map[string]any{"backchannel_logout_uri": "https://a.example/bcl?x=1"},
				"initiate http":        map[string]any{"initiate_login_uri": "http://a.example/login"},
				"initiate fragment":    map[string]any{"initiate_login_uri": "https://a.example/login#x"},
				"ttl too short":        map[string]any{"access_token_ttl_seconds": 5},
				"ttl too long":         map[string]any{"id_token_ttl_seconds": 86401},
				"negative ttl":         map[string]any{"refresh_token_ttl_seconds": -1},
				"ttl not a number":     map[string]any{"refresh_token_ttl_seconds": "1h"},
				"fractional ttl":       map[string]any{"access_token_ttl_seconds": 90.5},
				"secret not settable":  map[string]any{"client_secret": "mine"},
				"public not settable":  map[string]any{"public": true},
				"alg not settable":     map[string]any{"id_token_signed_response_alg": "ES256"},
				"valid then bad field": map[string]any{"name": "Renamed", "access_token_ttl_seconds": 1},
			} {
				t.Run(name, func(t *testing.T) {
					r := e.call("PATCH", "/applications/"+web.ID, body)
					if r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
						t.Fatalf("status %d: %s", r.status, r.body)
					}
				})
			}
			if r := e.call("PATCH", "/applications/"+web.ID, "{"); r.status != http.StatusBadRequest {
				t.Fatalf("malformed JSON: %d", r.status)
			}
			if r := e.call("PATCH", "/applications/"+web.ID, `{"name":"x"}`, "Content-Type", "text/plain"); r.status != http.StatusUnsupportedMediaType {
				t.Fatalf("text/plain: %d", r.status)
			}
			if after, _ := e.st.Application(context.Background(), web.ID); !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused PATCH changed the application:\n%+v\n%+v", before, after)
			}
			if n := len(cache.list()); n != 6 {
				t.Fatalf("cache told %d times, want 6 (refusals tell nothing)", n)
			}

			// Unknown, malformed and other kinds of ids are 404, and no key is 401.
			for _, id := range []string{store.NewID(store.PrefixApplication), "app_'--", store.NewID(store.PrefixTenant)} {
				for _, m := range []string{"GET", "PATCH", "DELETE"} {
					var body any
					if m == "PATCH" {
						body = map[string]any{"name": "x"}
					}
					if r := e.call(m, "/applications/"+id, body); r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
						t.Fatalf("%s %s: %d %s", m, id, r.status, r.body)
					}
				}
			}
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				if r := e.call(m, "/applications/"+web.ID, nil, "Authorization", "Bearer nope"); r.status != http.StatusUnauthorized {
					t.Fatalf("%s without a key: %d", m, r.status)
				}
			}
			if r := e.call("GET", "/applications", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
				t.Fatalf("list without a key: %d", r.status)
			}

			// DELETE: 204, then gone; the other application stays.
			e.must(http.StatusNoContent, "DELETE", "/applications/"+web.ID, nil)
			e.must(http.StatusNotFound, "GET", "/applications/"+web.ID, nil)
			e.must(http.StatusNotFound, "DELETE", "/applications/"+web.ID, nil)
			e.must(http.StatusOK, "GET", "/applications/"+spa.ID, nil)
			if ids := cache.list(); ids[len(ids)-1] != web.ID {
				t.Fatalf("delete not told to the cache: %v", ids)
			}
		})
	}
}
