package adminportal_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestOutboundAddressRuleAtRegistration: a webhook or back-channel logout
// URL whose host is written as a forbidden address (or is a localhost
// name) is refused when it is registered, unless private networks are
// allowed; names are left to each delivery's check after resolution.
func TestOutboundAddressRuleAtRegistration(t *testing.T) {
	hosts := []struct {
		name, host string
		refused    bool
	}{
		{"loopback", "127.0.0.1:8080", true},
		{"loopback v6", "[::1]", true},
		{"localhost", "localhost:3000", true},
		{"localhost subdomain", "app.LOCALHOST", true},
		{"private", "10.1.2.3", true},
		{"private 192.168", "192.168.0.10", true},
		{"cloud metadata", "169.254.169.254", true},
		{"v4-mapped loopback", "[::ffff:127.0.0.1]", true},
		{"v4-compatible loopback", "[::127.0.0.1]", true},
		{"unspecified", "0.0.0.0", true},
		// Forms inet_aton reads as addresses, which Go does not.
		{"decimal loopback", "2130706433", true},
		{"hex loopback", "0x7f000001", true},
		{"short loopback", "127.1", true},
		{"octal loopback", "0177.0.0.1", true},
		{"zero", "0", true},
		{"hex private parts", "0xa.0.0.1:8443", true},
		{"decimal metadata", "2852039166", true},
		{"GCP metadata name", "metadata.google.internal", true},
		{"GCP metadata name, rooted", "METADATA.google.internal.", true},
		{"numeric-looking name", "0x7f.example.com", false},
		{"name with a number label", "127.1.example", false},
		{"public address", "93.184.216.34", false},
		{"name", "hooks.example", false},
		{"name resolving anywhere", "internal.corp.example", false},
	}
	for _, allow := range []bool{false, true} {
		st := storetest.SQLite(t)
		e := mountedEnv(t, st, adminportal.APIConfig{AllowPrivateNetworks: allow})
		for _, h := range hosts {
			wantRefused := h.refused && !allow
			hook := e.call("POST", "/webhooks", map[string]any{"url": "https://" + h.host + "/hook", "events": []string{"*"}})
			app := e.call("POST", "/applications", map[string]any{
				"name": "app", "redirect_uris": []string{"https://app.example/cb"},
				"backchannel_logout_uri": "https://" + h.host + "/logout",
			})
			for what, r := range map[string]response{"webhook": hook, "application": app} {
				switch {
				case wantRefused && (r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" ||
					!strings.Contains(r.err(t).Message, "IDBROKER_ALLOW_PRIVATE_NETWORKS")):
					t.Errorf("allow=%v %s %s: %d %s, want 400 naming the setting", allow, h.name, what, r.status, r.body)
				case !wantRefused && r.status != http.StatusCreated:
					t.Errorf("allow=%v %s %s: %d %s, want 201", allow, h.name, what, r.status, r.body)
				}
			}
		}
		// A PATCH is held to the same rule; a refused one changes nothing.
		var app struct {
			ID string `json:"id"`
		}
		e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "patched", "redirect_uris": []string{"https://app.example/cb"},
		}).decode(t, &app)
		r := e.call("PATCH", "/applications/"+app.ID, map[string]any{"backchannel_logout_uri": "http://127.0.0.1:9/logout"})
		if want := map[bool]int{false: http.StatusBadRequest, true: http.StatusOK}[allow]; r.status != want {
			t.Errorf("allow=%v PATCH to loopback: %d %s, want %d", allow, r.status, r.body, want)
		}
		if !allow {
			got, err := st.Application(context.Background(), app.ID)
			if err != nil || got.BackchannelLogoutURI != "" {
				t.Errorf("refused PATCH stored %q (%v)", got.BackchannelLogoutURI, err)
			}
		}
	}
}

// TestOddIPv4FormOfAPublicAddress: an address written in a form Go would
// look up as a name is refused even when it is public, saying how to
// write it.
func TestOddIPv4FormOfAPublicAddress(t *testing.T) {
	e := mountedEnv(t, storetest.SQLite(t), adminportal.APIConfig{})
	for host, want := range map[string]string{"1572395042": "93.184.216.34", "0x5d.0xb8.0xd8.0x22": "93.184.216.34", "93.0270.55330": "93.184.216.34"} {
		r := e.call("POST", "/webhooks", map[string]any{"url": "https://" + host + "/hook", "events": []string{"*"}})
		if r.status != http.StatusBadRequest || r.err(t).Field != "url" || !strings.Contains(r.err(t).Message, want) {
			t.Errorf("%s: %d %s, want 400 naming %s", host, r.status, r.body, want)
		}
	}
}
