package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

const healthcheckHelp = `Ask a broker on this machine whether it is ready: GET /readyz on the
address IDBROKER_LISTEN names (default :8080), through loopback when it names
no host. Exits 0 when it answers 200 and 1 otherwise, printing why.

Made for container health checks on images with no shell or curl (the
Dockerfile's HEALTHCHECK runs it); /readyz checks the database and Redis.`

// runHealthcheck is `idbroker healthcheck`.
func runHealthcheck(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet(c, "healthcheck [flags]", healthcheckHelp)
	target := fs.String("url", "", "URL to check instead of /readyz on "+envListen)
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := parseFlags(c, fs, args); err != nil {
		return err
	}
	u := *target
	if u == "" {
		listen := c.getenv(envListen)
		if listen == "" {
			listen = defaultListen
		}
		var err error
		if u, err = readyzURL(listen); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answered %s", u, resp.Status)
	}
	fmt.Fprintf(c.stdout, "ready: %s answered %s\n", u, resp.Status)
	return nil
}

// probeClient asks the broker itself: never through HTTP_PROXY, which a
// container set up for egress may carry (Go's default client bypasses it
// only for loopback), and which would answer for the broker, or fail, in
// its place. Nor does it follow a redirect: /readyz answers, it does not
// send anyone elsewhere.
var probeClient = &http.Client{
	Transport: &http.Transport{Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// readyzURL is the /readyz URL of a broker listening on listen (host:port):
// a wildcard or empty host is reached through loopback.
func readyzURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", envListen, listen, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
