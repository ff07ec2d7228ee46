package saml

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	// Inside this package, saml is crewjam's library.
	"github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// MaxACSBodyBytes caps the ACS POST. Real responses with hundreds of group
// attributes stay well under it.
const MaxACSBodyBytes = 512 << 10

// samlConnector is one SAML connection: its own crewjam ServiceProvider,
// configured for a broker rather than with the library's defaults.
type samlConnector struct {
	deps connections.Deps
	conn store.Connection
	cfg  Config
	// sp answers logins this SP started; unsolicited accepts IdP-initiated
	// ones and exists only when the connection allows them.
	sp          *saml.ServiceProvider
	unsolicited *saml.ServiceProvider
	mapping     connections.AttributeMapping
	skew        time.Duration
	// entraTenant is the Entra tenant id when the IdP is Entra ID (its
	// entity ID is https://sts.windows.net/{tenant-id}/): users who come
	// with an object id are keyed by tenant id + object id.
	entraTenant string
	// metadata is the SP metadata, built once: it depends only on what
	// open set (no validUntil), and the registry opens a new connector
	// for every version of the connection.
	metadata func() ([]byte, error)
}

// samlPending is the server-side record of a started login, keyed by the
// RelayState the IdP echoes back. It replaces a cookie: the IdP's POST to
// the ACS is cross-site, so a SameSite=Lax cookie would not come with it.
type samlPending struct {
	ConnectionID    string `json:"c"`
	SAMLRequestID   string `json:"s"`
	BrokerRequestID string `json:"b"`
}

// open builds the connector of a complete connection.
func open(deps connections.Deps, conn store.Connection) (*samlConnector, error) {
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	m := cfg.Missing()
	if cfg.SPCertificatePEM == "" {
		m = append(m, "sp_certificate_pem")
	}
	if len(m) > 0 {
		return nil, fmt.Errorf("%w: SAML connection %s is incomplete (missing %s)", connections.ErrConfig, conn.ID, strings.Join(m, ", "))
	}
	return build(deps, conn, cfg)
}

// openForMetadata builds enough of a connector to publish SP metadata,
// before the IdP side is known.
func openForMetadata(deps connections.Deps, conn store.Connection) (*samlConnector, error) {
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	return build(deps, conn, cfg)
}

func build(deps connections.Deps, conn store.Connection, cfg Config) (*samlConnector, error) {
	key, cert, err := parseSPKey(conn.Secrets[SecretSPKey], cfg.SPCertificatePEM)
	if err != nil {
		return nil, err
	}
	acs, _ := url.Parse(deps.URL(conn, "acs"))
	md, _ := url.Parse(deps.URL(conn, "metadata"))
	entityID := deps.URL(conn, "")

	nameID := saml.PersistentNameIDFormat
	switch cfg.RequestedNameIDFormat() {
	case NameIDEmail:
		nameID = saml.EmailAddressNameIDFormat
	case NameIDUnspecified:
		nameID = saml.UnspecifiedNameIDFormat
	}
	c := &samlConnector{deps: deps, conn: conn, cfg: cfg, skew: cfg.ClockSkew(),
		mapping: cfg.AttributeMapping.Resolve(connections.PresetGeneric), entraTenant: entraTenantOf(cfg.IdPEntityID)}
	c.sp = &saml.ServiceProvider{
		EntityID:    entityID,
		Key:         key,
		Certificate: cert,
		MetadataURL: *md,
		AcsURL:      *acs,
		IDPMetadata: idpEntityDescriptor(cfg),
		// Persistent (or email) NameIDs key users; the library's default,
		// transient, changes every login.
		AuthnNameIDFormat: nameID,
		// HTTP-POST only: no Artifact endpoint (it would make the ACS call
		// out to the IdP on an attacker's say-so).
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		RejectSHA1Signatures:             !cfg.AllowSHA1,
		// The registry's clock, never the package globals.
		Clock:                       dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: deps.Now}),
		ValidateAudienceRestriction: c.checkAudience,
		MetadataOmitValidUntil:      true,
		HTTPClient:                  deps.HTTPClient,
	}
	if cfg.SignsRequests() {
		// Signed AuthnRequests, with SHA-256, only when the IdP or the
		// tenant asks: each is an RSA private-key operation per login.
		c.sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	if cfg.AllowIdPInitiated {
		u := *c.sp
		u.AllowIDPInitiated = true
		c.unsolicited = &u
	}
	c.metadata = sync.OnceValues(c.buildMetadata)
	return c, nil
}

// checkAudience replaces the library's audience check to say what the
// audience was: the message tenant admins need to fix a misconfigured IdP.
func (c *samlConnector) checkAudience(a *saml.Assertion) error {
	want := c.sp.EntityID
	if a.Conditions == nil || len(a.Conditions.AudienceRestrictions) == 0 {
		return audienceError{fmt.Errorf("%w: the assertion has no AudienceRestriction; expected %q", connections.ErrAudienceMismatch, want)}
	}
	for i := range a.Conditions.AudienceRestrictions {
		var got []string
		ok := false
		for _, v := range a.Conditions.AudienceRestrictions[i].AllAudiences() {
			got = append(got, v.Value)
			ok = ok || v.Value == want
		}
		if !ok {
			return audienceError{connections.Mismatch(connections.ErrAudienceMismatch, "Audience", strings.Join(got, " "), want)}
		}
	}
	return nil
}

// audienceError is checkAudience's refusal, found again under the
// library's own wording ("audience restriction validation failed: …") so
// that the tenant admin reads ours alone.
type audienceError struct{ error }

func (e audienceError) Unwrap() error { return e.error }

// Metadata is the SP metadata XML of the connection. The bytes are shared:
// callers must not modify them.
func (c *samlConnector) Metadata() ([]byte, error) { return c.metadata() }

func (c *samlConnector) buildMetadata() ([]byte, error) {
	md := c.sp.Metadata()
	if !c.cfg.EncryptAssertions {
		// Without an encryption key in the metadata, IdPs send the
		// assertion in the clear (over TLS, signed); an IdP that encrypts
		// anyway is still understood.
		for i := range md.SPSSODescriptors {
			d := &md.SPSSODescriptors[i]
			kept := d.KeyDescriptors[:0]
			for _, kd := range d.KeyDescriptors {
				if kd.Use != "encryption" {
					kept = append(kept, kd)
				}
			}
			d.KeyDescriptors = kept
		}
	}
	// The SP certificate stays published even when requests go unsigned:
	// IdPs and admins identify the SP by it.
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		signing := false
		for _, kd := range d.KeyDescriptors {
			signing = signing || kd.Use == "signing"
		}
		if !signing && c.sp.Certificate != nil {
			d.KeyDescriptors = append(d.KeyDescriptors, saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{
				X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.sp.Certificate.Raw)}}}}})
		}
	}
	b, err := xmlMarshal(md)
	if err != nil {
		return nil, fmt.Errorf("SP metadata: %w", err)
	}
	return b, nil
}

// Begin sends the browser to the IdP with an AuthnRequest (signed when
// the IdP or the tenant asks), by redirect or auto-submitting form
// according to the IdP's binding.
func (c *samlConnector) Begin(ctx context.Context, w http.ResponseWriter, r *http.Request, req connections.LoginRequest) error {
	binding := saml.HTTPRedirectBinding
	if c.cfg.IdPSSOBinding == BindingPost {
		binding = saml.HTTPPostBinding
	}
	sp := *c.sp
	if req.ForceAuthn {
		t := true
		sp.ForceAuthn = &t
	}
	authn, err := sp.MakeAuthenticationRequest(c.cfg.IdPSSOURL, binding, saml.HTTPPostBinding)
	if err != nil {
		return fmt.Errorf("saml: make AuthnRequest: %w", err)
	}
	// LoginHint is not sent as a Subject: IdPs that honour it refuse the
	// login when the user signs in as someone else, and the email the
	// broker routed by is checked against the tenant's domains anyway.
	// The RelayState is the AuthnRequest's own random id, so that the
	// login is found again by the response's InResponseTo when an IdP
	// does not return the RelayState (PingFederate set up for its TARGET
	// parameter, AD FS reached through the wrong endpoint, several small
	// IdPs), with no second record to write.
	relay := authn.ID
	rec, _ := json.Marshal(samlPending{ConnectionID: c.conn.ID, SAMLRequestID: authn.ID, BrokerRequestID: req.RequestID})
	if err := c.deps.Once.Put(ctx, pendingKey(relay), rec, c.deps.LoginTTL); err != nil {
		return fmt.Errorf("saml: remember login: %w", err)
	}
	if binding == saml.HTTPRedirectBinding {
		var u *url.URL
		if sp.SignatureMethod == "" {
			u, err = redirectURL(authn, relay)
		} else {
			u, err = authn.Redirect(relay, &sp)
		}
		if err != nil {
			return fmt.Errorf("saml: redirect binding: %w", err)
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
		return nil
	}
	form, err := postHTML(authn, relay)
	if err != nil {
		return fmt.Errorf("saml: POST binding: %w", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err = fmt.Fprintf(w, "<!DOCTYPE html><html><body>%s</body></html>", form)
	return err
}

// Finish validates the ACS POST.
func (c *samlConnector) Finish(ctx context.Context, r *http.Request) (connections.Result, error) {
	raw, relay, err := readACSForm(r)
	if err != nil {
		return connections.Result{}, err
	}
	return c.finish(ctx, raw, relay)
}

// readACSForm reads SAMLResponse and RelayState from a capped POST body.
// The Artifact and SimpleSign bindings are not accepted.
func readACSForm(r *http.Request) (xmlBytes []byte, relay string, err error) {
	if r.Method != http.MethodPost {
		return nil, "", fmt.Errorf("%w: the ACS accepts only the HTTP-POST binding", connections.ErrMalformed)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, MaxACSBodyBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", fmt.Errorf("%w: ACS body larger than %d bytes", connections.ErrMalformed, MaxACSBodyBytes)
		}
		return nil, "", fmt.Errorf("%w: ACS form: %v", connections.ErrMalformed, err)
	}
	if r.PostForm.Has("SAMLart") || r.PostForm.Has("Signature") || r.PostForm.Has("SigAlg") {
		return nil, "", fmt.Errorf("%w: only the HTTP-POST binding is accepted (no Artifact or SimpleSign)", connections.ErrMalformed)
	}
	if len(r.PostForm["SAMLResponse"]) != 1 || len(r.PostForm["RelayState"]) > 1 {
		return nil, "", fmt.Errorf("%w: expected exactly one SAMLResponse", connections.ErrMalformed)
	}
	enc := r.PostForm.Get("SAMLResponse")
	if strings.ContainsAny(enc, " \t") {
		// DecodeString skips CR and LF itself; IdPs that wrap with other
		// white space are rare enough to pay for the copy.
		enc = strings.Join(strings.Fields(enc), "")
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, "", fmt.Errorf("%w: SAMLResponse is not base64", connections.ErrMalformed)
	}
	return b, r.PostForm.Get("RelayState"), nil
}

func (c *samlConnector) finish(ctx context.Context, raw []byte, relay string) (connections.Result, error) {
	if hasDTD(raw) {
		return connections.Result{}, fmt.Errorf("%w: the response contains a DTD", connections.ErrMalformed)
	}
	// Comments inside signed content are dropped by canonicalisation, so a
	// NameID split by a comment verifies yet may be read as its first half
	// (CVE-2017-11427 family). No IdP needs comments in a response.
	if bytes.Contains(raw, []byte("<!--")) {
		return connections.Result{}, fmt.Errorf("%w: the response contains an XML comment", connections.ErrMalformed)
	}
	// Junk must be told apart from a response that fails validation before
	// anything else is looked at: it is refused without being recorded
	// for the tenant (anyone can post it), and never reaches the
	// login-state lookup.
	issued, inResponseTo, err := checkResponseXML(raw)
	if err != nil {
		return connections.Result{}, err
	}

	sp, possible, brokerReq, spent, err := c.pending(ctx, relay, inResponseTo)
	if err != nil {
		return connections.Result{}, err
	}
	if spent != nil {
		return connections.Result{}, c.replayed(ctx, raw, issued, possible, spent)
	}
	// From here on a failure still names the login it answers, so that
	// the broker (or the portal, for a test login) can say which one failed.
	failed := connections.Result{RequestID: brokerReq}
	if lag := c.libraryLag(issued); lag > 0 {
		shifted := *sp
		shifted.Clock = dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: func() time.Time { return c.deps.Now().Add(-lag) }})
		sp = &shifted
	}
	assertion, err := sp.ParseXMLResponse(raw, possible, sp.AcsURL)
	// certificateAhead parses the trusted certificates again: only this
	// refusal asks for it, not every sign-in.
	if errors.Is(err, saml.ErrCertificateNotValidNow) {
		if ahead := c.certificateAhead(); ahead > 0 {
			// The IdP signs with a certificate whose validity starts
			// within the connection's skew in our future: it made it
			// moments ago by a clock ahead of ours, which the skew allows.
			// The library knows no skew for it, so it validates again with
			// its clock that far ahead; every window is still checked
			// against our own clock (checkTimes) after the signature.
			shifted := *sp
			shifted.Clock = dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: func() time.Time { return c.deps.Now().Add(ahead) }})
			assertion, err = shifted.ParseXMLResponse(raw, possible, sp.AcsURL)
		}
	}
	if err != nil {
		err = classifySAMLError(err, raw, c.cfg.IdPEntityID, c.sp.AcsURL.String())
		if errors.Is(err, connections.ErrSignature) {
			if strings.Contains(err.Error(), "not valid at this time") {
				if start, ok := c.firstCertificateStart(); ok {
					err = fmt.Errorf("%w; the IdP certificate the connection trusts becomes valid only at %s, %s ahead of our clock (this connection allows %s): the IdP's clock is ahead, or it signs with a certificate not yet meant for use",
						err, start.UTC().Format(time.RFC3339), start.Sub(c.deps.Now()).Round(time.Second), c.skew)
				}
			}
			if last, ok := c.allCertificatesExpired(); ok {
				err = fmt.Errorf("%w; every IdP certificate the connection trusts has expired (the last on %s): upload the IdP's current signing certificate or metadata",
					err, last.UTC().Format(time.RFC3339))
			}
			if c.cfg.IdPMetadataURL != "" && c.deps.Refresh != nil {
				c.deps.Refresh(c.conn)
			}
		}
		return failed, c.clockHint(err, issued)
	}
	if err := c.checkTimes(assertion); err != nil {
		return failed, c.clockHint(err, issued)
	}
	if err := c.checkReplay(ctx, assertion); err != nil {
		return failed, err
	}
	p, err := c.profile(ctx, assertion)
	if err != nil {
		return failed, err
	}
	res := connections.Result{RequestID: brokerReq, Profile: p}
	if brokerReq == "" {
		res.IdPInitiatedClientID, res.RelayState = c.cfg.IdPInitiatedClientID, relay
	}
	return res, nil
}

// checkResponseXML reports connections.ErrMalformed unless raw is well-formed XML
// whose root is a SAML 2.0 protocol Response, and returns the Response's
// IssueInstant as written (unverified: it only places the library's clock,
// see libraryLag), and the AuthnRequest it says it answers (InResponseTo;
// unverified too: it only finds the login an IdP sent back without its
// RelayState, which the library then holds the response to, or names why
// a response with no login to match is refused).
func checkResponseXML(raw []byte) (issueInstant, inResponseTo string, err error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	root := false
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", fmt.Errorf("%w: the response is not well-formed XML", connections.ErrMalformed)
		}
		if se, ok := tok.(xml.StartElement); ok && !root {
			root = true
			if se.Name.Local != "Response" || !declaresNS(se, se.Name.Space, "urn:oasis:names:tc:SAML:2.0:protocol") {
				return "", "", fmt.Errorf("%w: the XML is not a SAML 2.0 Response", connections.ErrMalformed)
			}
			for _, a := range se.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "IssueInstant":
					issueInstant = a.Value
				case a.Name.Space == "" && a.Name.Local == "InResponseTo":
					inResponseTo = a.Value
				}
			}
		}
	}
	if !root {
		return "", "", fmt.Errorf("%w: the response has no XML element", connections.ErrMalformed)
	}
	return issueInstant, inResponseTo, nil
}

// libraryLag is how far back the SAML library's clock is set for a
// response issued at issueInstant. The library refuses a response issued
// more than saml.MaxIssueDelay (90 s) ago whatever the connection allows,
// so an IdP whose clock is behind ours by more than that was refused even
// with a larger clock_skew_seconds. Its clock is moved back just enough to
// accept an IdP behind by up to the connection's skew, never more, and only
// for a response dated in the past (a second more than the lag, for the
// time the library's own checks take): every window is still checked
// against our own clock with the connection's skew (checkTimes), after the
// signature.
func (c *samlConnector) libraryLag(issueInstant string) time.Duration {
	ii, err := time.Parse(time.RFC3339Nano, issueInstant)
	if err != nil {
		return 0
	}
	return min(max(c.deps.Now().Sub(ii)-saml.MaxIssueDelay+time.Second, 0), max(c.skew-saml.MaxIssueDelay, 0))
}

// declaresNS reports whether the root element's prefix (RawToken leaves it
// unresolved in Name.Space) is bound to ns on the element itself, where
// every IdP binds it.
func declaresNS(se xml.StartElement, prefix, ns string) bool {
	for _, a := range se.Attr {
		switch {
		case prefix == "" && a.Name.Space == "" && a.Name.Local == "xmlns",
			prefix != "" && a.Name.Space == "xmlns" && a.Name.Local == prefix:
			if a.Value == ns {
				return true
			}
		}
	}
	return false
}

// pending finds the login this response answers, by RelayState, or by
// the AuthnRequest id the response says it answers (inResponseTo) when
// the RelayState names none (an IdP that drops or replaces it: Begin
// sends the AuthnRequest id as the RelayState, so both find the same
// record), and picks the SP that validates it: strict for a login this SP
// started; the unsolicited one, with no request ids, for an IdP-initiated
// login. Without inResponseTo, a RelayState that names no login here is
// an IdP's own (Okta's Default RelayState, Entra's Relay State, a Google
// Start URL) on an IdP-initiated sign-in.
//
// A login found is spent at once, its record kept a while under
// spentPendingKey: a response posted again finds that record instead,
// and spent is the refusal it gets unless replayed shows it to be the
// same signed assertion (see replayed).
func (c *samlConnector) pending(ctx context.Context, relay, inResponseTo string) (sp *saml.ServiceProvider, possible []string, brokerReq string, spent, err error) {
	keys := make([]string, 0, 2)
	for i, key := range []string{relay, inResponseTo} {
		if key == "" || len(key) > 128 || (i == 1 && key == relay) {
			continue
		}
		keys = append(keys, key)
		b, err := c.deps.Once.Spend(ctx, pendingKey(key), spentPendingKey(key), c.spentPendingTTL())
		switch {
		case err == nil:
			var rec samlPending
			if json.Unmarshal(b, &rec) != nil || rec.ConnectionID != c.conn.ID {
				return nil, nil, "", nil, fmt.Errorf("%w: the login this response answers belongs to another connection", connections.ErrRequestMismatch)
			}
			return c.sp, []string{rec.SAMLRequestID}, rec.BrokerRequestID, nil, nil
		case !errors.Is(err, sessions.ErrNotFound):
			return nil, nil, "", nil, fmt.Errorf("%w: login state: %w", connections.ErrUnavailable, err)
		}
	}
	if inResponseTo != "" {
		// An answer to an AuthnRequest that is not (or no longer) known
		// here is no IdP-initiated login, whatever the connection allows.
		what := "no RelayState"
		if relay != "" {
			what = "a RelayState"
		}
		refused := fmt.Errorf("%w: the response answers AuthnRequest %q, with %s, and no login started here is waiting for it (unknown, expired or already used)",
			connections.ErrRequestMismatch, truncateID(inResponseTo), what)
		for _, key := range keys {
			b, err := c.deps.Once.Peek(ctx, spentPendingKey(key))
			switch {
			case err == nil:
				var rec samlPending
				if json.Unmarshal(b, &rec) != nil || rec.ConnectionID != c.conn.ID {
					return nil, nil, "", nil, refused
				}
				return c.sp, []string{rec.SAMLRequestID}, "", refused, nil
			case !errors.Is(err, sessions.ErrNotFound):
				return nil, nil, "", nil, fmt.Errorf("%w: login state: %w", connections.ErrUnavailable, err)
			}
		}
		return nil, nil, "", nil, refused
	}
	if c.unsolicited == nil {
		return nil, nil, "", nil, fmt.Errorf("%w: the response answers no login started here (started from the IdP's dashboard or portal): start from the application, or have IdP-initiated logins accepted on this connection (its allow_idp_initiated setting, which the application's vendor sets)", connections.ErrIdPInitiated)
	}
	return c.unsolicited, nil, "", nil, nil
}

// replayed refuses a response to a login already spent (refused, the
// refusal pending made): with connections.ErrReplay when it is a signed
// assertion this SP accepted for that login before, its id in the replay
// cache (a browser's back button, a second post of a captured response),
// as an IdP-initiated assertion posted again is refused. Only a response
// that verifies for that login is called a replay: anything else, of
// which nothing can be trusted, keeps refused (request_mismatch), so that
// no post can make the tenant admin read of a replay that was not one.
// Nothing is accepted here, whatever the checks say: the login is spent.
func (c *samlConnector) replayed(ctx context.Context, raw []byte, issued string, possible []string, refused error) error {
	sp := c.sp
	if lag := c.libraryLag(issued); lag > 0 {
		shifted := *sp
		shifted.Clock = dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: func() time.Time { return c.deps.Now().Add(-lag) }})
		sp = &shifted
	}
	assertion, err := sp.ParseXMLResponse(raw, possible, sp.AcsURL)
	if err != nil || c.checkTimes(assertion) != nil {
		return refused
	}
	// checkReplay records an id it had not seen: harmless, as this
	// response is refused whatever it says.
	switch err := c.checkReplay(ctx, assertion); {
	case errors.Is(err, connections.ErrReplay):
		return fmt.Errorf("%w: the response to AuthnRequest %q was posted again after its sign-in was spent (a browser's back button or reload, or a captured response)",
			err, truncateID(possible[0]))
	case err != nil && !errors.Is(err, connections.ErrMalformed):
		return err
	}
	return refused
}

// truncateID is an id an IdP sent, cut for a message.
func truncateID(s string) string {
	if len(s) > 80 {
		return strings.ToValidUTF8(s[:80], "") + "…"
	}
	return s
}

// allCertificatesExpired reports whether every IdP certificate the
// connection trusts is past its NotAfter, and the latest NotAfter: a
// signature then fails for that reason alone, which the library words as
// "Cert is not valid at this time".
func (c *samlConnector) allCertificatesExpired() (time.Time, bool) {
	var last time.Time
	for _, cert := range c.cfg.IdPCertificates {
		if cert.NotAfter.After(last) {
			last = cert.NotAfter
		}
	}
	return last, len(c.cfg.IdPCertificates) > 0 && !c.deps.Now().Before(last)
}

// clockHint adds to a refusal for the response's dates (expired, not yet
// valid) how far the IdP's clock is from ours, read from the Response's
// IssueInstant as written, when that is outside the connection's skew:
// "expired at 11:41:41" leaves the tenant admin to work out that their
// IdP's clock is ten minutes slow. The IssueInstant is unverified here,
// which is fine for words in an error; nothing is accepted on it.
func (c *samlConnector) clockHint(err error, issueInstant string) error {
	if !errors.Is(err, connections.ErrExpired) && !errors.Is(err, connections.ErrNotYetValid) {
		return err
	}
	ii, perr := time.Parse(time.RFC3339Nano, issueInstant)
	if perr != nil {
		return err
	}
	now := c.deps.Now()
	d := ii.Sub(now).Round(time.Second)
	times := fmt.Sprintf("(its IssueInstant %s, our time %s; this connection allows %s)",
		ii.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), c.skew)
	switch {
	case d > c.skew:
		return fmt.Errorf("%w; the IdP dated the response %s ahead of our clock %s: the IdP's clock is fast, correct it (NTP)", err, d, times)
	case -d > c.skew:
		return fmt.Errorf("%w; the IdP dated the response %s behind our clock %s: the IdP's clock is slow, correct it (NTP), or the response took that long to arrive", err, -d, times)
	}
	return err
}

// certificateAhead is how far ahead of our clock the library's must be
// for the trusted IdP certificate that starts latest within the
// connection's skew to be valid (a second more, for the checks' own
// time), or 0 when none starts in that window.
func (c *samlConnector) certificateAhead() time.Duration {
	now := c.deps.Now()
	var ahead time.Duration
	for _, cert := range c.cfg.IdPCertificates {
		// Read again from the PEM: only this refusal's path needs the
		// start, which the stored config does not keep.
		block, _ := pem.Decode([]byte(cert.PEM))
		if block == nil {
			continue
		}
		x, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		if d := x.NotBefore.Sub(now); d > 0 && d <= c.skew {
			ahead = max(ahead, d)
		}
	}
	if ahead == 0 {
		return 0
	}
	return min(ahead+time.Second, c.skew)
}

// firstCertificateStart is the earliest start of the trusted IdP
// certificates when every one of them starts after our now.
func (c *samlConnector) firstCertificateStart() (time.Time, bool) {
	now := c.deps.Now()
	var first time.Time
	for _, cert := range c.cfg.IdPCertificates {
		block, _ := pem.Decode([]byte(cert.PEM))
		if block == nil {
			return time.Time{}, false
		}
		x, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !x.NotBefore.After(now) {
			return time.Time{}, false
		}
		if first.IsZero() || x.NotBefore.Before(first) {
			first = x.NotBefore
		}
	}
	return first, !first.IsZero()
}

// checkTimes applies the connection's own clock skew, which is tighter
// than the library's process-wide allowance.
func (c *samlConnector) checkTimes(a *saml.Assertion) error {
	now := c.deps.Now()
	if a.IssueInstant.After(now.Add(c.skew)) {
		return fmt.Errorf("%w: IssueInstant %s is ahead of our clock by more than %s", connections.ErrNotYetValid, a.IssueInstant.UTC().Format(time.RFC3339), c.skew)
	}
	if cond := a.Conditions; cond != nil {
		if !cond.NotBefore.IsZero() && cond.NotBefore.After(now.Add(c.skew)) {
			return fmt.Errorf("%w: NotBefore is %s, now is %s (skew %s)", connections.ErrNotYetValid, cond.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), c.skew)
		}
		if !cond.NotOnOrAfter.IsZero() && !now.Add(-c.skew).Before(cond.NotOnOrAfter) {
			return fmt.Errorf("%w: NotOnOrAfter was %s, now is %s (skew %s)", connections.ErrExpired, cond.NotOnOrAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), c.skew)
		}
	}
	if a.Subject != nil {
		for _, sc := range a.Subject.SubjectConfirmations {
			if d := sc.SubjectConfirmationData; d != nil && !d.NotOnOrAfter.IsZero() && !now.Add(-c.skew).Before(d.NotOnOrAfter) {
				return fmt.Errorf("%w: SubjectConfirmationData NotOnOrAfter was %s (skew %s)", connections.ErrExpired, d.NotOnOrAfter.UTC().Format(time.RFC3339), c.skew)
			}
		}
	}
	return nil
}

// checkReplay remembers the assertion id, shared by every node, until the
// assertion could no longer be accepted anyway.
func (c *samlConnector) checkReplay(ctx context.Context, a *saml.Assertion) error {
	if a.ID == "" {
		return fmt.Errorf("%w: assertion has no ID", connections.ErrMalformed)
	}
	until := a.IssueInstant.Add(saml.MaxIssueDelay + saml.MaxClockSkew)
	if a.Conditions != nil && a.Conditions.NotOnOrAfter.After(until) {
		until = a.Conditions.NotOnOrAfter
	}
	ttl := until.Sub(c.deps.Now()) + c.skew
	if ttl < time.Minute {
		ttl = time.Minute
	}
	if ttl > 24*time.Hour {
		ttl = 24 * time.Hour
	}
	fresh, err := c.deps.Once.Remember(ctx, "saml:assertion:"+c.conn.ID+":"+a.ID, ttl)
	if err != nil {
		return fmt.Errorf("%w: replay cache: %w", connections.ErrUnavailable, err)
	}
	if !fresh {
		return fmt.Errorf("%w: assertion %s was already used", connections.ErrReplay, a.ID)
	}
	return nil
}

// profile maps a validated assertion to a Profile.
func (c *samlConnector) profile(ctx context.Context, a *saml.Assertion) (connections.Profile, error) {
	p := connections.Profile{TenantID: c.conn.TenantID, ConnectionID: c.conn.ID, ConnectionType: c.conn.Type}
	for _, st := range a.AuthnStatements {
		if st.AuthnInstant.After(p.AuthTime) {
			p.AuthTime = st.AuthnInstant
		}
	}
	values := connections.Attrs{}
	raw := map[string]any{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			var vs []string
			for _, v := range at.Values {
				if v.Nil {
					continue
				}
				val := v.Value
				if v.NameID != nil {
					val = v.NameID.Value
				}
				vs = append(vs, val)
			}
			values[at.Name] = append(values[at.Name], vs...)
			if at.FriendlyName != "" && at.FriendlyName != at.Name {
				values[at.FriendlyName] = append(values[at.FriendlyName], vs...)
			}
			raw[at.Name] = vs
		}
	}
	var nameID, format string
	if a.Subject != nil && a.Subject.NameID != nil {
		nameID, format = strings.TrimSpace(a.Subject.NameID.Value), a.Subject.NameID.Format
	}
	raw["name_id"], raw["name_id_format"] = nameID, format

	p.IdPSubject = nameID
	if len(c.mapping.Subject) > 0 {
		p.IdPSubject = values.First(c.mapping.Subject)
	}
	entraKeyed := false
	if oid := values.First([]string{entraObjectIDClaim}); c.entraTenant != "" && oid != "" {
		key, err := c.entraSubject(values.First([]string{entraTenantIDClaim}), oid)
		if err != nil {
			return connections.Profile{}, err
		}
		// The NameID Entra sends by default is the UPN, which is renamed
		// and can be given to someone else later; the object id is the
		// person's for good. A subject the admin mapped is theirs to pick.
		if len(c.mapping.Subject) == 0 {
			if format != string(saml.TransientNameIDFormat) {
				p.PreviousIdPSubject = nameID
			}
			p.IdPSubject, p.KeyScheme, p.PersonAttribute, entraKeyed = key, c.entraTenant+":", entraObjectIDClaim, true
		}
	}
	transient := format == string(saml.TransientNameIDFormat)
	if (transient || nameID == "") && len(c.mapping.Subject) == 0 && !entraKeyed {
		// Shibboleth and the research federations send a transient
		// NameID, or none, and identify the user by an attribute of the
		// SAML V2.0 Subject Identifier profile (or, before it,
		// eduPersonTargetedID): stable, and issued by the IdP for good.
		if id := values.First(subjectIDAttributes); id != "" {
			p.IdPSubject = strings.TrimSpace(id)
		} else if transient {
			return connections.Profile{}, fmt.Errorf("%w: the IdP sent a transient NameID, which changes every login; configure it to send a persistent or email NameID, or to release the pairwise-id or subject-id attribute (Shibboleth)", connections.ErrProfile)
		}
	}
	if format == string(saml.EmailAddressNameIDFormat) {
		p.Email = nameID
	}
	p.Raw = raw
	c.mapping.Fill(&p, values)
	if p.Email == "" && strings.Contains(nameID, "@") && format != string(saml.PersistentNameIDFormat) {
		p.Email = c.mapping.GuestEmail(nameID, values)
	}
	return c.deps.Profiles.CheckProfile(ctx, p, connections.ProfileRules{AnyEmailDomain: c.cfg.AllowAnyEmailDomain})
}

// subjectIDAttributes identify a user whose NameID is transient or
// absent, in order: the SAML V2.0 Subject Identifier Attributes
// profile's pairwise-id (one per SP, as a persistent NameID is) and
// subject-id, then eduPersonTargetedID, which they replace.
var subjectIDAttributes = []string{
	"urn:oasis:names:tc:SAML:attribute:pairwise-id",
	"urn:oasis:names:tc:SAML:attribute:subject-id",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.10",
}

// Entra ID's claims naming the user's directory and the user in it, in
// every SAML assertion it issues.
const (
	entraObjectIDClaim = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	entraTenantIDClaim = "http://schemas.microsoft.com/identity/claims/tenantid"
)

// entraIssuers are the prefixes of Entra ID's SAML entity IDs: the
// global cloud's, the one operated by 21Vianet in China, Azure
// Government's.
var entraIssuers = []string{"https://sts.windows.net/", "https://sts.chinacloudapi.cn/", "https://login.microsoftonline.us/"}

// entraTenantOf is the tenant id in Entra ID's SAML entity ID
// (https://sts.windows.net/{tenant-id}/, or a national cloud's), "" for
// any other IdP.
func entraTenantOf(entityID string) string {
	var rest string
	ok := false
	for _, p := range entraIssuers {
		if rest, ok = strings.CutPrefix(entityID, p); ok {
			break
		}
	}
	if !ok {
		return ""
	}
	tid, ok := strings.CutSuffix(rest, "/")
	if !ok || !isGUID(tid) {
		return ""
	}
	return strings.ToLower(tid)
}

// entraSubject is the IdP subject of an Entra user: tenant id and object
// id, the shape the OIDC connector gives Entra users. The assertion's
// tenantid must be the connection's tenant: the issuer was checked with
// the signature, so another value means a claim set that is not Entra's
// own, which the admin is told about rather than trusted.
func (c *samlConnector) entraSubject(tid, oid string) (string, error) {
	if !strings.EqualFold(tid, c.entraTenant) {
		return "", fmt.Errorf("%w: the assertion's %s must be the tenant of the connection's issuer (restore Entra's default tenantid claim in Attributes & Claims, or connect this tenant's metadata)",
			connections.Mismatch(connections.ErrProfile, "Entra tenantid", tid, c.entraTenant), entraTenantIDClaim)
	}
	if !isGUID(oid) {
		return "", fmt.Errorf("%w: Entra's %s is %q, not an object id (restore Entra's default objectidentifier claim in Attributes & Claims)",
			connections.ErrProfile, entraObjectIDClaim, oid)
	}
	return c.entraTenant + ":" + strings.ToLower(oid), nil
}

// isGUID reports whether s is a GUID in its 8-4-4-4-12 hex form, as Entra
// writes tenant and object ids.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}

// classifySAMLError maps the library's classified errors onto ours,
// keeping its detail for the tenant admin. raw is the response, read again
// for what the library does not keep of an IdP's error status or of the
// issuer it names; idpEntityID is the issuer the connection expects.
func classifySAMLError(err error, raw []byte, idpEntityID, acsURL string) error {
	detail := err
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		detail = ire.PrivateErr
	}
	if ae := (audienceError{}); errors.As(err, &ae) {
		return ae.error
	}
	if errors.Is(err, saml.ErrDecryptionFailed) && strings.Contains(detail.Error(), "xmlenc#rsa-1_5") {
		// Okta and Shibboleth offer RSA1.5 key transport beside RSA-OAEP;
		// it is open to padding oracles and not decrypted.
		return fmt.Errorf("%w: %v; the IdP encrypts the assertion's key with RSA1.5 (PKCS #1 v1.5), which is refused: choose RSA-OAEP as its key transport algorithm",
			connections.ErrMalformed, detail)
	}
	if errors.Is(err, saml.ErrIssuerMismatch) {
		// The library says what it expected, not what came: the admin
		// needs both to see a typo, a trailing slash, or Entra's
		// https://sts.windows.net/{tenant}/ of another tenant.
		if got, ok := sentIssuer(raw, idpEntityID); ok {
			return fmt.Errorf("%w: the IdP entity ID in the connection is not the response's issuer (a typo, a trailing slash, another IdP or tenant)",
				connections.Mismatch(connections.ErrIssuerMismatch, "Issuer", got, idpEntityID))
		}
	}
	if errors.Is(err, saml.ErrExpired) || errors.Is(err, saml.ErrNotYetValid) {
		// The library says "assertion Conditions is expired": the admin
		// needs the dates the IdP wrote to see a slow clock or a window
		// too short.
		if w := validityWindow(raw); w != "" {
			detail = fmt.Errorf("%v (%s)", detail, w)
		}
	}
	if errors.Is(err, saml.ErrUnsupported) && strings.Contains(detail.Error(), "SHA-1") {
		// AD FS relying party trusts made long ago, and older Shibboleth
		// and PingFederate setups, still sign with SHA-1.
		return fmt.Errorf("%w: %v; have the IdP sign with SHA-256 (AD FS: the relying party trust's Advanced tab), or have SHA-1 accepted on this connection (its allow_sha1 setting: Accept SHA-1 signatures under Advanced settings in the setup portal, or the operator API)",
			connections.ErrSignature, detail)
	}
	if errors.Is(err, saml.ErrDestinationMismatch) {
		if e := destinationDetail(raw, acsURL); e != nil {
			return e
		}
	}
	if strings.Contains(detail.Error(), "signature element not present") {
		return fmt.Errorf("%w: the response and its assertion are unsigned (%v)", connections.ErrSignature, detail)
	}
	for _, m := range []struct{ lib, ours error }{
		{connections.ErrAudienceMismatch, connections.ErrAudienceMismatch},
		{saml.ErrAudienceMismatch, connections.ErrAudienceMismatch},
		{saml.ErrInvalidSignature, connections.ErrSignature},
		{saml.ErrUntrustedCertificate, connections.ErrSignature},
		{saml.ErrCertificateNotValidNow, connections.ErrSignature},
		{saml.ErrDestinationMismatch, connections.ErrDestinationMismatch},
		{saml.ErrRequestIDMismatch, connections.ErrRequestMismatch},
		{saml.ErrIssuerMismatch, connections.ErrIssuerMismatch},
		{saml.ErrExpired, connections.ErrExpired},
		{saml.ErrNotYetValid, connections.ErrNotYetValid},
		{saml.ErrAssertionReplayed, connections.ErrReplay},
		{saml.ErrUnsupported, connections.ErrSignature},
		{saml.ErrDecryptionFailed, connections.ErrMalformed},
		{saml.ErrMalformedMessage, connections.ErrMalformed},
		{saml.ErrMissingElement, connections.ErrMalformed},
	} {
		if errors.Is(err, m.lib) {
			if m.lib == m.ours {
				return detail
			}
			return fmt.Errorf("%w: %v", m.ours, detail)
		}
	}
	var bad saml.ErrBadStatus
	if errors.As(err, &bad) {
		return fmt.Errorf("%w: SAML status %s", connections.ErrIdPError, statusDetail(raw, bad.Status))
	}
	// goxmldsig's "signature element not present" is not classified by
	// crewjam; an unsigned assertion is a signature failure, not bad XML.
	if strings.Contains(detail.Error(), "signature") {
		return fmt.Errorf("%w: %v", connections.ErrSignature, detail)
	}
	return fmt.Errorf("%w: %v", connections.ErrMalformed, detail)
}

// sentIssuer is the first Issuer, of the Response or of its Assertion,
// that is not want, as sent (unverified: it only names what the IdP
// said), cut to a length an admin can read.
func sentIssuer(raw []byte, want string) (string, bool) {
	var r struct {
		Issuer    string `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
		Assertion struct {
			Issuer string `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
		} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
	}
	if xml.Unmarshal(raw, &r) != nil {
		return "", false
	}
	for _, got := range []string{r.Issuer, r.Assertion.Issuer} {
		if got = strings.TrimSpace(got); got != "" && got != want {
			if len(got) > 300 {
				got = strings.ToValidUTF8(got[:300], "") + "…"
			}
			return got, true
		}
	}
	return "", false
}

// validityWindow is the assertion's validity dates as the IdP wrote them
// ("Conditions NotBefore …, NotOnOrAfter …; SubjectConfirmationData
// NotOnOrAfter …"), unverified and only for words, or "" when raw has
// none in the clear (an encrypted assertion).
func validityWindow(raw []byte) string {
	var r struct {
		Assertion struct {
			Conditions struct {
				NotBefore    string `xml:"NotBefore,attr"`
				NotOnOrAfter string `xml:"NotOnOrAfter,attr"`
			} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Conditions"`
			Subject struct {
				Confirmations []struct {
					Data struct {
						NotOnOrAfter string `xml:"NotOnOrAfter,attr"`
					} `xml:"urn:oasis:names:tc:SAML:2.0:assertion SubjectConfirmationData"`
				} `xml:"urn:oasis:names:tc:SAML:2.0:assertion SubjectConfirmation"`
			} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Subject"`
		} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
	}
	if xml.Unmarshal(raw, &r) != nil {
		return ""
	}
	var parts []string
	add := func(name, v string) {
		if v = strings.TrimSpace(v); v != "" {
			parts = append(parts, name+" "+truncateID(v))
		}
	}
	add("Conditions NotBefore", r.Assertion.Conditions.NotBefore)
	add("Conditions NotOnOrAfter", r.Assertion.Conditions.NotOnOrAfter)
	if scs := r.Assertion.Subject.Confirmations; len(scs) > 0 {
		add("SubjectConfirmationData NotOnOrAfter", scs[0].Data.NotOnOrAfter)
	}
	if len(parts) == 0 {
		return ""
	}
	return "the IdP wrote " + strings.Join(parts, ", ")
}

// destinationDetail names, for a response refused for its Destination or
// its Recipient, the URL it was sent for beside the ACS URL (the
// library's message for the Recipient does not say it), and says so when
// the two differ only in letter case or a trailing slash, the usual
// slips when the URL was typed into the IdP rather than pasted. It reads
// raw unverified: only to name what the IdP said. nil when neither URL
// in raw is another one (an encrypted assertion's Recipient cannot be
// read here).
func destinationDetail(raw []byte, acs string) error {
	var r struct {
		Destination string `xml:"Destination,attr"`
		Assertion   struct {
			Subject struct {
				Confirmations []struct {
					Data struct {
						Recipient string `xml:"Recipient,attr"`
					} `xml:"urn:oasis:names:tc:SAML:2.0:assertion SubjectConfirmationData"`
				} `xml:"urn:oasis:names:tc:SAML:2.0:assertion SubjectConfirmation"`
			} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Subject"`
		} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
	}
	if xml.Unmarshal(raw, &r) != nil {
		return nil
	}
	what, got := "Destination", r.Destination
	if got == "" || got == acs {
		what, got = "SubjectConfirmationData Recipient", ""
		for _, sc := range r.Assertion.Subject.Confirmations {
			if rc := sc.Data.Recipient; rc != "" && rc != acs {
				got = rc
				break
			}
		}
	}
	if got == "" {
		return nil
	}
	if len(got) > 300 {
		got = strings.ToValidUTF8(got[:300], "") + "…"
	}
	hint := "set the ACS URL (Single sign-on URL, Reply URL) at the IdP to exactly the connection's ACS URL"
	if strings.EqualFold(strings.TrimSuffix(got, "/"), strings.TrimSuffix(acs, "/")) {
		hint = "they differ only in letter case or a trailing slash, which SAML compares exactly: " + hint + ", as the broker shows it"
	}
	return fmt.Errorf("%w; %s", connections.Mismatch(connections.ErrDestinationMismatch, what, got, acs), hint)
}

// samlStatusCode is a StatusCode with the ones nested in it.
type samlStatusCode struct {
	Value  string          `xml:"Value,attr"`
	Nested *samlStatusCode `xml:"StatusCode"`
}

// statusDetail renders the Status of a response the IdP failed: the
// top-level code (which the library keeps), then the second-level codes
// and the IdP's StatusMessage, which say why (InvalidNameIDPolicy,
// AuthnFailed, RequestDenied; "MSIS7070: …", "user not assigned"). The
// response has passed the library's Destination, InResponseTo and Issuer
// checks by then.
func statusDetail(raw []byte, top string) string {
	var r struct {
		Status struct {
			Code    samlStatusCode `xml:"StatusCode"`
			Message string         `xml:"StatusMessage"`
		} `xml:"Status"`
	}
	if xml.Unmarshal(raw, &r) != nil || r.Status.Code.Value != top {
		return top
	}
	out := top
	for c := r.Status.Code.Nested; c != nil; c = c.Nested {
		out += " / " + c.Value
	}
	msg := connections.OneLine(r.Status.Message, 300)
	if msg != "" {
		out += fmt.Sprintf(": %q", msg)
	}
	return out
}

// xmlMarshal encodes v as an XML document with its declaration.
func xmlMarshal(v any) ([]byte, error) {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}

// funcClock is a clockwork.Clock whose Now is the registry's, so that the
// SAML library and XML signature checks see the same time we do.
type funcClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c funcClock) Now() time.Time { return c.now() }
