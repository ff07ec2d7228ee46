package loadtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// introspector asks an introspection endpoint about one access token per
// worker, each worker over its own raw keep-alive connection (the -url
// mode's client): at tens of thousands of answers a second, net/http's
// client would take much of the CPU the endpoint needs.
type introspector struct {
	addr string
	reqs [][]byte // worker w's request, encoded once
	// conns[w] and bufs[w] are worker w's alone: no lock.
	conns []*conn
	bufs  [][]byte
}

// newIntrospector encodes each worker's request: POST token=… with
// client_secret_basic (RFC 6749 §2.3.1: both parts form-encoded).
func newIntrospector(endpoint string, app App, tokens []string) (*introspector, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("loadtest: introspection endpoint %q: %w", endpoint, err)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(app.ClientID)+":"+url.QueryEscape(app.Secret)))
	in := &introspector{addr: hostPort(u), conns: make([]*conn, len(tokens)), bufs: make([][]byte, len(tokens))}
	for _, tk := range tokens {
		in.reqs = append(in.reqs, encodeRequest(Config{Method: http.MethodPost,
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {auth}},
			Body:   []byte("token=" + url.QueryEscape(tk))}, u))
	}
	return in, nil
}

func hostPort(u *url.URL) string {
	if u.Port() == "" {
		return u.Hostname() + ":80"
	}
	return u.Host
}

// op is worker w's introspection: it counts when the answer is 200 with
// "active": true.
func (in *introspector) op(ctx context.Context, w int) (time.Duration, error) {
	c := in.conns[w]
	if c == nil {
		var err error
		if c, err = dial(ctx, in.addr); err != nil {
			return 0, err
		}
		in.conns[w] = c
	}
	status, keep, err := c.roundTrip(in.reqs[w], &in.bufs[w])
	if err != nil || !keep {
		c.Close()
		in.conns[w] = nil
	}
	if err != nil {
		return 0, err
	}
	body := in.bufs[w]
	if status != http.StatusOK {
		return 0, &OpError{Kind: fmt.Sprintf("status %d", status), Err: fmt.Errorf("introspect: %s", truncate(string(body), 300))}
	}
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, &OpError{Kind: "protocol", Err: fmt.Errorf("introspect: %w", err)}
	}
	if !r.Active {
		return 0, &OpError{Kind: "inactive", Err: fmt.Errorf("introspect: %s", truncate(string(body), 300))}
	}
	return 0, nil
}

// close ends the connections, once the run is over.
func (in *introspector) close() {
	for i, c := range in.conns {
		if c != nil {
			c.Close()
			in.conns[i] = nil
		}
	}
}

// introspect: each worker signs in once through the tool's OIDC IdP (the
// path login-oidc takes, the cheapest), then asks /oauth/introspect about
// its access token again and again with the application's
// client_secret_basic.
func introspect(b *Broker, o Options) *Scenario {
	t := &oidcTenant{}
	var in *introspector
	return &Scenario{Name: "introspect",
		Setup: func(ctx context.Context, workers int) error {
			if err := t.setup(ctx, b, o, "load introspect"); err != nil {
				return err
			}
			tokens := make([]string, workers)
			for w := range tokens {
				tk, err := t.login(ctx, b, fmt.Sprintf("introspect%d@%s", w, t.tenant.Domain))
				if err != nil {
					return fmt.Errorf("sign in worker %d: %w", w, err)
				}
				tokens[w] = tk.AccessToken
			}
			var err error
			in, err = newIntrospector(b.URL+b.IntrospectPath, t.app, tokens)
			return err
		},
		Op: func(ctx context.Context, w int) (time.Duration, error) { return in.op(ctx, w) },
		Close: func() {
			if in != nil {
				in.close()
			}
			t.close()
		},
	}
}

// peerIntrospect: the same at a peer, each worker's token from a login as
// peer-login does. Dex v2.45 serves RFC 7662 at /token/introspect and does
// not authenticate the caller (server/introspectionhandler.go); the
// client's credentials are sent all the same, so that both servers get
// requests of the same shape.
func peerIntrospect(b *Broker, o Options) *Scenario {
	var in *introspector
	return &Scenario{Name: "peer-introspect",
		Setup: func(ctx context.Context, workers int) error {
			tokens := make([]string, workers)
			for w := range tokens {
				tk, err := b.login(ctx, o.Peer.Client, o.Peer.Params, nil)
				if err != nil {
					return fmt.Errorf("sign in worker %d: %w", w, err)
				}
				tokens[w] = tk.AccessToken
			}
			var err error
			in, err = newIntrospector(b.URL+b.IntrospectPath, o.Peer.Client, tokens)
			return err
		},
		Op: func(ctx context.Context, w int) (time.Duration, error) { return in.op(ctx, w) },
		Close: func() {
			if in != nil {
				in.close()
			}
		},
	}
}
