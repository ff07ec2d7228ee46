package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		data any
		want []string
	}{
		{"login_email.html", map[string]any{"Action": "/login", "RequestID": "r1", "Email": `<x>"`, "Error": ""},
			[]string{`name="id" value="r1"`, `value="&lt;x&gt;&#34;"`}},
		{"login_error.html", map[string]any{"Title": "Oops", "Message": "<script>", "Reference": "req-1"},
			[]string{"<h1>Oops</h1>", "&lt;script&gt;", "req-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if err := Render(w, http.StatusBadRequest, tc.name, tc.data); err != nil {
				t.Fatal(err)
			}
			if w.Code != http.StatusBadRequest || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, headers %v", w.Code, w.Header())
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body lacks %q:\n%s", s, w.Body)
				}
			}
		})
	}
	if err := Render(httptest.NewRecorder(), 200, "nope.html", nil); err == nil {
		t.Error("unknown template rendered")
	}
}

func TestStatic(t *testing.T) {
	w := httptest.NewRecorder()
	Static().ServeHTTP(w, httptest.NewRequest("GET", "/style.css", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "font-family") {
		t.Fatalf("status %d", w.Code)
	}
}

// TestStaticListsNothingAndLetsNothingRun: the assets' directory is not
// listed (it was, as an HTML page without a policy), and every answer, a
// 404 too, carries a policy under which nothing runs.
func TestStaticListsNothingAndLetsNothingRun(t *testing.T) {
	for _, tc := range []struct {
		path string
		code int
	}{{"/", 404}, {"", 404}, {"/favicon.svg", 200}, {"/app.js", 200}, {"/nope.css", 404}, {"/app.css/", 404}} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.Path = tc.path
		Static().ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("%q = %d, want %d:\n%s", tc.path, w.Code, tc.code, w.Body)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%q: CSP %q", tc.path, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%q: no nosniff", tc.path)
		}
		if strings.Contains(w.Body.String(), `href="app.css"`) {
			t.Errorf("%q lists the directory", tc.path)
		}
	}
}
