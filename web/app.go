package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// Every app page, the portal's and the operator console's, shares the
// parts of templates/layout/frame.html (head, skip link, footer, the CSRF
// field) and the stylesheet static/base.css. The portal's pages render in
// the shared layout (templates/layout/app.html, static/app.css,
// static/app.js), each surface keeping its pages in a directory of its own
// under templates/ and loading them with NewPages; the console keeps its
// own header and navigation (console/layout.html, static/console.css) and
// parses the shared parts with ParseFrame.

//go:embed templates templates/*/_*.html
var appFiles embed.FS

// View is what the shared layout shows around a page: the vendor's brand,
// navigation, the CSRF token for forms, and a one-time notice. Data is the
// page's own.
type View struct {
	// Product is the name the people on the page know: the SaaS vendor's
	// product in the portal, the operator's deployment in the console.
	Product string
	// LogoURL, when set, is shown beside Product (an operator setting).
	LogoURL string
	// Area names the surface ("Admin portal", "Console").
	Area string
	// Title is the page's heading and the first part of <title>.
	Title string
	// Step, when set, goes before Title in <title> only: where a page of
	// a wizard is ("Step 2 of 4: Connect Okta"), so that the title says
	// where someone is, not only which wizard (WCAG 2.4.2).
	Step string
	// Account says who is signed in, or for which organisation.
	Account string
	// DoneURL, when set, is the target of a "Done" button in the header.
	DoneURL string
	// SignOut, when set, is the action of a "Sign out" button.
	SignOut string
	Nav     []NavItem
	// CSRF is the token every state-changing form carries (template
	// "csrf").
	CSRF string
	// Flash is a success notice; Error an error notice at the top.
	Flash, Error string
	Footer       string
	Data         any
}

// NavItem is one tab of the navigation.
type NavItem struct {
	Label, Href string
	Current     bool
}

// Message is the data of the shared "message.html" page.
type Message struct {
	// Tone is "error" or "info".
	Tone string
	// What says what happened; Next what to do about it.
	What, Next string
	Reference  string
}

// CopyField is the data of the "copy" template: a read-only value with a
// copy button.
type CopyField struct{ ID, Label, Value string }

// Funcs are available to every app page.
var Funcs = template.FuncMap{
	"copyField": func(id, label, value string) CopyField { return CopyField{ID: id, Label: label, Value: value} },
	// date shows a time the way people read it: "3 May 2026".
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006")
	},
	// datetime adds the time of day, in UTC, said so.
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006, 15:04 UTC")
	},
	// iso is for <time datetime="…">.
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

// ParseFrame adds the shared parts of every app page
// (templates/layout/frame.html: "frame-head", "skip-link", "frame-footer"
// and "csrf") to t, for a surface that draws its own frame around them.
func ParseFrame(t *template.Template) (*template.Template, error) {
	t, err := t.ParseFS(appFiles, "templates/layout/frame.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse frame: %w", err)
	}
	return t, nil
}

// Pages are the pages of one surface, each parsed together with the shared
// layout. Pages are parsed at construction; a page that does not parse is
// an error there, never in a request.
type Pages struct {
	pages map[string]*template.Template
	csp   string
}

// NewPages loads every templates/<dir>/*.html page, plus the shared
// "message.html", each with the shared layout and funcs (added to Funcs).
// Files named _*.html in dir are not pages: their templates are shared by
// the surface's pages.
// imgSrc lists extra origins images may come from (the vendor's logo).
func NewPages(dir string, funcs template.FuncMap, imgSrc ...string) (*Pages, error) {
	base := template.New("").Funcs(Funcs)
	if funcs != nil {
		base = base.Funcs(funcs)
	}
	base, err := base.ParseFS(appFiles, "templates/layout/frame.html", "templates/layout/app.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	all, err := fs.Glob(appFiles, "templates/"+dir+"/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: list %s pages: %w", dir, err)
	}
	// Files named _*.html hold templates the surface's pages share.
	var files []string
	for _, f := range all {
		if strings.HasPrefix(path.Base(f), "_") {
			if base, err = base.ParseFS(appFiles, f); err != nil {
				return nil, fmt.Errorf("web: parse %s: %w", f, err)
			}
			continue
		}
		files = append(files, f)
	}
	// frame.html and app.html are the frame, not pages; message.html is
	// everyone's.
	files = append(files, "templates/layout/message.html")
	p := &Pages{pages: map[string]*template.Template{}, csp: AppCSP(imgSrc...)}
	for _, f := range files {
		t, err := template.Must(base.Clone()).ParseFS(appFiles, f)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", f, err)
		}
		p.pages[path.Base(f)] = t
	}
	return p, nil
}

// AppCSP is the Content-Security-Policy of app pages: scripts and styles
// only from our own origin (no inline script or style at all), never
// framed, forms only to ourselves. imgSrc adds image origins (a logo URL's
// origin is taken from a full URL).
func AppCSP(imgSrc ...string) string {
	img := []string{"'self'", "data:"}
	for _, s := range imgSrc {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
			img = append(img, u.Scheme+"://"+u.Host)
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src " + strings.Join(img, " ") +
		"; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

// CSP is the policy Render sends; handlers that answer outside Render
// (downloads, redirects) send it too.
func (p *Pages) CSP() string { return p.csp }

// Render writes page name inside the layout with status. Like Render, it
// renders into a buffer first and sends pages that are never cached and
// never framed.
func (p *Pages) Render(w http.ResponseWriter, status int, name string, v View) error {
	t, ok := p.pages[name]
	if !ok {
		return fmt.Errorf("web: no page %s", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	SecureHeaders(w.Header(), p.csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := buf.WriteTo(w)
	return err
}

// SecureHeaders sets what every app response carries: the CSP, no
// framing, no caching, no referrer.
func SecureHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}
