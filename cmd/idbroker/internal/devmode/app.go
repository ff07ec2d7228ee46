package devmode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

const appCookie = "idb_dev_app"

// Mount serves the dev IdP and the demo app on e. Call it only for
// `serve --dev`.
func (d *Dev) Mount(e *echo.Echo) {
	e.GET("/dev/idp/metadata", echo.WrapHandler(http.HandlerFunc(d.idp.idp.ServeMetadata)))
	e.GET("/dev/idp/sso", echo.WrapHandler(http.HandlerFunc(d.idp.idp.ServeSSO)))
	e.POST("/dev/idp/sso", echo.WrapHandler(http.HandlerFunc(d.idp.idp.ServeSSO)))
	e.POST("/dev/idp/login", echo.WrapHandler(http.HandlerFunc(d.idp.login)))
	e.POST("/dev/idp/logout", echo.WrapHandler(http.HandlerFunc(d.idp.logout)))
	e.GET("/dev/app", echo.WrapHandler(http.HandlerFunc(d.appHome)))
	e.GET("/dev/app/login", echo.WrapHandler(http.HandlerFunc(d.appLogin)))
	e.GET("/dev/app/callback", echo.WrapHandler(http.HandlerFunc(d.appCallback)))
	e.POST("/dev/app/backchannel", echo.WrapHandler(http.HandlerFunc(d.appBackchannel)))
	e.POST("/dev/app/deprovision", echo.WrapHandler(http.HandlerFunc(d.appDeprovision)))
	e.POST("/dev/app/reprovision", echo.WrapHandler(http.HandlerFunc(d.appReprovision)))
	e.GET("/dev/app/status", echo.WrapHandler(http.HandlerFunc(d.appStatus)))
}

func (d *Dev) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page's script (the live status) and styles come from /static.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self' "+d.Issuer+"; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (d *Dev) appHome(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"Issuer": d.Issuer, "ClientID": d.AppID, "Users": DevUsers}
	if u := d.appUser(r); u != nil {
		data["Claims"], data["Email"], data["CSRF"], data["Deprovisioned"] = u.Claims, u.Email, u.CSRF, u.Deprovisioned
	}
	d.render(w, http.StatusOK, "app.html", data)
}

// appLogin starts an authorization code flow with PKCE against the broker,
// as any public client would.
func (d *Dev) appLogin(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := secrets.NewToken(""), secrets.NewToken(""), secrets.NewToken("")
	http.SetCookie(w, &http.Cookie{Name: appCookie, Value: state + "." + nonce + "." + verifier, Path: "/dev/app",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {d.AppID}, "redirect_uri": {d.Issuer + "/dev/app/callback"}, "response_type": {"code"},
		"scope": {"openid email profile groups"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if hint := r.URL.Query().Get("login_hint"); hint != "" {
		q.Set("login_hint", hint)
	}
	ep, err := d.endpoints(r.Context())
	if err != nil {
		d.render(w, http.StatusBadGateway, "app.html", map[string]any{"Issuer": d.Issuer, "ClientID": d.AppID, "Users": DevUsers, "Error": err.Error()})
		return
	}
	http.Redirect(w, r, ep.Authorization+"?"+q.Encode(), http.StatusFound)
}

// appCallback redeems the code at the broker's token endpoint and shows
// the id_token's claims.
func (d *Dev) appCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var parts []string // state, nonce, verifier
	if c, err := r.Cookie(appCookie); err == nil {
		parts = strings.Split(c.Value, ".")
	}
	fail := func(msg string) {
		d.render(w, http.StatusBadRequest, "app.html", map[string]any{"Issuer": d.Issuer, "ClientID": d.AppID, "Users": DevUsers, "Error": msg})
	}
	if e := q.Get("error"); e != "" {
		fail(e + ": " + q.Get("error_description"))
		return
	}
	if len(parts) != 3 || q.Get("state") != parts[0] {
		fail("state does not match: start again from Sign in")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: appCookie, Path: "/dev/app", MaxAge: -1})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "client_id": {d.AppID},
		"redirect_uri": {d.Issuer + "/dev/app/callback"}, "code_verifier": {parts[2]}}
	ep, err := d.endpoints(r.Context())
	if err != nil {
		fail(err.Error())
		return
	}
	resp, err := devClient.PostForm(ep.Token, form)
	if err != nil {
		fail("token request: " + err.Error())
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tok struct {
		IDToken     string `json:"id_token"`
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &tok) != nil || tok.IDToken == "" {
		fail("token endpoint answered " + resp.Status + ": " + tok.Error + " " + tok.Description)
		return
	}
	claims, err := jwtClaims(tok.IDToken)
	if err != nil {
		fail(err.Error())
		return
	}
	if claims["nonce"] != parts[1] {
		fail("nonce does not match")
		return
	}
	pretty, _ := json.MarshalIndent(claims, "", "  ")
	// The demo app keeps its user server-side, as a web app would, so
	// that it can show the access token's fate after "Deprovision me".
	u := &appUser{Claims: string(pretty), AccessToken: tok.AccessToken, CSRF: secrets.NewToken("")}
	u.Email, _ = claims["email"].(string)
	u.Sub, _ = claims["sub"].(string)
	u.SID, _ = claims["sid"].(string)
	id := secrets.NewToken("")
	d.demo.mu.Lock()
	d.demo.users[id] = u
	d.demo.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: appSessionCookie, Value: id, Path: "/dev/app", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/dev/app", http.StatusSeeOther)
}

// appSessionCookie names the demo app's own session.
const appSessionCookie = "idb_dev_app_session"

func (d *Dev) appUser(r *http.Request) *appUser {
	c, err := r.Cookie(appSessionCookie)
	if err != nil {
		return nil
	}
	d.demo.mu.Lock()
	defer d.demo.mu.Unlock()
	return d.demo.users[c.Value]
}

// appDeprovision pushes the SCIM deactivation of the signed-in user, as
// the company's IdP would when IT offboards them.
func (d *Dev) appDeprovision(w http.ResponseWriter, r *http.Request) { d.appProvision(w, r, false) }

// appReprovision makes the user active again, so the demo can be replayed.
func (d *Dev) appReprovision(w http.ResponseWriter, r *http.Request) { d.appProvision(w, r, true) }

func (d *Dev) appProvision(w http.ResponseWriter, r *http.Request, active bool) {
	u := d.appUser(r)
	if u == nil || !secrets.Equal([]byte(r.PostFormValue("csrf")), []byte(u.CSRF)) {
		d.render(w, http.StatusForbidden, "app.html", map[string]any{"Issuer": d.Issuer, "ClientID": d.AppID, "Users": DevUsers,
			"Error": "sign in first (the form was not this session's)"})
		return
	}
	if err := d.setActive(r.Context(), u.Email, active); err != nil {
		d.render(w, http.StatusBadGateway, "app.html", map[string]any{"Issuer": d.Issuer, "ClientID": d.AppID, "Users": DevUsers,
			"Claims": u.Claims, "Email": u.Email, "CSRF": u.CSRF, "Error": err.Error()})
		return
	}
	d.demo.mu.Lock()
	u.Deprovisioned = !active
	d.demo.mu.Unlock()
	if active {
		// The old session is over for good: sign in again.
		http.SetCookie(w, &http.Cookie{Name: appSessionCookie, Path: "/dev/app", MaxAge: -1})
	}
	http.Redirect(w, r, "/dev/app", http.StatusSeeOther)
}

// appStatus is what the page polls: is the access token still active at
// the broker, and has the back-channel logout for its session arrived?
func (d *Dev) appStatus(w http.ResponseWriter, r *http.Request) {
	u := d.appUser(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if u == nil {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "not signed in"})
		return
	}
	active, err := d.introspect(r.Context(), u.AccessToken)
	ans := map[string]any{"token_active": active, "sid": u.SID}
	if err != nil {
		ans["error"] = err.Error()
	}
	d.demo.mu.Lock()
	if at, ok := d.demo.logouts[u.SID]; ok {
		ans["backchannel_logout_at"] = at.UTC().Format(time.RFC3339)
	}
	d.demo.mu.Unlock()
	json.NewEncoder(w).Encode(ans)
}

// devClient reaches the broker, which is this very process: the safe
// outbound client would rightly refuse loopback.
var devClient = &http.Client{Timeout: 10 * time.Second}

type endpoints struct {
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	Introspection string `json:"introspection_endpoint"`
	JWKS          string `json:"jwks_uri"`
}

// endpoints reads the broker's discovery document, as a client would.
func (d *Dev) endpoints(ctx context.Context) (endpoints, error) {
	var ep endpoints
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.Issuer+"/.well-known/openid-configuration", nil)
	resp, err := devClient.Do(req)
	if err != nil {
		return ep, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ep); err != nil || ep.Token == "" || ep.Authorization == "" {
		return ep, fmt.Errorf("discovery at %s answered %s without endpoints", d.Issuer, resp.Status)
	}
	return ep, nil
}

// jwtClaims decodes a JWT payload. The id_token came straight from the
// token endpoint over the back channel (OIDC Core 3.1.3.7), and this page
// only displays it.
func jwtClaims(jwt string) (map[string]any, error) {
	p := strings.Split(jwt, ".")
	if len(p) != 3 {
		return nil, errMalformedJWT
	}
	b, err := base64.RawURLEncoding.DecodeString(p[1])
	if err != nil {
		return nil, errMalformedJWT
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errMalformedJWT
	}
	return m, nil
}

var errMalformedJWT = errors.New("id_token is not a JWT")
