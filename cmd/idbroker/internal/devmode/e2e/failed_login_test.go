package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestFailedSAMLLoginsSayWhy drives failed logins through the real SAML
// connector and the real broker, with responses the dev IdP signed and a
// test then broke, and checks that each authentication.failed event names
// the validation that failed, not "no application request".
func TestFailedSAMLLoginsSayWhy(t *testing.T) {
	issuer, dev, st, reg := startDevRegistry(t)
	ctx := context.Background()

	other, err := st.CreateTenant(ctx, store.Tenant{Name: "Other", Status: store.TenantActive})
	if err != nil {
		t.Fatal(err)
	}
	devCtx, otherCtx := store.WithTenant(ctx, dev.TenantID), store.WithTenant(ctx, other.ID)

	// Each login runs in a browser of its own: the dev IdP would
	// otherwise remember the user and skip its login page.
	var c *http.Client
	post := func(u string, v url.Values) (string, int) {
		t.Helper()
		resp, err := c.PostForm(u, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.StatusCode
	}
	// begin runs a login up to the dev IdP's auto-submitting form and
	// returns the ACS URL and the form the browser would post.
	begin := func() (string, url.Values) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c = &http.Client{Jar: jar}
		resp, err := c.Get(issuer + "/dev/app/login")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page, at := string(b), resp.Request.URL
		action := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)
		id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page)
		if action == nil || id == nil {
			t.Fatalf("no email page: %s", page)
		}
		ref, _ := url.Parse(unescape(action[1]))
		page, _ = post(at.ResolveReference(ref).String(), url.Values{"id": {unescape(id[1])}, "email": {"alice@example.com"}})
		ret := regexp.MustCompile(`name="return" value="([^"]+)"`).FindStringSubmatch(page)
		if ret == nil {
			t.Fatalf("no dev IdP page: %s", page)
		}
		page, _ = post(issuer+"/dev/idp/login", url.Values{"user": {"alice"}, "return": {unescape(ret[1])}})
		vals := url.Values{}
		for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			vals.Set(m[1], unescape(m[2]))
		}
		acs := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)
		if acs == nil || vals.Get("SAMLResponse") == "" {
			t.Fatalf("no SAMLResponse: %s", page)
		}
		return unescape(acs[1]), vals
	}
	// edit rewrites the SAMLResponse of vals.
	edit := func(vals url.Values, fn func(doc *etree.Document)) url.Values {
		t.Helper()
		raw, err := base64.StdEncoding.DecodeString(vals.Get("SAMLResponse"))
		if err != nil {
			t.Fatal(err)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil {
			t.Fatal(err)
		}
		fn(doc)
		out, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		v := url.Values{}
		for k := range vals {
			v.Set(k, vals.Get(k))
		}
		v.Set("SAMLResponse", base64.StdEncoding.EncodeToString(out))
		return v
	}
	// lastFailure is the reason_code and reason of the newest
	// authentication.failed event of the dev tenant.
	seen := 0
	lastFailure := func() (string, string) {
		t.Helper()
		evs, _, err := st.ListEvents(ctx, store.Page{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		var failed []store.Event
		for _, e := range evs {
			if e.Type == broker.EventAuthFailed && e.TenantID == dev.TenantID {
				failed = append(failed, e)
			}
		}
		if len(failed) != seen+1 {
			t.Fatalf("%d authentication.failed events, want %d", len(failed), seen+1)
		}
		seen++
		var d struct{ ReasonCode, Reason, RequestID string }
		var m map[string]any
		json.Unmarshal(failed[len(failed)-1].Data, &m)
		d.ReasonCode, _ = m["reason_code"].(string)
		d.Reason, _ = m["reason"].(string)
		d.RequestID, _ = m["request_id"].(string)
		if d.RequestID == "" {
			t.Errorf("event without the reference the user was shown: %v", m)
		}
		// The tenant's audit log has the same failure, with the same
		// reason and reference.
		rows, _, err := st.AuditEvents(devCtx, broker.EventAuthFailed, store.Page{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != seen {
			t.Fatalf("%d authentication.failed audit rows, want %d", len(rows), seen)
		}
		var row map[string]any
		json.Unmarshal(rows[0].Context, &row) // newest first
		if row["reason_code"] != d.ReasonCode || row["reason"] != d.Reason || rows[0].RequestID != d.RequestID ||
			rows[0].Actor.Type != "user" || rows[0].Actor.IP == "" || rows[0].Resource.ID != dev.ConnectionID {
			t.Errorf("audit row %+v (context %v) does not match the event %v", rows[0], row, m)
		}
		return d.ReasonCode, d.Reason
	}

	for _, tt := range []struct {
		name     string
		setup    func()
		mutate   func(doc *etree.Document)
		twice    bool
		want     string
		contains string
	}{
		// The dev tenant's domain moves to another tenant: alice@example.com
		// now belongs to someone else.
		{name: "email in another tenant's domain", want: "email_domain_not_allowed", contains: "example.com",
			setup: func() {
				if err := st.DeleteDomain(devCtx, "example.com"); err != nil {
					t.Fatal(err)
				}
				if _, err := st.AddDomain(otherCtx, store.Domain{Domain: "example.com", VerificationToken: "idb-x"}); err != nil {
					t.Fatal(err)
				}
				if _, err := st.MarkDomainVerified(otherCtx, "example.com"); err != nil {
					t.Fatal(err)
				}
				reg.ForgetTenant(dev.TenantID)
			}},
		// The dev IdP signs the assertion, as Entra ID and Okta do by
		// default (the dev connection does not ask for it encrypted). A
		// changed subject breaks its signature; if the NameID were not
		// found, the genuine response would sign in and the case fail.
		{name: "tampered assertion", want: "signature_invalid",
			mutate: func(doc *etree.Document) {
				if n := doc.FindElement("//Assertion/Subject/NameID"); n != nil {
					n.SetText("dev|mallory")
				}
			}},
		{name: "unsigned response", want: "signature_invalid",
			mutate: func(doc *etree.Document) {
				r := doc.Root()
				if sig := r.SelectElement("Signature"); sig != nil {
					r.RemoveChild(sig)
				}
				// The attacker sends an assertion of their own, unsigned,
				// in place of the IdP's.
				r.RemoveChild(assertionOf(r))
				a := r.CreateElement("saml:Assertion")
				a.CreateAttr("ID", "id-evil")
				a.CreateAttr("Version", "2.0")
				a.CreateElement("saml:Issuer").SetText(issuer + "/dev/idp/metadata")
				a.CreateElement("saml:Subject").CreateElement("saml:NameID").SetText("dev|mallory")
			}},
		{name: "wrapped assertion", want: "malformed_response", contains: "exactly one Assertion",
			mutate: func(doc *etree.Document) {
				// XSW: an unsigned assertion naming another user beside the
				// signed original. The Response itself is unsigned, so the
				// second assertion is refused before any signature is read.
				r := doc.Root()
				a := etree.NewElement("saml:Assertion")
				a.CreateAttr("ID", "id-evil")
				a.CreateAttr("Version", "2.0")
				a.CreateElement("saml:Subject").CreateElement("saml:NameID").SetText("dev|mallory")
				r.InsertChildAt(assertionOf(r).Index(), a)
			}},
		{name: "replayed response", twice: true, want: "replay", contains: "posted again"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The login begins (routed by email) before the setup.
			acs, vals := begin()
			if tt.setup != nil {
				tt.setup()
			}
			if tt.mutate != nil {
				vals = edit(vals, tt.mutate)
			}
			if tt.twice {
				if _, code := post(acs, vals); code != http.StatusOK {
					t.Fatalf("genuine response: %d", code)
				}
			}
			if body, code := post(acs, vals); code != http.StatusForbidden || strings.Contains(body, "alice@example.com") {
				t.Fatalf("broken response answered %d", code)
			}
			code, reason := lastFailure()
			if code != tt.want || !strings.Contains(reason, tt.contains) || strings.Contains(reason, "no application request") {
				t.Fatalf("failure recorded as %q (%s), want %s mentioning %q", code, reason, tt.want, tt.contains)
			}
		})
		if tt.setup != nil {
			// Give the domain back for the cases after.
			if err := st.DeleteDomain(otherCtx, "example.com"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.AddDomain(devCtx, store.Domain{Domain: "example.com", VerificationToken: "idb-y"}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.MarkDomainVerified(devCtx, "example.com"); err != nil {
				t.Fatal(err)
			}
			reg.ForgetTenant(dev.TenantID)
		}
	}
}

// assertionOf is the IdP's assertion in response r: encrypted or not,
// depending on the connection's settings.
func assertionOf(r *etree.Element) *etree.Element {
	if a := r.SelectElement("EncryptedAssertion"); a != nil {
		return a
	}
	return r.SelectElement("Assertion")
}
