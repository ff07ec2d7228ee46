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
