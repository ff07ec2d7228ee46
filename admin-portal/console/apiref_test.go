package console_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/admin-portal/openapi"
)

// TestAPIReferencePage: /console/api renders every operation of the
// OpenAPI document, to anyone, under the console's CSP and without a
// script or style of its own; a signed-in operator reaches it from the
// navigation.
func TestAPIReferencePage(t *testing.T) {
	h := start(t, "")
	get := func(cookie string) (int, http.Header, string) {
		t.Helper()
		resp, b := h.get(t, cookie, "/console/api")
		return resp.StatusCode, resp.Header, b
	}

	status, hdr, body := get("")
	if status != http.StatusOK {
		t.Fatalf("GET /console/api signed out = %d, want 200", status)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q, want the console's strict policy", csp)
	}
	d := openapi.Must()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(d.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				OperationID string `json:"operationId"`
			}
			if json.Unmarshal(raw, &op) != nil || op.OperationID == "" {
				continue // "parameters"
			}
			if !strings.Contains(body, `id="op-`+op.OperationID+`"`) || !strings.Contains(body, "<code>/api/v1"+path+"</code>") {
				t.Errorf("the page lacks %s %s (#op-%s)", strings.ToUpper(method), path, op.OperationID)
			}
		}
	}
	for name := range doc.Components.Schemas {
		if !strings.Contains(body, `id="schema-`+name+`"`) {
			t.Errorf("the page lacks schema %s", name)
		}
	}
	// Every in-page link lands somewhere.
	for _, m := range regexp.MustCompile(`href="#([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(body, `id="`+m[1]+`"`) {
			t.Errorf("link #%s leads nowhere", m[1])
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:[^>]*)>[^<]`), // inline script
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`https?://(?:cdn|unpkg|fonts)\.`),
	} {
		if loc := bad.FindStringIndex(body); loc != nil {
			t.Errorf("the page has %q, which the CSP forbids or a CDN", body[loc[0]:min(loc[1]+40, len(body))])
		}
	}
	if !strings.Contains(body, `href="`+openapi.Path+`"`) {
		t.Errorf("the page does not link the JSON document")
	}
	if strings.Contains(body, `href="/console/api"`) {
		t.Errorf("signed out, the page shows the console's navigation")
	}

	// Signed in: the navigation leads here, and marks it.
	s := h.signIn(t)
	tok := s.token
	if _, _, body := get(tok); !strings.Contains(body, `<a href="/console/api" aria-current="page">API</a>`) || !strings.Contains(body, s.email) {
		t.Errorf("signed in, the page lacks the navigation to it")
	}
	if _, b := h.get(t, tok, "/console/tenants"); !strings.Contains(b, `<a href="/console/api">API</a>`) {
		t.Errorf("the console's navigation does not lead to the API reference")
	}
}
