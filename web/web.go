// Package web holds the pages the broker shows people directly — the
// "enter your work email" page, login error pages — and their static
// assets, embedded in the binary. It knows nothing of OAuth or tenants: the
// broker and the portal hand it a template name and the data to show.
//
// The self-serve portal and the operator console share the parts of every
// app page (templates/layout/frame.html, static/base.css): the portal
// renders in the shared layout (templates/layout/app.html, static/app.css,
// static/app.js) with Pages; the console draws its own header and
// navigation around the shared parts (console/*.html, static/console.css).
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed templates/*.html static/*
var files embed.FS

// templates is parsed once; a template that does not parse fails every test
// and the binary's start, never a request.
var templates = template.Must(template.ParseFS(files, "templates/*.html"))

// Static serves the embedded assets; mount it under /static/. It lists no
// directory (the file server's listing was an HTML page without the
// pages' headers), and every answer, a 404 too, carries a policy that
// lets nothing run: an asset opened on its own (an SVG is a document) is
// as inert as it is where the pages use it.
func Static() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// Render writes template name with data and status. It renders into a
// buffer first, so a template error becomes an error to the caller rather
// than half a page. Pages are never cached and never framed.
func Render(w http.ResponseWriter, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	// No form-action: browsers (Chromium) hold a form's submission to it
	// through the redirects that answer it, and the work-email form's
	// answer is a redirect to the user's IdP, on an origin of its own.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, err := buf.WriteTo(w)
	return err
}
