package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/testdb"
)

// TestWebhookManagedThroughTheBinary follows a vendor managing its
// webhook on a running broker, on each database: after a secret rotation
// deliveries carry the new and the old signature; a disabled webhook is
// sent nothing and is owed nothing for what happens meanwhile; enabled
// again it resumes; deleted, it is 404 while its events stay in the stream.
func TestWebhookManagedThroughTheBinary(t *testing.T) {
	t.Parallel()
	for _, db := range []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"sqlite", func(*testing.T) map[string]string { return map[string]string{} }},
		{"postgres", func(t *testing.T) map[string]string {
			return map[string]string{envDatabaseURL: testdb.PostgresURL(t), envRedisURL: ownRedis(t), envMasterKey: testMasterKey}
		}},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			type delivery struct {
				sig  string
				body []byte
			}
			received := make(chan delivery, 16)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				received <- delivery{r.Header.Get(events.HeaderSignature), body}
			}))
			defer hook.Close()
			env := db.env(t)
			env[envAllowPrivateNetworks] = "true" // the receiver is on loopback
			b, _, dir := startWithDirectory(t, env)
			wh := subscribe(t, b, hook.URL, "dsync.user.created")
			key := e2eBootstrapKey
			path := "/api/v1/webhooks/" + wh.ID

			push := func(name string) {
				t.Helper()
				user := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `@acme.example","active":true}`
				if a := dir.pushUser(t, b, user); a.status != http.StatusCreated {
					t.Fatalf("SCIM POST /Users = %d %s", a.status, a.raw)
				}
			}
			next := func() delivery {
				t.Helper()
				select {
				case d := <-received:
					return d
				case <-time.After(20 * time.Second):
					t.Fatal("no webhook delivery within 20s")
				}
				return delivery{}
			}

			var rotated webhookJSON
			if code := b.do("POST", path+"/secret", key, nil, &rotated); code != http.StatusOK || rotated.Secret == "" || rotated.Secret == wh.Secret {
				t.Fatalf("rotate = %d %+v", code, rotated)
			}
			push("ann")
			d := next()
			ts, _, _ := strings.Cut(strings.TrimPrefix(d.sig, "t="), ",")
			sec, _ := strconv.ParseInt(ts, 10, 64)
			if want := events.Sign(rotated.Secret, time.Unix(sec, 0), d.body, wh.Secret); d.sig != want {
				t.Fatalf("signature after a rotation = %s, want v1=<new>,v1=<old>: %s", d.sig, want)
			}

			// Disabled: the next user's event is not queued for it.
			if code := b.do("PATCH", path, key, map[string]any{"enabled": false}, nil); code != http.StatusOK {
				t.Fatalf("disable = %d", code)
			}
			push("bob")
			var dl struct {
				Data []struct {
					EventID string `json:"event_id"`
				} `json:"data"`
			}
			if code := b.do("GET", path+"/deliveries", key, nil, &dl); code != http.StatusOK || len(dl.Data) != 1 {
				t.Fatalf("deliveries while disabled = %d %+v, want ann's alone", code, dl)
			}
			if code := b.do("PATCH", path, key, map[string]any{"enabled": true}, nil); code != http.StatusOK {
				t.Fatalf("enable = %d", code)
			}
			push("cat")
			if d := next(); !strings.Contains(string(d.body), "cat@acme.example") {
				t.Fatalf("after enabling, delivered %s, want cat (bob's event is not replayed)", d.body)
			}

			// Deleted: 404 from then on; the events stay.
			if code := b.do("DELETE", path, key, nil, nil); code != http.StatusNoContent {
				t.Fatalf("DELETE = %d", code)
			}
			if code := b.do("GET", path, key, nil, nil); code != http.StatusNotFound {
				t.Fatalf("GET after DELETE = %d", code)
			}
			var evs struct {
				Data []struct {
					Type string `json:"type"`
				} `json:"data"`
			}
			if code := b.do("GET", "/api/v1/events?events=dsync.user.created", key, nil, &evs); code != http.StatusOK || len(evs.Data) != 3 {
				t.Fatalf("events after DELETE = %d %+v, want ann's, bob's and cat's", code, evs)
			}
			select {
			case d := <-received:
				t.Fatalf("an unexpected delivery: %s", d.body)
			default:
			}
			b.stop()
		})
	}
}
