package portal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/web"
)

// testResult is what the portal keeps of a test login and shows on the
// result page: the profile an application would receive and the raw
// attributes beside it, or the check that failed and what the IdP sent.
type testResult struct {
	OK      bool         `json:"-"`
	At      time.Time    `json:"at"`
	Profile *testProfile `json:"profile,omitempty"`
	Raw     []rawAttr    `json:"raw,omitempty"`
	Check   string       `json:"check,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Hint    string       `json:"hint,omitempty"`
	Sent    string       `json:"sent,omitempty"`
	Fields  []sentField  `json:"fields,omitempty"`
}

type testProfile struct {
	Subject       string   `json:"subject"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	GivenName     string   `json:"given_name"`
	FamilyName    string   `json:"family_name"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	// GroupsOverage: the IdP left the groups out for their number
	// (connections.Profile.GroupsOverage); the page says what to change.
	GroupsOverage bool `json:"groups_overage,omitempty"`
}

type rawAttr struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// sentField is one thing the IdP sent in a failed login (an OIDC error, a
// SAML status) shown beside the failed check.
type sentField struct {
	Name, Value string
}

func (p *testProfile) field(key string) string {
	switch key {
	case "email":
		return p.Email
	case "given_name":
		return p.GivenName
	case "family_name":
		return p.FamilyName
	case "name":
		return p.Name
	case "groups":
		return strings.Join(p.Groups, ", ")
	}
	return ""
}

// sourceOf names the raw attribute that carried value, for the mapping
// preview.
func (t *testResult) sourceOf(value string) string {
	if value == "" {
		return ""
	}
	for _, a := range t.Raw {
		if strings.Join(a.Values, ", ") == value || len(a.Values) == 1 && strings.EqualFold(a.Values[0], value) {
			return a.Name
		}
	}
	return ""
}

// Complete routes the end of a login: test logins (connections.BeginTest)
// to the portal's result page, every other login to next (the broker). A
// test login never reaches the broker, so it opens no session and reaches
// no application.
func (p *Portal) Complete(next connections.CompleteFunc) connections.CompleteFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, conn store.Connection, res connections.Result, err error) {
		if !connections.IsTestLogin(res.RequestID) {
			next(ctx, w, r, conn, res, err)
			return
		}
		ctx = store.WithTenant(ctx, conn.TenantID)
		var t testResult
		if err != nil {
			t = failedTest(p.cfg.Now(), err, sentBy(r, res.Profile.Raw))
		} else {
			t = okTest(p.cfg.Now(), res.Profile)
		}
		if err := p.saveTest(ctx, conn, t); err != nil {
			p.testNotSaved(ctx, w, err)
			return
		}
		http.Redirect(w, r, Path+"/sso/"+conn.ID+"/test/result", http.StatusSeeOther)
	}
}

// testNotSaved answers a test login whose result could not be kept: the
// portal's page, 503 with Retry-After when the database is out of reach,
// else 500 with a reference (the cause logged).
func (p *Portal) testNotSaved(ctx context.Context, w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if unavailable(err) {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
		p.cfg.Logger.WarnContext(ctx, "portal: save test login: dependency unavailable", "err", err)
	} else {
		p.cfg.Logger.ErrorContext(ctx, "portal: save test login", "err", err)
	}
	v := web.View{Product: p.cfg.Product, LogoURL: p.cfg.LogoURL, Area: "Admin portal", Title: "Test result not saved",
		Data: web.Message{Tone: "error", What: "The test sign-in finished, but we could not save its result just now.",
			Next: "Wait a few seconds, then start the test again from the wizard.", Reference: httpserver.RequestID(ctx)}}
	if err := p.pages.Render(w, status, "message.html", v); err != nil {
		p.cfg.Logger.WarnContext(ctx, "portal: write test login page", "err", err)
	}
}

func (p *Portal) saveTest(ctx context.Context, conn store.Connection, t testResult) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return p.cfg.Store.SaveConnectionTest(ctx, store.ConnectionTest{ConnectionID: conn.ID, OK: t.OK, ConnUpdatedAt: conn.UpdatedAt, Result: b})
}

func okTest(now time.Time, prof connections.Profile) testResult {
	t := testResult{OK: true, At: now.UTC(), Profile: &testProfile{
		Subject: prof.IdPSubject, Email: prof.Email, EmailVerified: prof.EmailVerified,
		GivenName: prof.GivenName, FamilyName: prof.FamilyName, Name: prof.Name, Groups: prof.Groups,
		GroupsOverage: prof.GroupsOverage,
	}}
	for name, v := range prof.Raw {
		t.Raw = append(t.Raw, rawAttr{Name: name, Values: rawValues(v)})
	}
	sort.Slice(t.Raw, func(i, j int) bool { return t.Raw[i].Name < t.Raw[j].Name })
	return t
}

func rawValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case nil:
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []string{fmt.Sprint(v)}
	}
	return []string{string(b)}
}

// checks names, for each failure the connections package reports, the
// check that failed and what usually fixes it.
var checks = []struct {
	err         error
	check, hint string
}{
	{connections.ErrSignature, "Signature", "The response was not signed with a certificate this connection trusts. Check that the certificate in step 2 is the one your IdP signs with now; a metadata URL keeps it current."},
	{connections.ErrAudienceMismatch, "Audience", "Your IdP addressed the response to another service provider. Set its Audience URI / Identifier (Entity ID) to the SP Entity ID shown in step 1."},
	{connections.ErrDestinationMismatch, "Recipient", "Your IdP sent the response to another address. Set its ACS / Reply URL to the ACS URL shown in step 1."},
	{connections.ErrIssuerMismatch, "Issuer", "The response came from another identity provider than the one configured in step 2. Check the IdP entity ID or issuer."},
	{connections.ErrExpired, "Clock skew", "The response had already expired when it arrived. Check that your IdP server's clock is right."},
	{connections.ErrNotYetValid, "Clock skew", "The response is dated in the future. Check that your IdP server's clock is right."},
	{connections.ErrRequestMismatch, "Request", "The response does not answer this test, or arrived too late. Start the test again from the wizard."},
	{connections.ErrReplay, "Replay", "This response was already used once. Start the test again from the wizard."},
	{connections.ErrIdPInitiated, "IdP-initiated login", "The sign-in was started from your IdP's dashboard. Start the test from this wizard instead."},
	{connections.ErrIdPError, "Identity provider", "Your IdP refused the sign-in. Often the user is not assigned to the application in your IdP."},
	{connections.ErrDomainNotAllowed, "Email domain", "The user's email is not in one of your organisation's verified domains. Verify the domain on the Domains tab, then test again."},
	{connections.ErrProfile, "Profile", "Your IdP did not send what a sign-in needs. Send the user's email (step 3 lists the attribute names we read)."},
	{connections.ErrUpstream, "Identity provider unreachable", "We could not reach your IdP (discovery, keys or token endpoint). Check the issuer URL and that the IdP is reachable from the internet."},
	{connections.ErrConfig, "Configuration", "The connection's settings are incomplete or not accepted. Review step 2."},
	{connections.ErrMalformed, "Response format", "What your IdP sent could not be read as a SAML response or OIDC callback."},
	{connections.ErrConnectionInactive, "Connection state", "The connection cannot be tested in its current state."},
	{connections.ErrTenantInactive, "Organisation", "Your organisation's account is not active."},
}

func failedTest(now time.Time, err error, sent string) testResult {
	t := testResult{At: now.UTC(), Check: "Sign-in", Hint: "Start the test again; if it keeps failing, contact support with the time of the test."}
	for _, c := range checks {
		if errors.Is(err, c.err) {
			t.Check, t.Hint = c.check, c.hint
			break
		}
	}
	if errors.Is(err, connections.ErrSignature) && strings.Contains(err.Error(), "SHA-1") {
		// Signed with a certificate the connection trusts, with a hash it
		// refuses: the certificate hint would send the admin the wrong way.
		t.Hint = sha1Hint
	}
	t.Reason = plainReason(err)
	t.Sent = sent
	return t
}

// sha1Hint is what fixes a response signed with SHA-1.
const sha1Hint = "Your IdP signed with SHA-1, which this connection refuses. Have it sign with SHA-256 (in AD FS: the relying party trust's Properties › Advanced › Secure hash algorithm); if it cannot, accept SHA-1 on this connection under Advanced settings."

// plainReason is the error without the package prefixes ("connections:
// signature not valid: …" becomes "…"), the API's field names in the
// form's words ("check client_id" becomes "check the client ID").
func plainReason(err error) string {
	msg := err.Error()
	for _, c := range checks {
		prefix := c.err.Error() + ": "
		if i := strings.LastIndex(msg, prefix); i >= 0 {
			return upperFirst(apiNames.Replace(msg[i+len(prefix):])) + "."
		}
	}
	return upperFirst(apiNames.Replace(strings.TrimPrefix(msg, "connections: "))) + "."
}

// maxSent bounds what is kept of a response for display.
const maxSent = 32 << 10

// sentBy is what the IdP sent, for a failed test: the SAML response XML,
// or the OIDC callback's parameters (without the code) followed by the
// claims a profile rule refused (raw), which an OIDC callback does not
// carry itself: without them an admin saw only "iss = …".
func sentBy(r *http.Request, raw map[string]any) string {
	if r == nil {
		return ""
	}
	if v := r.PostForm.Get("SAMLResponse"); v != "" {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
		if err != nil {
			return "SAMLResponse (not valid base64): " + truncate(v, 500)
		}
		return truncate(indentXML(b), maxSent)
	}
	q := r.URL.Query()
	var lines []string
	for _, k := range []string{"error", "error_description", "error_uri", "iss"} {
		if v := q.Get(k); v != "" {
			lines = append(lines, k+" = "+truncate(v, 1000))
		}
	}
	if len(raw) > 0 {
		lines = append(lines, "", "Claims (id_token and userinfo):")
		for _, k := range slices.Sorted(maps.Keys(raw)) {
			v, err := json.Marshal(raw[k])
			if err != nil {
				v = []byte(fmt.Sprint(raw[k]))
			}
			lines = append(lines, k+" = "+truncate(string(v), 1000))
		}
	}
	return truncate(strings.Join(lines, "\n"), maxSent)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// indentXML lays out one element per line, for reading; it leaves the
// input as it is when it does not tokenise.
func indentXML(b []byte) string {
	var out bytes.Buffer
	depth := 0
	s := string(b)
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			out.WriteString(s)
			break
		}
		if text := strings.TrimSpace(s[:i]); text != "" {
			out.WriteString(text)
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			out.WriteString(s[i:])
			break
		}
		tag := s[i : i+j+1]
		s = s[i+j+1:]
		closing := strings.HasPrefix(tag, "</")
		selfClosing := strings.HasSuffix(tag, "/>") || strings.HasPrefix(tag, "<?")
		if closing {
			depth = max(depth-1, 0)
		}
		// Keep short text content on the line of its element.
		if !closing || out.Len() == 0 || out.Bytes()[out.Len()-1] == '>' {
			if out.Len() > 0 {
				out.WriteByte('\n')
			}
			out.WriteString(strings.Repeat("  ", depth))
		}
		out.WriteString(tag)
		if !closing && !selfClosing {
			depth++
		}
	}
	return out.String()
}

func jsonMarshal(v any) ([]byte, error)   { return json.Marshal(v) }
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// funcs are the portal's template functions.
var funcs = template.FuncMap{
	"join":          strings.Join,
	"state":         stateLabel,
	"nameID":        func(f string) string { return nameIDWords[f] },
	"nameIDFormats": func() []string { return nameIDFormats },
}

func stateLabel(s string) string {
	return map[string]string{"draft": "Draft", "tested": "Tested", "active": "Active", "inactive": "Off"}[s]
}
