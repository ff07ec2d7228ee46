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
}

func (d *Dev) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (d *Dev) appHome(w http.ResponseWriter, r *http.Request) {
	d.render(w, http.StatusOK, "app.html", map[string]any{"Issuer": d.Issuer, "ClientID": d.AppID, "Users": DevUsers})
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
	d.render(w, http.StatusOK, "app.html", map[string]any{"Issuer": d.Issuer, "ClientID": d.AppID, "Users": DevUsers,
		"Claims": string(pretty), "Email": claims["email"]})
}

// devClient reaches the broker, which is this very process: the safe
// outbound client would rightly refuse loopback.
var devClient = &http.Client{Timeout: 10 * time.Second}

type endpoints struct {
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
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
