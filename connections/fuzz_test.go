package connections

import (
	"testing"
)

// FuzzACS feeds arbitrary response bytes and RelayStates to the ACS
// validation. Nothing may panic, and nothing but the one genuine seed may
// ever produce a profile (and that only once: replay).
func FuzzACS(f *testing.F) {
	e := newEnvTB(f)
	idp := newTestIdP(f, 0)
	conn := e.samlConn(idp, func(s *SAMLSettings) { s.AllowIdPInitiated = ptr(true) })
	cn, err := e.reg.Connector(e.ctx, conn)
	if err != nil {
		f.Fatal(err)
	}
	sc := cn.(*samlConnector)
	valid := idp.response(f, e.issuer, conn, respOpts{signAssertion: true, issuedAt: e.clock.Now()})
	f.Add(valid, "")
	f.Add(valid[:len(valid)/2], "")
	f.Add([]byte("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>"), "x")
	f.Add([]byte("<!DOCTYPE a [<!ENTITY b \"c\">]><a>&b;</a>"), "")
	f.Add([]byte{}, "relay")
	f.Add([]byte("<?xml version=\"1.0\"?><x:y xmlns:x=\"\"/>"), "")
	accepted := 0
	f.Fuzz(func(t *testing.T, raw []byte, relay string) {
		res, err := sc.finish(e.ctx, raw, relay)
		if err == nil {
			accepted++
			if string(raw) != string(valid) || accepted > 1 || res.Profile.Email != "alice@example.com" {
				t.Fatalf("accepted fuzzed input (%d accepted): %q", accepted, raw)
			}
		}
	})
}
