package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// signInFailure is one way a sign-in fails, as docs/reference/connections.md
// ("Why a sign-in fails") tabulates it: what the end user is answered (the
// status and the page's title, never the reason), and what the tenant
// admin and the operator are told (reason_code, and a part of the reason:
// the IdP's own words where it sent some). code "" is a failure that is
// nobody's sign-in to record (junk, or the broker's own outage).
type signInFailure struct {
	name   string
	status int
	title  string
	code   string
	has    string
	// shape makes the IdPs answer this way; the test restores them after.
	shape func()
	// drive, when set, runs the sign-in in place of a sign-in through
	// the SAML connection.
	drive func() signInResult
	// last marks a case that breaks the broker (Redis killed): it runs
	// after the others, on the backend that has a Redis.
	last bool
}

// TestSignInFailuresOnEverySurface drives each failure of the table in
// docs/reference/connections.md through real round trips (crewjam/saml's
// IdP and an OpenID Provider shaped like a vendor's, on the real binary,
// on SQLite and on PostgreSQL with Redis), and reads every surface: the end
// user's page (status, title, a reference, no reason, Retry-After on a
// 503), the authentication.failed event under that reference (reason_code
// and reason), the tenant's audit row, the console's support desk looking
// the reference up, the portal's sign-in log, idbroker_sign_in_failures_total
// by reason, and a log that names the reason but holds no assertion or
// secret.
func TestSignInFailuresOnEverySurface(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			// One sign-in of the tenant at a time on the node, so that
			// one held at its IdP fills the tenant's share (the cap's row).
			env := map[string]string{envMasterKey: testMasterKey, envSignInTenant: "1"}
			var redis *sessionstest.Server
			if backend == "sqlite" {
				env[envDatabaseURL] = "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
			} else {
				redis = sessionstest.StartServer(t)
				env[envDatabaseURL] = testdb.PostgresURL(t)
				env[envRedisURL] = redis.URL() + "?dial_timeout=200ms&max_retries=0"
			}
			signInFailuresOn(t, newUpstreamEnv(t, env), redis)
		})
	}
}

func signInFailuresOn(t *testing.T, u *upstream, redis *sessionstest.Server) {
	email := "pat@" + u.domain
	v := newVendorIdP(t)
	saml1 := func(v *vendorIdP) {
		v.signAssertion, v.signResponse, v.mutate, v.mutateResp, v.signer, v.signerCert = true, true, nil, nil, nil, nil
		v.status, v.sigMethod, v.encrypt, v.encryptTo, v.relayState = nil, "", false, nil, nil
		v.nameIDFormat, v.nameID, v.attrs = string(saml.PersistentNameIDFormat), "00u1pat", []saml.Attribute{strAttr("email", email)}
	}
	v.set(saml1)
	sc := u.samlConnection(v, map[string]any{"encrypt_assertions": true})
	op := newVendorOP(t, "/oauth2/default")
	oidc1 := func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u1pat", "email": email, "email_verified": true}
		op.authorizeError, op.tokenStatus, op.jwksStatus = "", 0, 0
	}
	op.set(oidc1)
	oc := u.oidcConnection(op, nil)
	// An OIDC connection whose IdP's keys were never read: its JWKS down
	// fails the first sign-in (the other connection's are cached).
	cold := newVendorOP(t, "/")
	cold.set(oidc1)
	coldConn := u.oidcConnection(cold, nil)
	cold.set(func(op *vendorOP) { op.jwksStatus = http.StatusServiceUnavailable })
	// An IdP whose only certificate has expired.
	old := newVendorIdP(t)
	old.set(func(o *vendorIdP) {
		saml1(o)
		o.cert = newCert(t, o.key, "expired idp", time.Now().AddDate(-1, 0, 0), time.Now().AddDate(0, 0, -3))
		o.idp.Certificate = o.cert
	})
	oldConn := u.samlConnection(old, nil)
	for _, conn := range []string{sc, oc} {
		u.mustSignIn(conn) // the setting is right: what fails below is the case
	}
	var dir scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	gone := "gone@" + u.domain
	if r := dir.pushUser(t, u.b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+gone+`","active":false,`+
		`"emails":[{"value":"`+gone+`","primary":true}]}`); r.status != http.StatusCreated {
		t.Fatalf("push a deactivated user: %d %s", r.status, r.raw)
	}
	other := newRSAKey(t)
	otherCert := newCert(t, other, "other", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	patch := func(path string, body map[string]any) {
		if code := u.b.do("PATCH", path, e2eBootstrapKey, body, nil); code != http.StatusOK {
			t.Errorf("PATCH %s %v = %d", path, body, code)
		}
	}
	callback := u.b.base + "/sso/oidc/" + oc + "/callback"
	operator, _ := consoleSession(t, u.b)
	var samlResponses []string // what the log must not hold

	const (
		failed      = "Sign-in failed"
		unavailable = "Sign-in unavailable"
		expired     = "Sign-in expired"
	)
	cases := []signInFailure{
		// SAML: the answer does not verify.
		{name: "SAML signed with an untrusted key", status: 403, title: failed, code: "signature_invalid", has: "signature",
			shape: func() { v.set(func(v *vendorIdP) { v.signer, v.signerCert = other, otherCert }) }},
		{name: "SAML unsigned", status: 403, title: failed, code: "signature_invalid", has: "unsigned",
			shape: func() { v.set(func(v *vendorIdP) { v.signAssertion, v.signResponse = false, false }) }},
		{name: "SAML signed with SHA-1", status: 403, title: failed, code: "signature_invalid", has: "SHA-1",
			shape: func() { v.set(func(v *vendorIdP) { v.sigMethod = dsig.RSASHA1SignatureMethod }) }},
		{name: "SAML IdP certificate expired", status: 403, title: failed, code: "signature_invalid", has: "has expired",
			drive: func() signInResult { return u.signIn(oldConn, nil) }},
		{name: "SAML assertion expired", status: 403, title: failed, code: "response_expired", has: "NotOnOrAfter",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
						a.Conditions.NotOnOrAfter = time.Now().Add(-5 * time.Minute)
					}
				})
			}},
		{name: "SAML assertion not yet valid", status: 403, title: failed, code: "response_not_yet_valid", has: "NotBefore",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
						a.Conditions.NotBefore = time.Now().Add(10 * time.Minute)
					}
				})
			}},
		{name: "SAML audience of another SP", status: 403, title: failed, code: "audience_mismatch", has: "other-sp.example",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
						a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other-sp.example"
					}
				})
			}},
		{name: "SAML Destination of another SP", status: 403, title: failed, code: "destination_mismatch", has: "other-sp.example/acs",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutateResp = func(r *saml.Response) { r.Destination = "https://other-sp.example/acs" }
				})
			}},
		{name: "SAML Recipient of another SP", status: 403, title: failed, code: "destination_mismatch", has: "Recipient",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
						a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = "https://other-sp.example/acs"
					}
				})
			}},
		{name: "SAML InResponseTo unknown", status: 403, title: failed, code: "request_mismatch", has: "InResponseTo",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutateResp = func(r *saml.Response) { r.InResponseTo = "id-another" }
					v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
						a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-another"
					}
				})
			}},
		// The sign-in it answered is spent, and the same response posted
		// again is a replay, as an IdP-initiated assertion's is, not a
		// sign-in that does not match.
		{name: "SAML response replayed", status: 403, title: failed, code: "replay", has: "was already used",
			drive: func() signInResult {
				first := u.signIn(sc, nil)
				if first.code == "" {
					t.Fatalf("the sign-in to replay failed: %d", first.status)
				}
				return u.post(first.acs, first.acsForm)
			}},
		{name: "SAML IdP-initiated, not allowed", status: 403, title: failed, code: "idp_initiated_not_allowed", has: "IdP's dashboard",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutateResp = func(r *saml.Response) { r.InResponseTo = "" }
					v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
						a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = ""
					}
					v.relayState = func(string) string { return "" }
				})
			}},
		{name: "SAML IdP says Responder/AuthnFailed", status: 403, title: failed, code: "idp_error", has: "AuthnFailed",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.status = samlError(saml.StatusResponder, saml.StatusAuthnFailed, "MFA was not completed")
				})
			}},
		{name: "SAML IdP says Requester/RequestDenied", status: 403, title: failed, code: "idp_error", has: "User is not assigned to this application",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.status = samlError(saml.StatusRequester, saml.StatusRequestDenied, "User is not assigned to this application")
				})
			}},
		{name: "SAML without an email", status: 403, title: failed, code: "profile_not_acceptable", has: "no email",
			shape: func() { v.set(func(v *vendorIdP) { v.attrs = nil }) }},
		{name: "SAML email in a domain not verified", status: 403, title: failed, code: "email_domain_not_allowed", has: "unverified.example",
			shape: func() {
				v.set(func(v *vendorIdP) { v.attrs = []saml.Attribute{strAttr("email", "pat@unverified.example")} })
			}},
		{name: "SAML assertion encrypted to another key", status: 403, title: failed, code: "malformed_response", has: "decrypt",
			shape: func() { v.set(func(v *vendorIdP) { v.encrypt, v.encryptTo = true, otherCert }) }},
		// Either protocol: the broker's state changed while the user was
		// at the IdP.
		{name: "connection deactivated mid-flight", status: 403, title: "Single sign-on disabled", code: "connection_inactive", has: "not active",
			shape: func() {
				v.set(func(v *vendorIdP) {
					v.mutate = func(*saml.IdpAuthnRequest, *saml.Assertion) {
						patch("/api/v1/connections/"+sc, map[string]any{"status": "inactive"})
					}
				})
			}},
		{name: "tenant paused mid-flight", status: 403, title: "Organisation not active", code: "tenant_inactive", has: "paused",
			shape: func() {
				op.set(func(op *vendorOP) {
					op.tokenHold = func() { patch("/api/v1/tenants/"+u.tenantID, map[string]any{"status": "paused"}) }
				})
			},
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "user deactivated by SCIM", status: 403, title: failed, code: "user_deactivated", has: "deactivated",
			shape: func() {
				v.set(func(v *vendorIdP) { v.nameID, v.attrs = "00u1gone", []saml.Attribute{strAttr("email", gone)} })
			}},
		{name: "not provisioned by the tenant's directory", status: 403, title: failed, code: "user_not_provisioned", has: "directory_users",
			shape: func() {
				patch("/api/v1/tenants/"+u.tenantID, map[string]any{"sign_in_policy": "directory_users"})
				v.set(func(v *vendorIdP) {
					v.nameID, v.attrs = "00u1contractor", []saml.Attribute{strAttr("email", "contractor@"+u.domain)}
				})
			}},
		// OIDC.
		{name: "OIDC error=access_denied", status: 403, title: failed, code: "idp_error", has: "access_denied",
			shape: func() { op.set(func(op *vendorOP) { op.authorizeError = "access_denied" }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC state unknown or expired", status: 400, title: expired,
			drive: func() signInResult { return u.get(callback + "?state=" + randomHex(t, 16) + "&code=abc") }},
		{name: "OIDC nonce of another request", status: 403, title: failed, code: "request_mismatch", has: "nonce",
			shape: func() { op.set(func(op *vendorOP) { op.claims["nonce"] = "another" }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC id_token of another issuer", status: 403, title: failed, code: "issuer_mismatch", has: "other-idp.example",
			shape: func() { op.set(func(op *vendorOP) { op.claims["iss"] = "https://other-idp.example" }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC id_token for another client", status: 403, title: failed, code: "audience_mismatch", has: `(aud) was "another-client", expected it to include the connection's client_id "client-1"`,
			shape: func() { op.set(func(op *vendorOP) { op.claims["aud"] = "another-client" }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC id_token without sub", status: 403, title: failed, code: "profile_not_acceptable", has: "the id_token has no subject (sub)",
			shape: func() { op.set(func(op *vendorOP) { delete(op.claims, "sub") }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC id_token without iat", status: 403, title: failed, code: "malformed_response", has: "the id_token has no issued-at time (iat)",
			shape: func() { op.set(func(op *vendorOP) { op.claims["iat"] = nil }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC email_verified false", status: 403, title: failed, code: "profile_not_acceptable", has: "is not verified",
			shape: func() { op.set(func(op *vendorOP) { op.claims["email_verified"] = false }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC token endpoint answers 500", status: 503, title: unavailable, code: "upstream_unavailable", has: "/token",
			shape: func() { op.set(func(op *vendorOP) { op.tokenStatus = http.StatusInternalServerError }) },
			drive: func() signInResult { return u.signIn(oc, nil) }},
		{name: "OIDC JWKS unreachable", status: 503, title: unavailable, code: "upstream_unavailable", has: "JWKS",
			drive: func() signInResult { return u.signIn(coldConn, nil) }},
		// The tenant's one place on the node is held by a sign-in at its
		// IdP's token endpoint: the next answer waits a second, then is
		// left unread (429, nothing recorded), and finishes when posted
		// again once the place is free.
		{name: "the tenant's sign-ins at their cap", status: 429, title: "Sign-in busy",
			drive: func() signInResult {
				entered, release := make(chan struct{}, 1), make(chan struct{})
				var once sync.Once
				free := func() { once.Do(func() { close(release) }) }
				defer free()
				op.set(func(op *vendorOP) { op.tokenHold = func() { entered <- struct{}{}; <-release } })
				held, done := newOIDCBrowser(t), make(chan browserAt, 1)
				go func() { done <- held.get(u.authorizeURL(oc)) }()
				select {
				case <-entered:
				case at := <-done:
					t.Errorf("the sign-in to hold ended at %d before its IdP answered", at.status)
					return signInResult{status: at.status, page: at.page}
				}
				res := u.signIn(sc, nil)
				free()
				if at := <-done; at.code == "" {
					t.Errorf("the held sign-in, freed: %d\n%s", at.status, at.page)
				}
				if res.status == http.StatusTooManyRequests {
					if again := u.post(res.acs, res.acsForm); again.code == "" {
						t.Errorf("the refused answer posted again: %d\n%s", again.status, again.page)
					}
				}
				return res
			}},
		// The broker's own outage: nobody's failed sign-in.
		{name: "Redis down", status: 503, title: unavailable, last: true,
			shape: func() {
				v.set(func(v *vendorIdP) { v.mutate = func(*saml.IdpAuthnRequest, *saml.Assertion) { redis.Kill() } })
			}},
	}
	counts := map[string]int{}
	refs := map[string]string{} // reference → reason_code
	run := func(last bool) {
		for _, tt := range cases {
			if tt.last != last || tt.last && redis == nil {
				continue
			}
			t.Run(tt.name, func(t *testing.T) {
				u := u.with(t)
				defer func() {
					v.set(saml1)
					op.set(func(op *vendorOP) { oidc1(op); op.tokenHold = nil })
					patch("/api/v1/connections/"+sc, map[string]any{"status": "active"})
					patch("/api/v1/tenants/"+u.tenantID, map[string]any{"status": "active", "sign_in_policy": "any"})
				}()
				if tt.shape != nil {
					tt.shape()
				}
				var res signInResult
				if tt.drive != nil {
					res = tt.drive()
				} else {
					res = u.signIn(sc, nil)
				}
				if f := res.acsForm.Get("SAMLResponse"); f != "" {
					samlResponses = append(samlResponses, f)
				}
				m := referenceRE.FindStringSubmatch(res.page)
				if res.code != "" || res.status != tt.status || m == nil || !strings.Contains(res.page, "<h1>"+tt.title+"</h1>") {
					t.Fatalf("answered %d (code %q), want %d %q with a reference:\n%s", res.status, res.code, tt.status, tt.title, res.page)
				}
				ref := m[1]
				if (res.status == http.StatusServiceUnavailable || res.status == http.StatusTooManyRequests) != (res.retryAfter != "") {
					t.Errorf("status %d with Retry-After %q", res.status, res.retryAfter)
				}
				if tt.code != "" && strings.Contains(res.page, tt.code) || tt.has != "" && strings.Contains(res.page, html.EscapeString(tt.has)) {
					t.Errorf("the end user's page says why:\n%s", res.page)
				}
				ev := u.failureUnder(ref)
				if tt.code == "" {
					if ev != nil {
						t.Errorf("recorded as a failed sign-in: %v", ev)
					}
					return
				}
				counts[tt.code]++
				refs[ref] = tt.code
				reason, _ := ev["reason"].(string)
				if ev == nil || ev["reason_code"] != tt.code || !strings.Contains(reason, tt.has) {
					t.Fatalf("authentication.failed under %s: %v; want %s naming %q", ref, ev, tt.code, tt.has)
				}
				if row := u.auditUnder(ref); !strings.Contains(row, `"reason_code":"`+tt.code+`"`) {
					t.Errorf("audit row under %s: %s", ref, row)
				}
				page, _ := pageReader(t)(operator.Get(u.b.base + "/console/support?q=" + url.QueryEscape(ref)))
				if !strings.Contains(page, tt.code) || !strings.Contains(page, html.EscapeString(tt.has)) {
					t.Errorf("the console's support desk, for %s, does not say %s %q:\n%s", ref, tt.code, tt.has, grepLines(page, "reason"))
				}
			})
		}
	}
	run(false)
	if t.Failed() {
		return
	}
	// The portal's sign-in log, as the tenant admin reads it.
	var link struct {
		URL string `json:"url"`
	}
	if code := u.b.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": u.tenantID, "intent": "sso"}, &link); code != http.StatusCreated {
		t.Fatalf("POST /portal_links = %d", code)
	}
	jar, _ := cookiejar.New(nil)
	admin := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	pageReader(t)(admin.Get(link.URL))
	csv, _ := pageReader(t)(admin.Get(u.b.base + "/portal/logs?tab=signins&action=failed&format=csv"))
	for code := range counts {
		if !regexp.MustCompile(`,Failed,"?` + code + `: `).MatchString(csv) {
			t.Errorf("the portal's sign-in log has no %s:\n%s", code, csv)
		}
	}
	run(true)
	metrics := scrapeText(t, u.b)
	for code, n := range counts {
		m := regexp.MustCompile(`idbroker_sign_in_failures_total\{reason="` + code + `"\} (\d+)`).FindStringSubmatch(metrics)
		if m == nil || m[1] != fmt.Sprint(n) {
			t.Errorf("idbroker_sign_in_failures_total{reason=%q} is %v, want %d", code, m, n)
		}
	}
	if !strings.Contains(metrics, `idbroker_rate_limited_total{surface="signin_tenant"} 1`) {
		t.Errorf("the answer refused at the cap is not counted:\n%s", grepLines(metrics, "rate_limited"))
	}
	if !strings.Contains(metrics, `idbroker_sso_unverified_total{reason="unknown_state"} 1`) {
		t.Errorf("the unknown state is not counted:\n%s", grepLines(metrics, "sso_unverified"))
	}
	u.b.stop()
	out := u.b.output.String()
	for ref, code := range refs {
		if !regexp.MustCompile(`msg="broker: login failed" .*reason_code=` + code + ` .*reference=` + ref).MatchString(out) {
			t.Errorf("no log line of %s under %s", code, ref)
		}
	}
	for _, secret := range append(samlResponses, op.secret, "<saml", "Assertion>", "SAMLResponse=") {
		if len(secret) > 80 {
			secret = secret[:80]
		}
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// samlError is the Status of an IdP that refused a sign-in, with its
// second-level code and message.
func samlError(top, second, msg string) *saml.Status {
	return &saml.Status{StatusCode: saml.StatusCode{Value: top, StatusCode: &saml.StatusCode{Value: second}},
		StatusMessage: &saml.StatusMessage{Value: msg}}
}

// get is a fresh browser's GET of rawURL (a callback opened from a link),
// up to the broker's answer.
func (u *upstream) get(rawURL string) signInResult {
	u.t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		u.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return signInResult{status: resp.StatusCode, page: string(raw), retryAfter: resp.Header.Get("Retry-After")}
}

// failureUnder is the data of the tenant's authentication.failed event
// recorded under reference ref (the error page's), nil when there is none.
func (u *upstream) failureUnder(ref string) map[string]any {
	u.t.Helper()
	var evs struct {
		Data []struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	if code := u.b.do("GET", "/api/v1/events?tenant_id="+u.tenantID+"&limit=100", e2eBootstrapKey, nil, &evs); code != http.StatusOK {
		u.t.Fatalf("events: %d", code)
	}
	for _, e := range evs.Data {
		if e.Type == "authentication.failed" && e.Data["request_id"] == ref {
			return e.Data
		}
	}
	return nil
}

// auditUnder is the tenant's audit row of request ref, as JSON ("" when
// there is none).
func (u *upstream) auditUnder(ref string) string {
	u.t.Helper()
	var rows struct {
		Data []json.RawMessage `json:"data"`
	}
	if code := u.b.do("GET", "/api/v1/audit_events?tenant_id="+u.tenantID+"&action=authentication.failed&limit=100", e2eBootstrapKey, nil, &rows); code != http.StatusOK {
		u.t.Fatalf("audit: %d", code)
	}
	for _, r := range rows.Data {
		if strings.Contains(string(r), `"`+ref+`"`) {
			return string(r)
		}
	}
	return ""
}
