package adminportal_test

import (
	"net/http"
	"testing"
)

// TestApplicationRefreshReuseInterval: refresh_token_reuse_interval_seconds
// on POST and PATCH, 0 (strict rotation, the default) to 60; shown as a
// number, 0 included, on every answer. Out of range, fractional, a string
// or null on POST are 400 and change nothing.
func TestApplicationRefreshReuseInterval(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newAppEnv(t, b.open(t), &forgotten{})
			type out struct {
				ID    string `json:"id"`
				Reuse *int64 `json:"refresh_token_reuse_interval_seconds"`
			}
			var strict, spa out
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{
				"name": "Web", "redirect_uris": []string{"https://app.example/cb"},
			}).decode(t, &strict)
			if strict.Reuse == nil || *strict.Reuse != 0 {
				t.Fatalf("default: %+v, want 0 (strict)", strict)
			}
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{
				"name": "SPA", "public": true, "redirect_uris": []string{"http://localhost:3000/cb"},
				"refresh_token_reuse_interval_seconds": 30,
			}).decode(t, &spa)
			if spa.Reuse == nil || *spa.Reuse != 30 {
				t.Fatalf("created with 30: %+v", spa)
			}
			var got out
			e.must(http.StatusOK, "GET", "/applications/"+spa.ID, nil).decode(t, &got)
			if got.Reuse == nil || *got.Reuse != 30 {
				t.Fatalf("GET: %+v", got)
			}
			for _, tc := range []struct {
				name string
				body map[string]any
				want int64
			}{
				{"set", map[string]any{"refresh_token_reuse_interval_seconds": 60}, 60},
				{"other field leaves it", map[string]any{"name": "SPA 2"}, 60},
				{"zero: strict", map[string]any{"refresh_token_reuse_interval_seconds": 0}, 0},
				{"set again", map[string]any{"refresh_token_reuse_interval_seconds": 5}, 5},
				{"null: strict", map[string]any{"refresh_token_reuse_interval_seconds": nil}, 0},
			} {
				e.must(http.StatusOK, "PATCH", "/applications/"+spa.ID, tc.body).decode(t, &got)
				if got.Reuse == nil || *got.Reuse != tc.want {
					t.Fatalf("%s: %+v, want %d", tc.name, got, tc.want)
				}
			}
			for name, v := range map[string]any{"61": 61, "negative": -1, "fraction": 1.5, "string": "30", "an hour": 3600} {
				t.Run(name, func(t *testing.T) {
					for _, call := range []struct{ method, path string }{{"PATCH", "/applications/" + strict.ID}, {"POST", "/applications"}} {
						body := map[string]any{"refresh_token_reuse_interval_seconds": v}
						if call.method == "POST" {
							body["name"], body["redirect_uris"] = "X", []string{"https://x.example/cb"}
						}
						r := e.call(call.method, call.path, body)
						if r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
							t.Fatalf("%s %v: %d %s", call.method, v, r.status, r.body)
						}
					}
				})
			}
			e.must(http.StatusOK, "GET", "/applications/"+strict.ID, nil).decode(t, &got)
			if got.Reuse == nil || *got.Reuse != 0 {
				t.Fatalf("after refusals: %+v", got)
			}
		})
	}
}
