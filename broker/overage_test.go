package broker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// syncBuffer is a log sink the server's goroutines write to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGroupsOverage: a sign-in whose IdP left the user's groups out for
// their number (Entra's group overage, flagged by the connector) is said
// so in the authentication.succeeded event (groups_overage) and once in
// a warn log line naming the connection; its id_token and userinfo carry
// no groups claim rather than an empty one, unless something gave
// groups. Other sign-ins are as before: groups [] and no new field.
func TestGroupsOverage(t *testing.T) {
	logs := &syncBuffer{}
	mem := sessions.NewMemory()
	n := newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{}, func(c *broker.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	for _, tt := range []struct {
		name       string
		domain     string
		overage    bool
		groups     []string
		wantGroups []string // nil: no groups claim
	}{
		{name: "overage, nothing else", domain: "acme.test", overage: true, wantGroups: nil},
		{name: "overage, roles still sent", domain: "globex.test", overage: true, groups: []string{"Admin"}, wantGroups: []string{"Admin"}},
		{name: "no overage, no groups", domain: "initech.test", groups: []string{}, wantGroups: []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prof := alice("acme.test")
			prof.Groups, prof.GroupsOverage = tt.groups, tt.overage
			domain := tt.domain
			prof.Email = "alice@" + domain
			tn := n.tenant("Acme "+tt.name, domain, prof)
			a := n.app(store.Application{})
			before := strings.Count(logs.String(), `"msg":"broker: the IdP left the user's groups out`)
			tok, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {prof.Email}})))

			raw, _ := tok.Extra("id_token").(string)
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
			if err != nil {
				t.Fatal(err)
			}
			var idt map[string]any
			if err := json.Unmarshal(payload, &idt); err != nil {
				t.Fatal(err)
			}
			_, has := idt["groups"]
			if has != (tt.wantGroups != nil) || !slices.Equal(c.Groups, tt.wantGroups) {
				t.Fatalf("id_token groups present %v = %q, want %q", has, c.Groups, tt.wantGroups)
			}
			ui, err := a.Conf.Client(context.Background(), tok).Get(n.URL + broker.PathUserinfo)
			if err != nil {
				t.Fatal(err)
			}
			var info map[string]any
			json.NewDecoder(ui.Body).Decode(&info)
			ui.Body.Close()
			if _, has := info["groups"]; has != (tt.wantGroups != nil) || info["sub"] != c.Sub {
				t.Fatalf("userinfo %v", info)
			}

			ev := lastEvent(t, n.Store, store.WithTenant(context.Background(), tn.ID), broker.EventAuthSucceeded)
			if v, has := ev["groups_overage"]; has != tt.overage || tt.overage && v != true {
				t.Fatalf("event %v", ev)
			}
			if ev["connection_id"] != tn.ConnID || ev["session_id"] != c.SID {
				t.Fatalf("event %v", ev)
			}
			var warned []map[string]any
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "group overage") && strings.Contains(line, tn.ConnID) {
					var m map[string]any
					json.Unmarshal([]byte(line), &m)
					warned = append(warned, m)
				}
			}
			if tt.overage != (len(warned) == 1) || len(warned) > 1 {
				t.Fatalf("%d overage log lines for %s (before: %d): %v", len(warned), tn.ConnID, before, warned)
			}
			if tt.overage && (warned[0]["level"] != "WARN" || warned[0]["connection_id"] != tn.ConnID || warned[0]["session_id"] != c.SID) {
				t.Fatalf("log line %v", warned[0])
			}
		})
	}
}
