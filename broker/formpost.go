package broker

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"
)

// The answer to an authorization request with response_mode=form_post
// (OAuth 2.0 Form Post Response Mode): a page that posts the answer's
// parameters to the redirect_uri at once. The broker renders it itself:
// zitadel/oidc's page posts only state, code and token fields, so an
// error answer reached the application as a POST carrying its state and
// nothing else — no error, no description.

// formPostScript submits the page's form. It is the page's only script,
// allowed by its hash in formPostCSP; without scripts, the button does it.
const formPostScript = `document.forms[0].submit()`

// formPostCSP allows nothing but that script: no other script, style,
// frame or base. form-action is left open, the form's target being the
// application's registered redirect_uri, wherever it is.
var formPostCSP = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; frame-ancestors 'none'; base-uri 'none'"
}()

var formPostPage = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in</title></head>
<body><form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><button type="submit">Continue</button></noscript>
</form><script>` + formPostScript + `</script></body></html>
`))

type formField struct{ Name, Value string }

// formPostValues answers with the page that posts values (an
// authorization response, encoded as op would encode it into a query) to
// redirectURI.
func formPostValues(c echo.Context, redirectURI string, values url.Values) error {
	var fields []formField
	for _, name := range slices.Sorted(maps.Keys(values)) {
		for _, v := range values[name] {
			if v != "" {
				fields = append(fields, formField{name, v})
			}
		}
	}
	var buf bytes.Buffer
	if err := formPostPage.Execute(&buf, struct {
		Action string // sanitised by html/template: http(s) only
		Fields []formField
	}{redirectURI, fields}); err != nil {
		return fmt.Errorf("broker: render form_post answer: %w", err)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", formPostCSP)
	h.Set("Referrer-Policy", "no-referrer")
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}
