package devmode

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// The deprovisioning demo: the signed-in user presses "Deprovision me", the
// demo app pushes the SCIM deactivation an IdP would (Okta, Entra), and its
// page shows, live, the access token turning inactive at the introspection
// endpoint and the back-channel logout arriving.
//
//	/dev/app ──SCIM PATCH active:false──▶ scim ──▶ sessions.RevokeUser
//	   ▲  ▲                                             │
//	   │  └──POST logout_token (back-channel)── broker ◀┘
//	   └──introspect: active false──────────── broker

// Names of what the demo seeds beside the tenant.
const (
	// APIName is a confidential client the demo app introspects with:
	// public clients (the demo app) cannot.
	APIName       = "Dev demo API (introspection)"
	DirectoryName = "Dev directory (SCIM)"
)

// demo holds the demo's credentials, derived from the dev IdP's key so
// that they survive restarts without being stored anywhere, and the demo
// app's signed-in users.
type demo struct {
	key       *rsa.PrivateKey
	apiID     string
	apiSecret string
	dirID     string
	dirToken  string

	mu       sync.Mutex
	users    map[string]*appUser  // by the demo app's cookie
	logouts  map[string]time.Time // back-channel logouts received, by sid
	jwks     *jose.JSONWebKeySet
	jwksTime time.Time
}

// appUser is one signed-in user of the demo app.
type appUser struct {
	Email, Sub, SID, AccessToken, CSRF string
	Claims                             string
	Deprovisioned                      bool
}

func (d *Dev) backchannelURI() string { return d.Issuer + "/dev/app/backchannel" }

// derive returns a secret for purpose, stable for as long as the dev IdP's
// key is (it is kept sealed with the connection).
func (d *Dev) derive(prefix, purpose string) string {
	der, _ := x509.MarshalPKCS8PrivateKey(d.demo.key)
	m := hmac.New(sha256.New, der)
	m.Write([]byte("idbroker dev demo\x00" + purpose))
	return prefix + "_" + hex.EncodeToString(m.Sum(nil))
}

// seedDemo makes sure of the introspecting client and the SCIM directory,
// with the derived secrets.
func (d *Dev) seedDemo(ctx, tctx context.Context) error {
	d.demo.users = map[string]*appUser{}
	d.demo.logouts = map[string]time.Time{}
	d.demo.apiSecret = d.derive("idb_dev_api", "introspection client secret")
	sum := sha256.Sum256([]byte(d.demo.apiSecret))
	after := ""
	for d.demo.apiID == "" {
		apps, next, err := d.st.ListApplications(ctx, store.Page{Limit: 100, After: after})
		if err != nil {
			return fmt.Errorf("devmode: list applications: %w", err)
		}
		for _, a := range apps {
			if a.Name != APIName {
				continue
			}
			if !a.Public && secrets.Equal(a.SecretHash, sum[:]) {
				d.demo.apiID = a.ID
				break
			}
			// From a dev IdP key of an earlier database: replace it.
			if err := d.st.DeleteApplication(ctx, a.ID); err != nil {
				return fmt.Errorf("devmode: delete stale %s: %w", APIName, err)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if d.demo.apiID == "" {
		a, err := d.st.CreateApplication(ctx, store.Application{Name: APIName, SecretHash: sum[:],
			RedirectURIs: []string{d.Issuer + "/dev/app/unused"}, IDTokenSigningAlg: "RS256"})
		if err != nil {
			return fmt.Errorf("devmode: create %s: %w", APIName, err)
		}
		d.demo.apiID = a.ID
	}

	d.demo.dirToken = d.derive("idb_scim", "directory token")
	dirs, err := d.st.Directories(tctx)
	if err != nil {
		return fmt.Errorf("devmode: list directories: %w", err)
	}
	for _, dir := range dirs {
		if dir.Name == DirectoryName {
			d.demo.dirID = dir.ID
		}
	}
	if d.demo.dirID == "" {
		dir, err := d.st.CreateDirectory(tctx, store.Directory{Name: DirectoryName, TokenHash: secrets.HashToken(d.demo.dirToken)})
		if err != nil {
			return fmt.Errorf("devmode: create directory: %w", err)
		}
		d.demo.dirID = dir.ID
		return nil
	}
	if err := d.st.SetDirectoryToken(tctx, d.demo.dirID, secrets.HashToken(d.demo.dirToken)); err != nil {
		return fmt.Errorf("devmode: set directory token: %w", err)
	}
	return nil
}

// scim calls the broker's SCIM server as the demo directory, as an IdP's
// provisioning agent would.
func (d *Dev) scim(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.Issuer+"/scim/v2/"+d.demo.dirID+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+d.demo.dirToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := devClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("SCIM %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("SCIM %s %s answered %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("SCIM %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// setActive provisions email in the demo directory if it is not there yet
// (the SCIM user adopts the user SSO created, so it is the same usr_ id)
// and sets its active flag, which for false ends all its sessions.
func (d *Dev) setActive(ctx context.Context, email string, active bool) error {
	var found struct {
		Resources []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	filter := url.Values{"filter": {`userName eq "` + email + `"`}}.Encode()
	if _, err := d.scim(ctx, http.MethodGet, "/Users?"+filter, nil, &found); err != nil {
		return err
	}
	id := ""
	if len(found.Resources) > 0 {
		id = found.Resources[0].ID
	} else {
		// The dev IdP's own name for its users, so that the SCIM user the
		// directory creates (and SSO then reads) is still "Alice Anderson".
		given, _, _ := strings.Cut(email, "@")
		family := "Example"
		for _, u := range DevUsers {
			if u.Email == email {
				given, family = u.Given, u.Family
			}
		}
		var created struct {
			ID string `json:"id"`
		}
		_, err := d.scim(ctx, http.MethodPost, "/Users", map[string]any{
			"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": email,
			"name":     map[string]string{"givenName": given, "familyName": family},
			"emails":   []map[string]any{{"value": email, "primary": true, "type": "work"}},
			"active":   true,
		}, &created)
		if err != nil {
			return err
		}
		id = created.ID
	}
	_, err := d.scim(ctx, http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": active}}},
	}, nil)
	return err
}

// RestoreDemoUsers re-provisions the dev IdP's users that the demo directory
// left deactivated, and returns their emails. "Deprovision me" is undone
// only by the button on the same page, in the same demo-app session, and
// that session lives in this process: a developer who signed out, closed
// the tab or restarted would otherwise find alice@example.com refused for
// good. serve --dev calls it once it is listening (it goes through the
// broker's own SCIM endpoint, as the button does), as it restores a
// deleted demo tenant.
func (d *Dev) RestoreDemoUsers(ctx context.Context) ([]string, error) {
	var restored []string
	for _, u := range DevUsers {
		var found struct {
			Resources []struct {
				Active bool `json:"active"`
			} `json:"Resources"`
		}
		filter := url.Values{"filter": {`userName eq "` + u.Email + `"`}}.Encode()
		if _, err := d.scim(ctx, http.MethodGet, "/Users?"+filter, nil, &found); err != nil {
			return restored, err
		}
		if len(found.Resources) == 0 || found.Resources[0].Active {
			continue
		}
		if err := d.setActive(ctx, u.Email, true); err != nil {
			return restored, err
		}
		restored = append(restored, u.Email)
	}
	return restored, nil
}

// introspect asks the broker whether token is active, as the demo API.
func (d *Dev) introspect(ctx context.Context, token string) (bool, error) {
	ep, err := d.endpoints(ctx)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.Introspection, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return false, err
	}
	req.SetBasicAuth(url.QueryEscape(d.demo.apiID), url.QueryEscape(d.demo.apiSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := devClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("introspect: %w", err)
	}
	defer resp.Body.Close()
	var ans struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("introspection answered %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans); err != nil {
		return false, fmt.Errorf("introspect: %w", err)
	}
	return ans.Active, nil
}

// appBackchannel receives the broker's logout tokens (OpenID Back-Channel
// Logout 1.0): signature checked against the broker's JWKS, then issuer,
// audience and event; the session it ends is remembered for the page.
func (d *Dev) appBackchannel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a logout_token", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	claims, err := d.verifyLogoutToken(r.Context(), r.PostFormValue("logout_token"))
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	d.demo.mu.Lock()
	d.demo.logouts[claims.SID] = time.Now()
	d.demo.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

type logoutClaims struct {
	Iss    string         `json:"iss"`
	Aud    any            `json:"aud"`
	SID    string         `json:"sid"`
	Sub    string         `json:"sub"`
	Events map[string]any `json:"events"`
	Nonce  *string        `json:"nonce"`
}

func (d *Dev) verifyLogoutToken(ctx context.Context, tok string) (logoutClaims, error) {
	var c logoutClaims
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return c, errors.New("logout_token is not a signed JWT")
	}
	keys, err := d.jwks(ctx, false)
	if err != nil {
		return c, err
	}
	kid := jws.Signatures[0].Header.KeyID
	ks := keys.Key(kid)
	if len(ks) == 0 { // a key rotated in since the last fetch
		if keys, err = d.jwks(ctx, true); err != nil {
			return c, err
		}
		ks = keys.Key(kid)
	}
	if len(ks) == 0 {
		return c, errors.New("logout_token signed by an unknown key")
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		return c, errors.New("logout_token signature does not verify")
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, errors.New("logout_token claims are not JSON")
	}
	aud := fmt.Sprint(c.Aud)
	if c.Iss != d.Issuer || !strings.Contains(aud, d.AppID) || c.SID == "" || c.Nonce != nil ||
		c.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
		return c, errors.New("logout_token is not a back-channel logout for this app")
	}
	return c, nil
}

// jwks returns the broker's signing keys, fetched again when refresh is
// set (at most every few seconds).
func (d *Dev) jwks(ctx context.Context, refresh bool) (*jose.JSONWebKeySet, error) {
	d.demo.mu.Lock()
	keys, at := d.demo.jwks, d.demo.jwksTime
	d.demo.mu.Unlock()
	if keys != nil && (!refresh || time.Since(at) < 5*time.Second) {
		return keys, nil
	}
	ep, err := d.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.JWKS, nil)
	if err != nil {
		return nil, err
	}
	resp, err := devClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	d.demo.mu.Lock()
	d.demo.jwks, d.demo.jwksTime = &set, time.Now()
	d.demo.mu.Unlock()
	return &set, nil
}
