package saml

import (
	"flag"
	"slices"
	"testing"

	"github.com/idbroker/idbroker/sessions"
)

// FuzzACS feeds arbitrary response bytes and RelayStates to the ACS
// validation. Nothing may panic, and whatever is accepted must carry
// exactly the profile the IdP signed: a mutation may touch what no
// signature covers (the Response's own attributes when only the assertion
// is signed), never who logs in.
//
// Each run must be deterministic for the fuzzer's coverage to mean
// anything, so the replay cache never reports a replay here (the same
// signed assertion, mutated, would otherwise be refused from its second
// run on, with different coverage each time); TestSAMLReplay covers
// replays.
func FuzzACS(f *testing.F) {
	capMinimization(f)
	e := newEnvWith(f, envOpts{Once: alwaysFresh{sessions.NewMemory()}})
	idp := newTestIdP(f, 0)
	conn := e.samlConn(idp, func(s *Settings) { s.AllowIdPInitiated = ptr(true) })
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		f.Fatal(err)
	}
	sc := cn.(*samlConnector)
	valid := idp.response(f, e.Issuer, conn, respOpts{signAssertion: true, issuedAt: e.Clock.Now()})
	want, err := sc.finish(e.Ctx, valid, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, "")
	f.Add(valid[:len(valid)/2], "")
	f.Add([]byte("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>"), "x")
	f.Add([]byte("<!DOCTYPE a [<!ENTITY b \"c\">]><a>&b;</a>"), "")
	f.Add([]byte{}, "relay")
	f.Add([]byte("<?xml version=\"1.0\"?><x:y xmlns:x=\"\"/>"), "")
	f.Fuzz(func(t *testing.T, raw []byte, relay string) {
		res, err := sc.finish(e.Ctx, raw, relay)
		if err != nil {
			return
		}
		got, exp := res.Profile, want.Profile
		if got.IdPSubject != exp.IdPSubject || got.Email != exp.Email || got.TenantID != exp.TenantID ||
			got.GivenName != exp.GivenName || got.FamilyName != exp.FamilyName || !slices.Equal(got.Groups, exp.Groups) {
			t.Fatalf("fuzzed input accepted with another profile: %+v\ninput: %q", got, raw)
		}
	})
}

// capMinimization bounds how long the fuzzer minimizes each new
// interesting input, unless -fuzzminimizetime was given. Go's default is
// 60 s per input, spent deleting every byte and byte range of it in turn
// (quadratic in its size); for a 7 KB signed response at a millisecond or
// more per instrumented ACS run that is the whole minute, during which the
// workers report 0 execs/s (golang/go#51484): the "stall" this target used
// to show after a few hundred runs. Minimizing only shrinks the corpus
// entry that gets saved; finding inputs does not depend on it.
func capMinimization(f *testing.F) {
	const name = "test.fuzzminimizetime"
	set := false
	flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	if !set && flag.Lookup(name) != nil {
		if err := flag.Set(name, "100x"); err != nil {
			f.Fatal(err)
		}
	}
}
