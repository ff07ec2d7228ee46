package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
)

// The npm packages the Node sample of docs/reference/oidc.md is run with:
// exact versions, so that a release of either cannot change what the test
// checks from one run to the next. Raise them together with the page.
const (
	sampleOpenIDClient = "openid-client@6.9.1"
	sampleJose         = "jose@6.2.19"
)

// TestOIDCNodeSample runs the Node.js application of docs/reference/oidc.md,
// as it is on the page, against `serve --dev`, with the real openid-client
// and jose from npm: the most used Node relying party, whose checks are its
// own (RFC 9207 iss, PKCE, nonce, https unless told). A user signs in
// through the built-in IdP; an operator's revoke reaches the app as a
// back-channel logout that jose verifies, and signs the user out there;
// after a second sign-in, the app's sign-out goes through the broker's
// end-session endpoint and back. So the code a vendor copies works.
func TestOIDCNodeSample(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		testdb.Unavailable(t, "node is not installed: the Node sample of oidc.md cannot be checked")
		return
	}
	modules := sampleNodeModules(t)
	page, err := os.ReadFile("../../docs/reference/oidc.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```js\n(.*?)```").FindAllStringSubmatch(string(page), -1)
	if len(blocks) != 1 {
		t.Fatalf("oidc.md has %d js blocks, want the one Node sample", len(blocks))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.mjs"), []byte(blocks[0][1]), 0o600); err != nil {
		t.Fatal(err)
	}
	// Node finds packages in the node_modules beside the script.
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}

	const apiKey = "idb_sk_oidc_node_sample_0123456789abcdefghij"
	b := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: apiKey,
	}, "--dev")
	api := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		var r io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			r = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, b.base+"/api/v1"+path, r)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, raw, want)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}

	appURL := "http://" + freeAddr(t)
	app := api("POST", "/applications", map[string]any{
		"name":                      "Node sample",
		"redirect_uris":             []string{appURL + "/auth/callback"},
		"post_logout_redirect_uris": []string{appURL + "/"},
		"backchannel_logout_uri":    appURL + "/auth/backchannel-logout",
	}, http.StatusCreated)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, append(nodeFlags(t, node), "app.mjs")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ISSUER="+b.base, "APP_URL="+appURL,
		"CLIENT_ID="+app["client_id"].(string), "CLIENT_SECRET="+app["client_secret"].(string))
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(u string) string {
		t.Helper()
		res, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := browser.Get(appURL + "/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Node sample did not start:\n%s", out.String())
		}
	}
	signedIn := regexp.MustCompile(`^Signed in as alice@example\.com \((usr_\w+)\) of tnt_\w+$`)

	// Sign in: the sample → /authorize → the built-in IdP → the ACS → the
	// sample's callback, which redeems the code and shows who signed in.
	page2 := sampleSignIn(t, browser, b.base, appURL+"/login?email=alice@example.com")
	m := signedIn.FindStringSubmatch(page2)
	if m == nil {
		t.Fatalf("after sign-in the sample shows %q\n%s", page2, out.String())
	}

	// An operator ends alice's sessions: the sample hears it by back-channel
	// logout, verifies the token with jose and ends its own session.
	api("POST", "/users/"+m[1]+"/revoke_sessions", nil, http.StatusNoContent)
	waitOutput(t, out, "back-channel logout of session ses_", 1)
	if got := get(appURL + "/"); got != "Not signed in" {
		t.Errorf("after the operator's revoke the sample shows %q, want Not signed in\n%s", got, out.String())
	}

	// Sign in again, then out from the app: the end-session endpoint ends
	// the broker session and sends the browser back to the app.
	if got := sampleSignIn(t, browser, b.base, appURL+"/login?email=alice@example.com"); !signedIn.MatchString(got) {
		t.Fatalf("after the second sign-in the sample shows %q\n%s", got, out.String())
	}
	if got := get(appURL + "/logout"); got != "Not signed in" {
		t.Errorf("after sign-out the sample shows %q, want Not signed in\n%s", got, out.String())
	}
	waitOutput(t, out, "back-channel logout of session ses_", 2)
	if strings.Contains(out.String(), "Error") {
		t.Errorf("the sample logged an error:\n%s", out.String())
	}
}

// nodeFlags returns the flags node needs to run the sample: none from
// Node.js 20 on, which the page asks for (openid-client 6 supports no
// older). Debian 12's nodejs, which CI installs, is 18, whose Web Crypto
// API is global only behind a flag; with it the sample runs there too, and
// is checked wherever the tests run.
func nodeFlags(t *testing.T, node string) []string {
	t.Helper()
	v, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	var major int
	if _, err := fmt.Sscanf(string(v), "v%d.", &major); err != nil {
		t.Fatalf("node --version = %q: %v", v, err)
	}
	if major < 19 {
		return []string{"--experimental-global-webcrypto"}
	}
	return nil
}

// sampleSignIn follows a sign-in from start in browser c through the
// built-in IdP of the broker at base (choosing alice when it asks) and
// returns the page the browser lands on.
func sampleSignIn(t *testing.T, c *http.Client, base, start string) string {
	t.Helper()
	read := func(res *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	attr := func(page, re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(page)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}
	page := read(c.Get(start))
	if ret := attr(page, `name="return" value="([^"]+)"`); ret != "" {
		page = read(c.PostForm(base+"/dev/idp/login", url.Values{"user": {"alice"}, "return": {ret}}))
	}
	acs := attr(page, `action="([^"]+)"`)
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if acs == "" || form.Get("SAMLResponse") == "" {
		t.Fatalf("no SAML answer from the built-in IdP:\n%s", page)
	}
	return read(c.PostForm(acs, form))
}

// waitOutput waits until out holds n lines containing s.
func waitOutput(t *testing.T, out *syncBuffer, s string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); strings.Count(out.String(), s) < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("want %d × %q from the sample, got:\n%s", n, s, out.String())
		}
	}
}

// sampleNodeModules returns a node_modules directory holding the sample's
// packages, installed by npm once per machine into the user's cache (a
// test run needs the registry only the first time).
func sampleNodeModules(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		testdb.Unavailable(t, "npm is not installed: the Node sample of oidc.md cannot be checked")
		return ""
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	name := strings.NewReplacer("@", "-", "/", "-").Replace(sampleOpenIDClient + "_" + sampleJose)
	dir := filepath.Join(cache, "idbroker-tests", name)
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, ".complete")); err == nil {
		return modules
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	// Installed beside, then renamed into place: a run stopped halfway, or
	// another package's tests installing at the same moment, never leaves
	// a half-filled directory that looks complete.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), name+".tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", tmp, "--no-audit", "--no-fund",
		"--loglevel=error", sampleOpenIDClient, sampleJose)
	if outb, err := cmd.CombinedOutput(); err != nil {
		testdb.Unavailable(t, "npm install %s %s: %v\n%s", sampleOpenIDClient, sampleJose, err, outb)
		return ""
	}
	if err := os.WriteFile(filepath.Join(tmp, "node_modules", ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(filepath.Join(modules, ".complete")); serr != nil {
			t.Fatalf("keep the npm packages: %v", err)
		}
	}
	return modules
}
