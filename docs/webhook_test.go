package docs_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/testdb"
)

// The code samples of docs/reference/events.md (verify) and
// docs/guides/webhooks.md (Event, Webhook) are the code below, verbatim:
// TestWebhookSamplesAreThisCode fails when a page and this file part, and
// the other tests run the samples against signatures the broker makes
// (events.Sign), so that the code a vendor copies works.

func verify(secret, header string, body []byte, now time.Time) bool {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || math.Abs(now.Sub(time.Unix(sec, 0)).Seconds()) > 300 {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

// Event is the envelope every event has (docs/reference/events.md).
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	TenantID  string          `json:"tenant_id"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// Webhook answers idbroker's deliveries: it checks the signature, answers
// at once, and hands each event to enqueue once. enqueue must be quick
// (put the event on your job queue); seen must remember ids durably (your
// database) and report whether id was seen before.
func Webhook(secret string, seen func(id string) bool, enqueue func(Event)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if !verify(secret, r.Header.Get("IDBroker-Signature"), body, time.Now()) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		if !seen(ev.ID) {
			enqueue(ev)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// codeBlocks returns the fenced code blocks of language lang in page.
func codeBlocks(t *testing.T, page, lang string) []string {
	t.Helper()
	text, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(text), -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatalf("%s has no %s code block", page, lang)
	}
	return out
}

func TestWebhookSamplesAreThisCode(t *testing.T) {
	self, err := os.ReadFile("webhook_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"reference/events.md", "guides/webhooks.md"} {
		for _, block := range codeBlocks(t, page, "go") {
			if !bytes.Contains(self, []byte(block)) {
				t.Errorf("a Go sample of %s is not the code of docs/webhook_test.go, which tests it; update both:\n%s", page, block)
			}
		}
	}
}

// signed is a delivery as the broker sends it.
func signed(t *testing.T, secret string, at time.Time, ev Event) (body []byte, header string) {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return body, events.Sign(secret, at, body)
}

func TestWebhookVerify(t *testing.T) {
	const secret = "idb_whsec_test"
	now := time.Now()
	body, header := signed(t, secret, now, Event{ID: "evt_1", Type: "session.revoked"})
	rotated := header + ",v1=" + strings.Repeat("0", 64)
	// During a real rotation the broker signs with the new secret, then
	// the old (POST /webhooks/{id}/secret): either one verifies.
	overlap := events.Sign("idb_whsec_new", now, body, secret)
	for _, tt := range []struct {
		name   string
		secret string
		header string
		body   []byte
		at     time.Time
		want   bool
	}{
		{"as sent", secret, header, body, now, true},
		{"one of several signatures", secret, rotated, body, now, true},
		{"rotation, old secret", secret, overlap, body, now, true},
		{"rotation, new secret", "idb_whsec_new", overlap, body, now, true},
		{"rotation, another secret", "idb_whsec_other", overlap, body, now, false},
		{"within five minutes", secret, header, body, now.Add(4 * time.Minute), true},
		{"other secret", "idb_whsec_other", header, body, now, false},
		{"body changed", secret, header, append([]byte(" "), body...), now, false},
		{"stale", secret, header, body, now.Add(6 * time.Minute), false},
		{"no header", secret, "", body, now, false},
	} {
		if got := verify(tt.secret, tt.header, tt.body, tt.at); got != tt.want {
			t.Errorf("%s: verify = %v, want %v", tt.name, got, tt.want)
		}
		// The reference must agree with the broker's own check.
		if err := events.Verify(tt.secret, tt.header, tt.body, tt.at, 5*time.Minute); (err == nil) != tt.want {
			t.Errorf("%s: events.Verify = %v, want ok %v", tt.name, err, tt.want)
		}
	}
}

// TestWebhookRotationHeaderOrder: during a rotation the header is
// t=…,v1=<new>,v1=<old>, as events.md shows. The page warns that a parser
// keeping one value per key (a map, Python's dict of the pairs) keeps the
// last, the old secret's, and so refuses every delivery once the receiver
// holds the new secret before the overlap ends; this holds the order that
// warning describes.
func TestWebhookRotationHeaderOrder(t *testing.T) {
	now := time.Now()
	body := []byte(`{"id":"evt_1"}`)
	header := events.Sign("idb_whsec_new", now, body, "idb_whsec_old")
	parts := strings.Split(header, ",")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "t=") {
		t.Fatalf("header %q", header)
	}
	last := map[string]string{}
	for _, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		last[k] = v
	}
	one := func(secret string) bool {
		return verify(secret, "t="+last["t"]+",v1="+last["v1"], body, now)
	}
	if one("idb_whsec_new") || !one("idb_whsec_old") {
		t.Errorf("a map of the pairs keeps the new secret's signature, not the old one's as events.md says: %q", header)
	}
	for _, secret := range []string{"idb_whsec_new", "idb_whsec_old"} {
		if !verify(secret, header, body, now) {
			t.Errorf("the documented verify refuses the overlap with %s", secret)
		}
	}
}

func TestWebhookHandler(t *testing.T) {
	const secret = "idb_whsec_test"
	var mu sync.Mutex
	ids := map[string]bool{}
	var got []Event
	h := Webhook(secret, func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		dup := ids[id]
		ids[id] = true
		return dup
	}, func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
	})
	ev := Event{ID: "evt_1", Type: "dsync.user.deactivated", TenantID: "tnt_1", Data: json.RawMessage(`{"user_id":"usr_1"}`)}
	body, header := signed(t, secret, time.Now(), ev)
	send := func(method string, body []byte, header string) int {
		r := httptest.NewRequest(method, "/hooks/idbroker", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(events.HeaderSignature, header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := send("POST", body, header); code != http.StatusNoContent {
		t.Errorf("signed delivery: %d, want 204", code)
	}
	if code := send("POST", body, header); code != http.StatusNoContent {
		t.Errorf("the same delivery again: %d, want 204", code)
	}
	if code := send("POST", []byte(`{"id":"evt_2"}`), header); code != http.StatusUnauthorized {
		t.Errorf("body not signed: %d, want 401", code)
	}
	if code := send("GET", nil, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", code)
	}
	if len(got) != 1 || got[0].ID != "evt_1" || got[0].Type != ev.Type || string(got[0].Data) != string(ev.Data) {
		t.Errorf("enqueued %+v, want evt_1 once", got)
	}
}

// TestWebhookNodeSample runs the Node.js samples (the reference's verify,
// the guide's server) against deliveries signed as the broker signs them,
// when node is installed.
func TestWebhookNodeSample(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if testdb.InCI() {
			t.Fatal("node is not installed: the Node sample cannot be checked")
		}
		t.Skip("node is not installed")
	}
	script := codeBlocks(t, "reference/events.md", "js")[0] + "\n" + codeBlocks(t, "guides/webhooks.md", "js")[0]
	file := filepath.Join(t.TempDir(), "webhook.js")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	const secret = "idb_whsec_node"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, node, file)
	cmd.Env = append(os.Environ(), "PORT="+port, "WEBHOOK_SECRET="+secret)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	url := "http://127.0.0.1:" + port + "/hooks/idbroker"
	post := func(body []byte, header string) (int, error) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set(events.HeaderSignature, header)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	body, header := signed(t, secret, time.Now(), Event{ID: "evt_1", Type: "session.revoked", TenantID: "tnt_1"})
	var code int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, err = post(body, header); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Node sample did not start: %v\n%s", err, out.String())
		}
	}
	if code != http.StatusNoContent {
		t.Errorf("signed delivery: %d, want 204\n%s", code, out.String())
	}
	if code, err := post(append(body, ' '), header); err != nil || code != http.StatusUnauthorized {
		t.Errorf("changed body: %d %v, want 401", code, err)
	}
	stale, staleHeader := signed(t, secret, time.Now().Add(-10*time.Minute), Event{ID: "evt_2", Type: "session.revoked"})
	if code, err := post(stale, staleHeader); err != nil || code != http.StatusUnauthorized {
		t.Errorf("stale signature: %d %v, want 401", code, err)
	}
	// A secret rotation's overlap: two v1 values, the new secret's first.
	// The sample accepts the delivery holding either secret, and refuses
	// it when neither is its own.
	for _, c := range []struct {
		name    string
		current string
		prev    []string
		want    int
	}{
		{"rotation, the sample holds the old secret", "idb_whsec_new", []string{secret}, http.StatusNoContent},
		{"rotation, the sample holds the new secret", secret, []string{"idb_whsec_old"}, http.StatusNoContent},
		{"rotation, neither is its secret", "idb_whsec_new", []string{"idb_whsec_old"}, http.StatusUnauthorized},
	} {
		body, err := json.Marshal(Event{ID: "evt_" + strings.ReplaceAll(c.name, " ", "_"), Type: "session.revoked"})
		if err != nil {
			t.Fatal(err)
		}
		if code, err := post(body, events.Sign(c.current, time.Now(), body, c.prev...)); err != nil || code != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, code, err, c.want)
		}
	}
}

// TestWebhookOpenSSLSample runs the shell line of events.md that checks a
// delivery by hand with openssl: it must print the v1 the broker signs.
func TestWebhookOpenSSLSample(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if testdb.InCI() {
			t.Fatal("openssl is not installed: the sample cannot be checked")
		}
		t.Skip("openssl is not installed")
	}
	var line string
	for _, b := range codeBlocks(t, "reference/events.md", "sh") {
		if strings.Contains(b, "openssl dgst") {
			line = b
		}
	}
	if line == "" {
		t.Fatal("events.md has no openssl sample")
	}
	const secret = "idb_whsec_openssl"
	at := time.Unix(1765012443, 0)
	// A body with what a careless copy breaks: quotes, a backslash, a
	// percent sign for printf, non-ASCII text and no final newline.
	body, header := signed(t, secret, at, Event{ID: "evt_1", Type: "dsync.user.updated", TenantID: "tnt_1",
		Data: json.RawMessage(`{"display_name":"Zoë \"Z\" 100% O'Brien\\"}`)})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "body.json"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "t="+strconv.FormatInt(at.Unix(), 10), "WEBHOOK_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := strings.TrimSpace(string(out))
	if want := "t=" + strconv.FormatInt(at.Unix(), 10) + ",v1=" + got; header != want {
		t.Fatalf("the sample printed %q; the broker's header is %q", got, header)
	}
}
