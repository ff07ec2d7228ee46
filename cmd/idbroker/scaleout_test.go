package main

import (
	"crypto/rand"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// cluster is a scale-out deployment as production runs it: nodes of one
// PostgreSQL database and one Redis, all serving the issuer of a
// round-robin load balancer in front of them, which sends every request
// to the next node (no stickiness).
type cluster struct {
	t     *testing.T
	env   map[string]string // every node's environment
	nodes []*node
	lb    *node // the load balancer, as a node: its base is the issuer

	mu   sync.Mutex
	down map[int]bool // nodes the balancer skips (stopped or killed)
	next atomic.Uint64
}

// startCluster starts n brokers (serve --dev, whose built-in SAML IdP
// signs users in) behind a round-robin reverse proxy, on a fresh
// PostgreSQL database and a Redis of the test's own.
func startCluster(t *testing.T, n int, extra map[string]string) *cluster {
	t.Helper()
	rs := sessionstest.StartServer(t)
	c := &cluster{t: t, down: map[int]bool{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse(c.pick().base)
			r.SetURL(u)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
	}
	lb := httptest.NewServer(proxy)
	t.Cleanup(lb.Close)
	c.env = productionEnv(t, rs.URL())
	c.env[envIssuer] = lb.URL
	c.env[envTrustedProxies] = "127.0.0.1/32"
	for k, v := range extra {
		c.env[k] = v
	}
	for range n {
		c.nodes = append(c.nodes, startBroker(t, c.env, "--dev"))
	}
	c.lb = &node{t: t, base: lb.URL, output: new(syncBuffer), client: &http.Client{Timeout: 10 * time.Second}, done: make(chan struct{})}
	return c
}

// pick is the next live node in turn.
func (c *cluster) pick() *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range len(c.nodes) {
		i := int(c.next.Add(1)-1) % len(c.nodes)
		if !c.down[i] {
			return c.nodes[i]
		}
	}
	return c.nodes[0]
}

// output is every node's log, for a test that looks for a line one of
// them printed.
func (c *cluster) output() string {
	var s string
	for _, n := range c.nodes {
		s += n.output.String()
	}
	return s
}

// TestNodeWithAnotherMasterKeyRefusesToStart: a node added to a running
// deployment with a master key other than the deployment's (a typo, a
// secret manager's stale version) must refuse to start, saying which
// setting is wrong and what every node needs, before it serves or seals
// anything.
func TestNodeWithAnotherMasterKeyRefusesToStart(t *testing.T) {
	c := startCluster(t, 1, nil)
	env := maps.Clone(c.env)
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	env[envMasterKey] = base64.StdEncoding.EncodeToString(other)
	env[envListen] = freeAddr(t)
	_, stderr, code := runBinary(t, env, "serve")
	if code == 0 {
		t.Fatalf("a node with another master key exited 0:\n%s", stderr)
	}
	for _, want := range []string{envMasterKey + " does not open", "every node", envMasterKeyPrevious} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, stderr)
		}
	}
}
