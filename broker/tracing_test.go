package broker_test

import (
	"context"
	"net/url"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestTokenSpans: with tracing on, the code exchange, a refresh and an
// introspection each name the application and the tenant on their span.
func TestTokenSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	mem := sessions.NewMemory()
	n := newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
	})
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	a.introspect(t, n, tok.AccessToken)
	if _, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatal(err)
	}

	counts := map[string]int{}
	for _, s := range rec.Ended() {
		if s.Name() != "POST "+broker.PathToken && s.Name() != "POST "+broker.PathIntrospect {
			continue
		}
		counts[s.Name()]++
		got := map[string]string{}
		for _, kv := range s.Attributes() {
			got[string(kv.Key)] = kv.Value.Emit()
		}
		if got["tenant.id"] != tn.ID || got["client.id"] != a.ID {
			t.Errorf("span %s: tenant.id %q client.id %q, want %s and %s", s.Name(), got["tenant.id"], got["client.id"], tn.ID, a.ID)
		}
	}
	if counts["POST "+broker.PathToken] != 2 || counts["POST "+broker.PathIntrospect] != 1 {
		t.Errorf("spans %v, want two token calls (code, refresh) and one introspection", counts)
	}
}
