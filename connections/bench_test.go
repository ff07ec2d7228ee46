package connections

import (
	"context"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store/storetest"
)

// alwaysFresh is a OnceCache whose Remember never reports a replay, so a
// benchmark can validate the same signed response over and over. The
// replay check's own cost (one SET NX) is measured by the sessions
// benchmarks; everything else here is the real ACS path.
type alwaysFresh struct{ *sessions.Memory }

func (alwaysFresh) Remember(context.Context, string, time.Duration) (bool, error) { return true, nil }

func benchACS(b *testing.B, signResponse, encrypt bool) {
	e := newEnvWith(b, envOpts{db: storetest.SQLite(b), once: alwaysFresh{sessions.NewMemory()}})
	idp := newTestIdP(b, 0)
	conn := e.samlConn(idp, func(s *SAMLSettings) { s.AllowIdPInitiated = ptr(true) })
	cn, err := e.reg.Connector(e.ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	sc := cn.(*samlConnector)
	raw := idp.response(b, e.issuer, conn, respOpts{signAssertion: !signResponse, signResponse: signResponse, issuedAt: e.clock.Now()})
	if _, err := sc.finish(e.ctx, raw, ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sc.finish(e.ctx, raw, ""); err != nil {
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
