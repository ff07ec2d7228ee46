package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// traceOP is the smallest OpenID Provider a real OIDC connection signs in
// through: discovery, JWKS, an authorize endpoint that signs bob in at
// once, and a token endpoint that remembers the traceparent it was sent.
type traceOP struct {
	*httptest.Server
	mu          sync.Mutex
	nonces      map[string]string // code → nonce
	traceparent string            // of the last token request
}

func newTraceOP(t *testing.T, clientID, secret string) *traceOP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	op := &traceOP{nonces: map[string]string{}}
	mux := http.NewServeMux()
	op.Server = httptest.NewServer(mux)
	t.Cleanup(op.Close)
	iss := op.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"jwks_uri": iss + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
			"code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := randomHex(t, 16)
		op.mu.Lock()
		op.nonces[code] = q.Get("nonce")
		op.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, sec, ok := r.BasicAuth()
		if !ok {
			id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		op.mu.Lock()
		nonce, found := op.nonces[r.PostForm.Get("code")]
		delete(op.nonces, r.PostForm.Get("code"))
		op.traceparent = r.Header.Get("Traceparent")
		op.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !found || id != clientID || sec != secret {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		idt, err := jwt.Signed(signer).Claims(map[string]any{
			"iss": iss, "sub": "bob-1", "aud": clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"nonce": nonce, "email": "bob@acme.example", "email_verified": true,
		}).Serialize()
		if err != nil {
			t.Error(err)
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + randomHex(t, 8), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
	})
	return op
}

// TestOIDCSignInTrace: a real sign-in through the OIDC connector, against
// an OpenID Provider the test runs, reaches the OTLP receiver with the
// same shape as a SAML one (authorize → sso.upstream → sso.complete, in
// the trace the caller's traceparent began), and the connector's
// back-channel token exchange is a client span where it happens: under
// the callback request's span, which sso.upstream links to (the callback
// learns which sign-in it finishes only from the exchanged state, so the
// exchange runs before the sign-in's trace is known). sso.upstream's time
// covers the exchange all the same. The IdP is sent the client span's
// traceparent.
func TestOIDCSignInTrace(t *testing.T) {
	t.Parallel()
	rcv := newOTLPReceiver(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL:                "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey:            e2eBootstrapKey,
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100", // ms: export soon, for the test
	}, "--dev")
	op := newTraceOP(t, "client-1", "s3cret")

	var tenant, conn, app map[string]any
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d %v", code, tenant)
	}
	tenantID, _ := tenant["id"].(string)
	if code := b.do("POST", "/api/v1/tenants/"+tenantID+"/domains", e2eBootstrapKey,
		map[string]any{"domain": "acme.example", "verified": true}, nil); code != http.StatusCreated {
		t.Fatalf("POST domain = %d", code)
	}
	if code := b.do("POST", "/api/v1/tenants/"+tenantID+"/connections", e2eBootstrapKey, map[string]any{
		"type": "oidc", "name": "Acme OIDC",
		"oidc": map[string]any{"issuer": op.URL, "client_id": "client-1", "client_secret": "s3cret"},
	}, &conn); code != http.StatusCreated {
		t.Fatalf("POST connection = %d %v", code, conn)
	}
	connID, _ := conn["id"].(string)
	if code := b.do("PATCH", "/api/v1/connections/"+connID, e2eBootstrapKey, map[string]any{"status": "active"}, nil); code != http.StatusOK {
		t.Fatalf("activate connection = %d", code)
	}
	if code := b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{
		"name": "Traced", "redirect_uris": []string{"https://app.example/cb"},
	}, &app); code != http.StatusCreated {
		t.Fatalf("POST /applications = %d %v", code, app)
	}
	clientID, _ := app["client_id"].(string)
	secret, _ := app["client_secret"].(string)

	// The browser: /authorize with the caller's traceparent, the email
	// page if asked, the OP (which signs bob in at once), the callback,
	// and the redirect to the application with its code.
	const traceID, callerSpan = "5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b8"
	jar, _ := cookiejar.New(nil)
	var code string
	br := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		// A browser sends no traceparent of its own; Go's client would
		// copy the first request's onto each redirect.
		r.Header.Del("Traceparent")
		if r.URL.Host == "app.example" {
			code = r.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q := url.Values{"client_id": {clientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st8"}, "nonce": {"n0nce"}, "login_hint": {"bob@acme.example"}}
	req, _ := http.NewRequest("GET", b.base+"/authorize?"+q.Encode(), nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	resp, err := br.Do(req)
	for step := 0; code == "" && step < 3; step++ {
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(raw)
		m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page)
		a := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)
		if m == nil || a == nil {
			t.Fatalf("sign-in stuck at %s (%d):\n%s", resp.Request.URL, resp.StatusCode, page)
		}
		action, _ := resp.Request.URL.Parse(html.UnescapeString(a[1]))
		resp, err = br.PostForm(action.String(), url.Values{"id": {html.UnescapeString(m[1])}, "email": {"bob@acme.example"}})
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code == "" {
		t.Fatalf("no code; last answer %d at %s", resp.StatusCode, resp.Request.URL)
	}
	tok, _ := http.NewRequest("POST", b.base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {"https://app.example/cb"}}.Encode()))
	tok.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tok.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	if resp, err := b.client.Do(tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("code exchange: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	authorize := rcv.span(t, "GET /authorize")
	upstream := rcv.span(t, "sso.upstream")
	complete := rcv.span(t, "sso.complete")
	callback := rcv.span(t, "GET /sso/oidc/:conn/callback")
	exchange := rcv.span(t, "POST "+strings.TrimPrefix(op.URL, "http://"))
	token := rcv.span(t, "POST /oauth/token")

	id := func(b []byte) string { return hex.EncodeToString(b) }
	if id(authorize.TraceId) != traceID || id(authorize.ParentSpanId) != callerSpan {
		t.Errorf("authorize span: trace %s parent %s; want the caller's traceparent continued", id(authorize.TraceId), id(authorize.ParentSpanId))
	}
	if id(upstream.TraceId) != traceID || !bytes.Equal(upstream.ParentSpanId, authorize.SpanId) {
		t.Errorf("sso.upstream is not the authorize span's child: trace %s parent %s", id(upstream.TraceId), id(upstream.ParentSpanId))
	}
	if id(complete.TraceId) != traceID || !bytes.Equal(complete.ParentSpanId, upstream.SpanId) {
		t.Errorf("sso.complete is not sso.upstream's child: trace %s parent %s", id(complete.TraceId), id(complete.ParentSpanId))
	}
	if len(upstream.Links) != 1 || !bytes.Equal(upstream.Links[0].SpanId, callback.SpanId) {
		t.Errorf("sso.upstream links %v, want the callback request's span", upstream.Links)
	}
	// The token exchange: a client span under the callback's span, within
	// sso.upstream's time, and the traceparent the OP was sent names it.
	if exchange.Kind != tracepb.Span_SPAN_KIND_CLIENT || !bytes.Equal(exchange.TraceId, callback.TraceId) ||
		!bytes.Equal(exchange.ParentSpanId, callback.SpanId) {
		t.Errorf("token exchange span: kind %v trace %s parent %s; want a client span under the callback (%s)",
			exchange.Kind, id(exchange.TraceId), id(exchange.ParentSpanId), id(callback.SpanId))
	}
	if exchange.StartTimeUnixNano < upstream.StartTimeUnixNano || exchange.EndTimeUnixNano > upstream.EndTimeUnixNano {
		t.Errorf("token exchange runs %d..%d, outside sso.upstream %d..%d",
			exchange.StartTimeUnixNano, exchange.EndTimeUnixNano, upstream.StartTimeUnixNano, upstream.EndTimeUnixNano)
	}
	op.mu.Lock()
	sent := op.traceparent
	op.mu.Unlock()
	if want := "00-" + id(exchange.TraceId) + "-" + id(exchange.SpanId) + "-01"; sent != want {
		t.Errorf("the OP was sent traceparent %q, want %q", sent, want)
	}
	for _, s := range []*tracepb.Span{upstream, complete, callback, token} {
		want := map[string]string{"tenant.id": tenantID, "client.id": clientID, "connection.id": connID, "connection.type": "oidc"}
		switch s {
		case token:
			delete(want, "connection.id")
			delete(want, "connection.type")
		case callback:
			delete(want, "connection.type")
		}
		wantAttrs(t, s, want)
	}
	rcv.noPersonalData(t, "bob")
	b.stop()
}
