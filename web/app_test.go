package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPagesRenderMessage(t *testing.T) {
	p, err := NewPages("nothing-here", nil, "https://cdn.vendor.example/logo.png")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	err = p.Render(w, 410, "message.html", View{
		Product: "Acme <HR>", LogoURL: "https://cdn.vendor.example/logo.png", Title: "Link expired",
		Data: Message{Tone: "error", What: "This setup link has expired.", Next: "Ask Acme for a new one."},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Code != 410 {
		t.Errorf("status %d", w.Code)
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "img-src 'self' data: https://cdn.vendor.example"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline: %q", csp)
	}
	body := w.Body.String()
	for _, want := range []string{"Acme &lt;HR&gt;", "This setup link has expired.", "Ask Acme for a new one.", `href="/static/base.css"`, `href="/static/app.css"`, `href="#main">Skip to content`, `<footer class="footer"><p>Acme &lt;HR&gt;</p></footer>`, "<h1>Link expired</h1>"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Error("inline script or style in an app page")
	}
	if err := p.Render(httptest.NewRecorder(), 200, "nope.html", View{}); err == nil {
		t.Error("unknown page rendered")
	}
}

func TestStaticAppAssets(t *testing.T) {
	for _, name := range []string{"/base.css", "/app.css", "/app.js", "/console.css"} {
		w := httptest.NewRecorder()
		Static().ServeHTTP(w, httptest.NewRequest("GET", name, nil))
		if w.Code != 200 || w.Body.Len() == 0 {
			t.Errorf("%s: status %d", name, w.Code)
		}
	}
}
