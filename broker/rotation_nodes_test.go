package broker_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestKeyRotatedOnAnotherNode: three nodes of one deployment, each with its
// own key snapshot. A rotation with a short overlap (a leaked key: the new
// keys sign at once) is made through node A; node B has not reloaded its
// keys yet (it would within 30 s). A token node A signs with the new key
// must be what it is on node B too: active at introspection, good at
// UserInfo, accepted as id_token_hint. Before, node B answered inactive
// and 401 until its next reload, so an application behind a load
// balancer saw fresh tokens of its users die and come back.
func TestKeyRotatedOnAnotherNode(t *testing.T) {
	st := storetest.SQLite(t)
	mem := sessions.NewMemory()
	a := newNode(t, st, mem, mem)
	b := newNodeIssuer(t, st, mem, mem, a.URL)
	c := newNodeIssuer(t, st, mem, mem, a.URL)
	tn := a.tenant("Acme", "acme.test", alice("acme.test"))
	b.idp.profiles[tn.ConnID] = alice("acme.test")
	ap := a.app(store.Application{})

	// Both nodes have verified a token of the current keys (their key
	// maps are built), then the keys rotate through node A.
	old, _ := ap.exchange(t, code(t, ap.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	for _, n := range []*node{a, b, c} {
		if ap.introspect(t, n, old.AccessToken)["active"] != true {
			t.Fatal("fresh access token inactive")
		}
	}
	if _, err := a.Keys.Rotate(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	fresh, _ := ap.exchange(t, code(t, ap.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	if in := ap.introspect(t, b, fresh.AccessToken); in["active"] != true {
		t.Errorf("node B: a token signed with the key rotated in on node A introspects %v, want active", in)
	}
	req, _ := http.NewRequest("GET", b.URL+broker.PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+fresh.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("node B: UserInfo with a token of the new key = %d, want 200", resp.StatusCode)
	}
	// Node B has the new keys now, and node C, which has met no token of
	// them, publishes them too within a second (its key set is at most
	// that old, so that it is not read per request): a relying party that
	// meets the new kid fetches the set through the load balancer, from
	// whichever node. Node C's own reload is 30 s away.
	lacking := func(n *node) []string {
		resp, err := http.Get(n.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out []string
		for _, k := range a.Keys.JWKS().Keys {
			if !strings.Contains(string(raw), k.KeyID) {
				out = append(out, k.KeyID)
			}
		}
		return out
	}
	if l := lacking(b); len(l) > 0 {
		t.Errorf("node B's JWKS lacks %v, which node A signs with", l)
	}
	deadline := time.Now().Add(3 * time.Second)
	for l := lacking(c); len(l) > 0; l = lacking(c) {
		if time.Now().After(deadline) {
			t.Fatalf("node C's JWKS still lacks %v, which node A signs with", l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
