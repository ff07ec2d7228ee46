package saml

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// alwaysFresh is a OnceCache whose Remember never reports a replay, so a
// benchmark can validate the same signed response over and over. The
// replay check's own cost (one SET NX) is measured by the sessions
// benchmarks; everything else here is the real ACS path.
type alwaysFresh struct{ *sessions.Memory }

func (alwaysFresh) Remember(context.Context, string, time.Duration) (bool, error) { return true, nil }

func benchACS(b *testing.B, signResponse, encrypt bool) {
	e := newEnvWith(b, envOpts{DB: storetest.SQLite(b), Once: alwaysFresh{sessions.NewMemory()}})
	idp := newTestIdP(b, 0)
	conn := e.samlConn(idp, func(s *Settings) { s.AllowIdPInitiated = ptr(true) })
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	sc := cn.(*samlConnector)
	o := respOpts{signAssertion: !signResponse, signResponse: signResponse, issuedAt: e.Clock.Now()}
	if encrypt {
		o.encryptTo = sc.sp.Certificate
	}
	raw := idp.response(b, e.Issuer, conn, o)
	if _, err := sc.finish(e.Ctx, raw, ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sc.finish(e.Ctx, raw, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
}

// BenchmarkACS measures validating one signed SAML response end to end in
// the connector: XML parse, signature check, conditions, mapping, domain
// rule (cached), on all cores.
func BenchmarkACSSignedAssertion(b *testing.B) { benchACS(b, false, false) }
func BenchmarkACSSignedResponse(b *testing.B)  { benchACS(b, true, false) }

// BenchmarkACSEncryptedAssertion adds decrypting the assertion (RSA-OAEP
// with the connection's SP key, AES-GCM), as when the IdP encrypts.
func BenchmarkACSEncryptedAssertion(b *testing.B) { benchACS(b, false, true) }

// BenchmarkACSHTTP is the whole ACS request on one node: form parsing,
// the connection and tenant lookups, validation, mapping, the domain rule.
// "cached" is the default; "uncached" (CacheTTL < 0) reads the connection
// and the tenant from the store on every request, as the ACS did before
// the cache.
func BenchmarkACSHTTP(b *testing.B) {
	for _, db := range storetest.Backends {
		for _, c := range []struct {
			name  string
			ttl   time.Duration
			admit bool
		}{{"cached", 0, false}, {"uncached", -1, false}, {"cached+tenant_cap", 0, true}} {
			b.Run(db.Name+"/"+c.name, func(b *testing.B) {
				o := envOpts{DB: db.Open(b), Once: alwaysFresh{sessions.NewMemory()}, CacheTTL: c.ttl}
				if c.admit {
					// The tenant's cap as serve wires it, never full here
					// (one tenant, GOMAXPROCS requests at once): the cost
					// of counting alone.
					o.Admit = (&ratelimit.Concurrency{Name: "signin_tenant", Limit: 4, Wait: ratelimit.ConcurrencyWait}).Admit
				}
				e := newEnvWith(b, o)
				idp := newTestIdP(b, 0)
				conn := e.samlConn(idp, func(s *Settings) { s.AllowIdPInitiated = ptr(true) })
				raw := idp.response(b, e.Issuer, conn, respOpts{signAssertion: true, issuedAt: e.Clock.Now()})
				body := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}}.Encode()
				ech := echo.New()
				e.Reg.Mount(ech, func(_ context.Context, w http.ResponseWriter, _ *http.Request, _ store.Connection, _ connections.Result, err error) {
					if err != nil {
						b.Error(err)
					}
					w.WriteHeader(http.StatusOK)
				})
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req := httptest.NewRequest(http.MethodPost, "/sso/saml/"+conn.ID+"/acs", strings.NewReader(body))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						ech.ServeHTTP(httptest.NewRecorder(), req)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
			})
		}
	}
}
