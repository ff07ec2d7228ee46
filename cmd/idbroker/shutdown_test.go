package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeBindsBeforeAnnouncing: with the port taken, serve fails naming
// the setting that moves it, and never says it is ready nor (with --dev)
// where to open the demo.
func TestServeBindsBeforeAnnouncing(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, stderr, code := runBinary(t, map[string]string{
		envListen:      ln.Addr().String(),
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	}, "serve", "--dev")
	if code == 0 {
		t.Fatalf("serve on a taken port exited 0; output:\n%s", stderr)
	}
	for _, never := range []string{"idbroker ready", "dev: open the demo app"} {
		if strings.Contains(stderr, never) {
			t.Errorf("serve logged %q before failing to bind:\n%s", never, stderr)
		}
	}
	for _, want := range []string{"address already in use", envListen} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the bind error does not mention %q:\n%s", want, stderr)
		}
	}
}

// TestServeShutdownJoinsBackground runs serve in process and stops it:
// when serve returns, no goroutine it started (back-channel logout,
// connection maintenance, webhook dispatch, key reloads, session
// subscriptions) may still be running — they are joined before the store
// and the cache close under them.
//
// Most background work ends by itself a moment after cancellation, so a
// goroutine that serve forgot to wait for would usually be gone already
// when the check runs, and the check would pass by luck. So the test
// leaves one piece of work that cannot end by itself: a forced metadata
// refresh (after a SAML response signed with a key the connection does not
// trust) stuck on an IdP that never answers. Only serve's cancelling and
// joining it ends it before serve returns.
func TestServeShutdownJoinsBackground(t *testing.T) {
	before := ourGoroutines()
	addr := freeAddr(t)
	issuer := "http://" + addr
	cfg, err := loadConfig(configSource{getenv: mapEnv(map[string]string{
		envListen:          addr,
		envIssuer:          issuer,
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: testBootstrapKey,
	}), dev: true})
	if err != nil {
		t.Fatal(err)
	}
	// The IdP's metadata URL: the first answer is the dev IdP's metadata
	// with a certificate it does not sign with; every later request hangs
	// until its client gives up.
	var (
		metadata string
		hits     atomic.Int32
		hung     = make(chan struct{}, 1)
	)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/samlmetadata+xml")
			io.WriteString(w, metadata)
			return
		}
		select {
		case hung <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	t.Cleanup(func() { idp.CloseClientConnections(); idp.Close() })
	logs := new(syncBuffer)
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, true, log, nil) }()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), "http server listening"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve not listening within a minute:\n%s", logs)
		}
	}
	if started := len(ourGoroutines()) - len(before); started < 3 {
		t.Fatalf("only %d background goroutines while serving; the check below would prove nothing", started)
	}
	strandRefresh(t, issuer, logs, idp.URL, &metadata, hung)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not return within a minute of cancellation")
	}
	// No polling: anything still here was not waited for.
	for id, stack := range ourGoroutines() {
		if _, ok := before[id]; !ok {
			t.Errorf("goroutine still running after serve returned:\n%s", stack)
		}
	}
}

// strandRefresh points the dev connection's metadata URL at idpURL (whose
// first answer is *metadata, a certificate the dev IdP does not sign
// with), signs alice in through the dev IdP, whose signature is then
// untrusted, and waits until the forced refresh that follows hangs on the
// IdP (hung).
func strandRefresh(t *testing.T, issuer string, logs *syncBuffer, idpURL string, metadata *string, hung <-chan struct{}) {
	t.Helper()
	readPage := pageReader(t)
	md, _ := readPage(http.Get(issuer + "/dev/idp/metadata"))
	cert := selfSignedCertificate(t)
	*metadata = regexp.MustCompile(`(<(?:ds:)?X509Certificate[^>]*>)[^<]+(</(?:ds:)?X509Certificate>)`).ReplaceAllString(md, "${1}"+cert+"${2}")
	m := regexp.MustCompile(`connection_id=(conn_[0-9A-Za-z]+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no dev connection id in the logs:\n%s", logs)
	}
	req, _ := http.NewRequest(http.MethodPatch, issuer+"/api/v1/connections/"+m[1], strings.NewReader(`{"saml":{"idp_metadata_url":"`+idpURL+`/metadata"}}`))
	req.Header.Set("Authorization", "Bearer "+testBootstrapKey)
	req.Header.Set("Content-Type", "application/json")
	if page, _ := readPage(http.DefaultClient.Do(req)); !strings.Contains(page, idpURL) {
		t.Fatalf("pointing the dev connection at the IdP's metadata URL:\n%s", page)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	attr := func(page, re string) string {
		if m := regexp.MustCompile(re).FindStringSubmatch(page); m != nil {
			return html.UnescapeString(m[1])
		}
		return ""
	}
	resolve := func(at, ref string) string {
		base, _ := url.Parse(at)
		r, _ := url.Parse(ref)
		return base.ResolveReference(r).String()
	}
	page, at := readPage(c.Get(issuer + "/dev/app/login"))
	action, id := attr(page, `action="([^"]+)"`), attr(page, `name="id" value="([^"]+)"`)
	if action == "" || id == "" {
		t.Fatalf("no email page at %s:\n%s", at, page)
	}
	page, at = readPage(c.PostForm(resolve(at, action), url.Values{"id": {id}, "email": {"alice@example.com"}}))
	ret := attr(page, `name="return" value="([^"]+)"`)
	if ret == "" {
		t.Fatalf("no dev IdP page at %s:\n%s", at, page)
	}
	page, at = readPage(c.PostForm(issuer+"/dev/idp/login", url.Values{"user": {"alice"}, "return": {ret}}))
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	acs := attr(page, `action="([^"]+)"`)
	if acs == "" || form.Get("SAMLResponse") == "" {
		t.Fatalf("no SAMLResponse at %s:\n%s", at, page)
	}
	page, at = readPage(c.PostForm(resolve(at, acs), form))
	if strings.Contains(page, `id="claims"`) {
		t.Fatalf("signed in at %s through a connection that no longer trusts the dev IdP's key", at)
	}
	select {
	case <-hung:
	case <-time.After(time.Minute):
		t.Fatal("no forced metadata refresh reached the IdP within a minute of an untrusted signature")
	}
}

// selfSignedCertificate returns the base64 DER of a fresh certificate.
func selfSignedCertificate(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the dev IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)

// ourGoroutines returns, by id, the stacks of the other goroutines running
// idbroker code (not tests).
func ourGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, g := range strings.Split(string(buf), "\n\n") {
		m := goroutineHeader.FindStringSubmatch(g)
		if i == 0 || m == nil { // the first is this goroutine
			continue
		}
		ours := false
		for _, line := range strings.Split(g, "\n") {
			if strings.HasPrefix(line, "github.com/idbroker/idbroker/") && !strings.Contains(line, "_test.") &&
				!strings.HasPrefix(line, "github.com/idbroker/idbroker/cmd/idbroker.Test") {
				ours = true
			}
		}
		if ours {
			out[m[1]] = g
		}
	}
	return out
}
