package portal

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

func (p *Portal) mountSSO(s *echo.Group) {
	if p.cfg.Connections == nil {
		return
	}
	g := s.Group("/sso", allow("sso"))
	g.GET("", p.ssoList)
	g.GET("/new", p.ssoChoose)
	g.POST("/new", p.ssoCreate)
	c := g.Group("/:conn", p.loadConnection)
	c.GET("", p.ssoContinue)
	c.GET("/setup", p.ssoSetup)
	c.GET("/idp", p.ssoIdPForm)
	c.POST("/idp", p.ssoIdPSave)
	c.GET("/attributes", p.ssoAttributes)
	c.POST("/attributes", p.ssoAttributesSave)
	c.GET("/test", p.ssoTestPage)
	c.GET("/test/start", p.ssoTestStart)
	c.GET("/test/result", p.ssoTestResult)
	c.POST("/activate", p.ssoActivate)
	c.POST("/deactivate", p.ssoDeactivate)
	c.POST("/delete", p.ssoDelete)
	c.POST("/name", p.ssoRename)
	c.GET("/metadata.xml", p.ssoMetadata)
	c.POST("/advanced", p.ssoAdvancedSave)
}

const connKey = "portal.connection"

// loadConnection finds :conn under the session's tenant only: another
// tenant's connection, like a malformed id, is 404.
func (p *Portal) loadConnection(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("conn")
		if !store.HasPrefix(id, store.PrefixConnection) {
			return errNotFound
		}
		conn, err := p.cfg.Store.Connection(c.Request().Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		c.Set(connKey, conn)
		return next(c)
	}
}

// wizard is what every wizard page shows: the connection, its IdP, its
// state and the values the IdP needs.
type wizard struct {
	Conn store.Connection
	IdP  idp
	View connections.View
	// SAML and OIDC are the type's part of View, for the templates; nil
	// for the other type.
	SAML      *saml.View
	OIDC      *oidc.View
	State     string // draft, tested, active, inactive
	Step      string
	Steps     []wizardStep
	Base      string
	Test      *testResult
	TestStale bool
	Cert      *certInfo
	Values    map[string]copyValue
	// Advanced is a SAML connection's advanced settings (advanced.go);
	// Fix, on a failed test's result, the one that may fix it.
	Advanced *advancedView
	Fix      *fixLink
	Errors   map[string]string
	Form     map[string]string
}

type wizardStep struct {
	Key, Label, Href string
	Current, Done    bool
}

type copyValue struct{ ID, Label, Value string }

// certInfo is the IdP certificate that expires first.
type certInfo struct {
	NotAfter          time.Time
	Subject           string
	Expiring, Expired bool
	DaysLeft          int
}

func (p *Portal) wizardFor(c echo.Context, step string) (*wizard, error) {
	conn := c.Get(connKey).(store.Connection)
	view, err := p.cfg.Connections.Describe(conn)
	if err != nil {
		return nil, err
	}
	w := &wizard{Conn: conn, IdP: idpOf(conn), View: view, Step: step, Base: Path + "/sso/" + conn.ID, Errors: map[string]string{}, Form: map[string]string{}}
	w.Test, w.TestStale, err = p.lastTest(c.Request().Context(), conn)
	if err != nil {
		return nil, err
	}
	w.SAML, w.OIDC = samlView(view), oidcView(view)
	if w.Advanced, err = advancedOf(conn); err != nil {
		return nil, err
	}
	w.State = stateOf(conn, w.Test, w.TestStale)
	w.Values = map[string]copyValue{}
	if sv := samlView(view); sv != nil {
		w.Values["acs"] = copyValue{"acs-url", "ACS URL", sv.ACSURL}
		w.Values["entity"] = copyValue{"sp-entity-id", "SP Entity ID", sv.SPEntityID}
		w.Values["metadata"] = copyValue{"sp-metadata-url", "SP metadata URL", sv.SPMetadataURL}
		now := p.cfg.Now()
		for _, cv := range sv.IdPCertificates {
			if w.Cert == nil || cv.NotAfter.Before(w.Cert.NotAfter) {
				w.Cert = &certInfo{NotAfter: cv.NotAfter, Subject: cv.Subject, Expiring: cv.Expiring, Expired: cv.Expired, DaysLeft: int(cv.NotAfter.Sub(now).Hours() / 24)}
			}
		}
	}
	if ov := oidcView(view); ov != nil {
		w.Values["redirect"] = copyValue{"redirect-uri", "Redirect URI", ov.RedirectURI}
	}
	complete := len(missingOf(view)) == 0
	for _, s := range []struct{ key, label string }{
		{"setup", "Create the app in " + w.IdP.Called()},
		{"idp", "Connect " + w.IdP.Called()},
		{"attributes", "Attributes"},
		{"test", "Test and activate"},
	} {
		ws := wizardStep{Key: s.key, Label: s.label, Href: w.Base + "/" + s.key, Current: s.key == step}
		switch s.key {
		case "idp":
			ws.Done = complete
		case "test":
			ws.Done = w.State == "active"
		case "setup", "attributes":
			ws.Done = complete
		}
		w.Steps = append(w.Steps, ws)
	}
	return w, nil
}

// stepTitle says which step of how many the page is, for its <title>:
// every step has the connection's name as its heading.
func (w *wizard) stepTitle() string {
	for i, s := range w.Steps {
		if s.Current {
			return fmt.Sprintf("Step %d of %d: %s", i+1, len(w.Steps), s.Label)
		}
	}
	return ""
}

func missingOf(v connections.View) []string {
	if sv := samlView(v); sv != nil {
		return sv.Missing
	}
	if ov := oidcView(v); ov != nil {
		return ov.Missing
	}
	return nil
}

// samlView is the SAML part of v, nil for another type.
func samlView(v connections.View) *saml.View {
	sv, _ := v.Details.(*saml.View)
	return sv
}

// oidcView is the OIDC part of v, nil for another type.
func oidcView(v connections.View) *oidc.View {
	ov, _ := v.Details.(*oidc.View)
	return ov
}

// stateOf is what the wizard calls the connection: active or off as
// stored; a draft is "tested" once a test login of its current settings
// passed.
func stateOf(conn store.Connection, t *testResult, stale bool) string {
	switch conn.Status {
	case store.ConnectionActive:
		return "active"
	case store.ConnectionInactive:
		return "inactive"
	}
	if t != nil && t.OK && !stale {
		return "tested"
	}
	return "draft"
}

type connRow struct {
	Conn  store.Connection
	IdP   idp
	State string
	Cert  *certInfo
}

func (p *Portal) ssoList(c echo.Context) error {
	ctx := c.Request().Context()
	conns, err := p.cfg.Store.Connections(ctx)
	if err != nil {
		return err
	}
	var rows []connRow
	for _, conn := range conns {
		c.Set(connKey, conn)
		w, err := p.wizardFor(c, "")
		if err != nil {
			return err
		}
		rows = append(rows, connRow{Conn: conn, IdP: w.IdP, State: w.State, Cert: w.Cert})
	}
	return p.render(c, http.StatusOK, "sso_list.html", "Single sign-on", map[string]any{"Rows": rows})
}

func (p *Portal) ssoChoose(c echo.Context) error {
	return p.render(c, http.StatusOK, "sso_choose.html", "Choose your identity provider", map[string]any{"IdPs": idps})
}

func (p *Portal) ssoCreate(c echo.Context) error {
	i, ok := idpByKey(c.FormValue("idp"))
	if !ok {
		return p.render(c, http.StatusBadRequest, "sso_choose.html", "Choose your identity provider", map[string]any{"IdPs": idps, "Error": "Choose one of the identity providers below."})
	}
	ctx := c.Request().Context()
	var s connections.Settings
	// The mapping preset remembers which IdP the admin chose.
	mapping := &connections.AttributeMapping{Preset: i.Preset}
	if i.Type == saml.Name {
		s = saml.Settings{AttributeMapping: mapping}.Request()
	} else {
		s = oidc.Settings{AttributeMapping: mapping}.Request()
	}
	conn, err := p.cfg.Connections.CreateConnection(ctx, i.Type, i.Name, s,
		p.connAudit(c, "connection.created", map[string]any{"type": i.Type, "idp": i.Key}))
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, Path+"/sso/"+conn.ID+"/setup")
}

// connAudit is the Hook that appends the audit row of a connection change
// in the change's own transaction.
func (p *Portal) connAudit(c echo.Context, action string, details map[string]any) connections.Hook {
	return func(ctx context.Context, conn store.Connection) error {
		return p.audit(ctx, c, action, connResource(conn), details)
	}
}

// statusHook is the Hook of turning a connection on or off: its audit
// row, and, when the last test login was of the settings still in place
// (fresh), that test carried over to the connection's new version. A
// status is not a setting: without this, the wizard would tell the admin
// who just activated a tested connection that its settings "changed
// since" and to test again.
func (p *Portal) statusHook(c echo.Context, action string, before store.Connection, fresh bool) connections.Hook {
	return p.keepTestHook(c, action, nil, before, fresh)
}

// keepTestHook is the Hook of a change that is not a setting (a status, a
// name): its audit row, and a fresh test login carried over to the
// connection's new version while its settings are those tested.
func (p *Portal) keepTestHook(c echo.Context, action string, details map[string]any, before store.Connection, fresh bool) connections.Hook {
	audit := p.connAudit(c, action, details)
	return func(ctx context.Context, conn store.Connection) error {
		if err := audit(ctx, conn); err != nil {
			return err
		}
		if !fresh || !bytes.Equal(before.Config, conn.Config) {
			return nil
		}
		t, err := p.cfg.Store.ConnectionTest(ctx, conn.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("carry the test login over: %w", err)
		}
		t.ConnUpdatedAt = conn.UpdatedAt
		return p.cfg.Store.SaveConnectionTest(ctx, t)
	}
}

func connResource(conn store.Connection) store.Resource {
	return store.Resource{Type: "connection", ID: conn.ID, Name: conn.Name}
}

// ssoContinue opens the wizard where the admin left off.
func (p *Portal) ssoContinue(c echo.Context) error {
	w, err := p.wizardFor(c, "")
	if err != nil {
		return err
	}
	step := "test"
	if len(missingOf(w.View)) > 0 {
		step = "setup"
	}
	return c.Redirect(http.StatusSeeOther, w.Base+"/"+step)
}

func (p *Portal) ssoSetup(c echo.Context) error {
	w, err := p.wizardFor(c, "setup")
	if err != nil {
		return err
	}
	return p.render(c, http.StatusOK, "sso_setup.html", w.Conn.Name, w)
}

func (p *Portal) ssoIdPForm(c echo.Context) error {
	w, err := p.wizardFor(c, "idp")
	if err != nil {
		return err
	}
	if sv := samlView(w.View); sv != nil {
		w.Form["metadata_url"] = sv.IdPMetadataURL
		w.Form["entity_id"] = sv.IdPEntityID
		w.Form["sso_url"] = sv.IdPSSOURL
	}
	if ov := oidcView(w.View); ov != nil {
		w.Form["issuer"] = ov.Issuer
		w.Form["client_id"] = ov.ClientID
	}
	return p.render(c, http.StatusOK, "sso_idp.html", w.Conn.Name, w)
}

// maxMetadata caps an uploaded metadata file.
const maxMetadata = 1 << 20

// ssoIdPSave checks what the admin entered, in plain words per field,
// before and after handing it to the connection.
func (p *Portal) ssoIdPSave(c echo.Context) error {
	w, err := p.wizardFor(c, "idp")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u := connections.Update{}
	if w.Conn.Status == store.ConnectionDraft {
		draft := store.ConnectionDraft
		u.Status = &draft
	}
	method := c.FormValue("method")
	w.Form["method"] = method
	switch w.Conn.Type {
	case saml.Name:
		s := &saml.Settings{}
		switch method {
		case "file":
			fh, err := c.FormFile("metadata_file")
			if err != nil {
				w.Errors["metadata_file"] = "Choose the metadata file your identity provider gave you."
				break
			}
			f, err := fh.Open()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
			f.Close()
			if err != nil {
				return err
			}
			if len(b) > maxMetadata {
				w.Errors["metadata_file"] = "This file is larger than 1 MB; IdP metadata is much smaller. Check that you chose the right file."
				break
			}
			// A file saved as UTF-16 (Windows PowerShell's Out-File) or
			// in another declared encoding: UTF-8 before anything reads
			// it, and before it travels in a string.
			if b, err = saml.MetadataUTF8(b); err != nil {
				w.Errors["metadata_file"] = upperFirst(connections.Message(err)) + "."
				break
			}
			if msg := p.checkMetadata(b, w); msg != "" {
				w.Errors["metadata_file"] = msg
				break
			}
			x := string(b)
			s.IdPMetadataXML = &x
		case "url":
			v := strings.TrimSpace(c.FormValue("metadata_url"))
			w.Form["metadata_url"] = v
			if v == "" {
				w.Errors["metadata_url"] = "Enter the address of your IdP's metadata."
				break
			}
			s.IdPMetadataURL = &v
		case "manual":
			entity, sso, certPEM := strings.TrimSpace(c.FormValue("entity_id")), strings.TrimSpace(c.FormValue("sso_url")), strings.TrimSpace(c.FormValue("certificate"))
			if certPEM == "" {
				// The certificate as the file the IdP gave: AD FS exports
				// its token-signing certificate as DER by default, Entra
				// offers "Certificate (Raw)" (DER) beside "Certificate
				// (Base64)" (PEM), neither of which an admin can paste.
				text, msg, err := certificateUpload(c)
				if err != nil {
					return err
				}
				if msg != "" {
					w.Errors["certificate"] = msg
				}
				certPEM = text
			}
			w.Form["entity_id"], w.Form["sso_url"], w.Form["certificate"] = entity, sso, certPEM
			if entity == "" {
				w.Errors["entity_id"] = "Enter your IdP's entity ID (also called Issuer or Identifier)."
			}
			if sso == "" {
				w.Errors["sso_url"] = "Enter your IdP's sign-in URL (SAML 2.0 single sign-on endpoint)."
			}
			if msg := p.checkCertificatePEM(certPEM); msg != "" && w.Errors["certificate"] == "" {
				w.Errors["certificate"] = msg
			}
			s.IdPEntityID, s.IdPSSOURL = &entity, &sso
			s.IdPCertificatesPEM = &saml.PEMList{certPEM}
		default:
			w.Errors[""] = "Choose how to connect your IdP: upload its metadata, give its metadata URL, or enter the details by hand."
		}
		u.Settings = s.Request()
	case oidc.Name:
		iss, id, secret := strings.TrimSpace(c.FormValue("issuer")), strings.TrimSpace(c.FormValue("client_id")), c.FormValue("client_secret")
		w.Form["issuer"], w.Form["client_id"] = iss, id
		if iss == "" {
			w.Errors["issuer"] = "Enter your IdP's issuer URL (for example https://login.example.com)."
		}
		if id == "" {
			w.Errors["client_id"] = "Enter the client ID your IdP gave the application."
		}
		if ov := oidcView(w.View); secret == "" && (ov == nil || !ov.ClientSecretSet) {
			w.Errors["client_secret"] = "Enter the client secret your IdP gave the application."
		}
		s := oidc.Settings{Issuer: &iss, ClientID: &id}
		if secret != "" {
			s.ClientSecret = &secret
		}
		u.Settings = s.Request()
	}
	if len(w.Errors) == 0 {
		_, err := p.cfg.Connections.UpdateConnection(ctx, w.Conn.ID, u,
			p.connAudit(c, "connection.updated", map[string]any{"idp_settings": method}))
		if err == nil {
			return p.redirectFlash(c, w.Base+"/attributes", "saved")
		}
		if !errors.Is(err, connections.ErrConfig) && !errors.Is(err, connections.ErrUpstream) {
			return err
		}
		field, msg := configError(err, w.Conn.Type, method)
		w.Errors[field] = msg
	}
	p.keepClientSecret(c, w)
	return p.render(c, http.StatusUnprocessableEntity, "sso_idp.html", w.Conn.Name, w)
}

// keepClientSecret saves the client secret of an OIDC step 2 that failed
// for another field, so that the admin need not enter it again: Entra and
// Okta show a new secret's value once, and a typo in the issuer would
// otherwise cost the admin a new secret. Only the secret is saved (what
// else was typed is shown again), and only when the connection takes it on
// its own; the page then says a secret is saved. A secret the connection
// blamed is not kept, nor one for a connection that signs people in: a
// new secret beside the old client ID would break their sign-ins.
func (p *Portal) keepClientSecret(c echo.Context, w *wizard) {
	secret := c.FormValue("client_secret")
	if w.Conn.Type != oidc.Name || w.Conn.Status != store.ConnectionDraft || secret == "" || w.Errors["client_secret"] != "" {
		return
	}
	draft := store.ConnectionDraft
	u := connections.Update{Status: &draft, Settings: oidc.Settings{ClientSecret: &secret}.Request()}
	conn, err := p.cfg.Connections.UpdateConnection(c.Request().Context(), w.Conn.ID, u,
		p.connAudit(c, "connection.updated", map[string]any{"idp_settings": "client_secret"}))
	if err != nil {
		return // the page says what to fix; the secret is asked for again
	}
	if view, err := p.cfg.Connections.Describe(conn); err == nil {
		w.Conn, w.View, w.OIDC = conn, view, oidcView(view)
	}
}

// configError turns a connections configuration error into the form field
// to blame and a sentence.
func configError(err error, typ store.ConnectionType, method string) (field, msg string) {
	msg = err.Error()
	for _, prefix := range []string{connections.ErrConfig.Error() + ": ", connections.ErrUpstream.Error() + ": "} {
		if i := strings.LastIndex(msg, prefix); i >= 0 {
			msg = msg[i+len(prefix):]
		}
	}
	fields := []struct{ needle, field string }{
		{"idp_metadata_url", "metadata_url"}, {"idp_sso_url", "sso_url"}, {"idp_entity_id", "entity_id"},
		{"certificate", "certificate"}, {"client_secret", "client_secret"}, {"client_id", "client_id"}, {"issuer", "issuer"},
	}
	for _, f := range fields {
		if strings.Contains(msg, f.needle) {
			field = f.field
			break
		}
	}
	switch {
	case field == "certificate" && method != "manual":
		field = map[string]string{"file": "metadata_file", "url": "metadata_url"}[method]
	case field == "" && typ == saml.Name && method == "file":
		field = "metadata_file"
	case field == "" && typ == saml.Name && method == "url":
		field = "metadata_url"
	}
	return field, upperFirst(apiNames.Replace(msg)) + "."
}

// apiNames puts the form's words for the operator API's field names that
// the connectors' messages use. The names of client authentication
// methods, which begin like a field's, are kept as they are (a replacer
// tries its pairs in order at each position).
var apiNames = strings.NewReplacer(
	// The connector's SHA-1 refusal names the setting for whoever reads
	// it (the portal's logs, the API); on the test result, the step.
	"its allow_sha1 setting: Accept SHA-1 signatures under Advanced settings in the setup portal, or the operator API", "Accept SHA-1 signatures, under Advanced settings on the Test and activate step",
	"client_secret_basic", "client_secret_basic", "client_secret_post", "client_secret_post", "idp_metadata_url", "the metadata URL", "idp_sso_url", "the sign-in URL", "idp_entity_id", "the entity ID",
	"idp_certificates_pem", "the certificate", "client_secret", "the client secret", "client_id", "the client ID")

func upperFirst(s string) string {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// metadataDoc is just enough of SAML metadata to tell an IdP's from an
// SP's and to read its certificates' dates.
type metadataDoc struct {
	XMLName  xml.Name
	EntityID string        `xml:"entityID,attr"`
	IdP      []roleDoc     `xml:"IDPSSODescriptor"`
	SP       []roleDoc     `xml:"SPSSODescriptor"`
	Entities []metadataDoc `xml:"EntityDescriptor"`
}

type roleDoc struct {
	Keys []keyDoc `xml:"KeyDescriptor"`
}

// keyDoc is a KeyDescriptor: its use ("signing", "encryption", or none
// for both) and its certificates.
type keyDoc struct {
	Use   string   `xml:"use,attr"`
	Certs []string `xml:"KeyInfo>X509Data>X509Certificate"`
}

// signingCerts are the certificates of a role's keys that sign: AD FS
// lists an encryption certificate beside its token-signing one, and only
// the signing ones check a response (as the connection reads them).
func (r roleDoc) signingCerts() []string {
	var out []string
	for _, k := range r.Keys {
		if k.Use == "" || k.Use == "signing" {
			out = append(out, k.Certs...)
		}
	}
	return out
}

// checkMetadata says in plain words what is wrong with uploaded
// metadata, or "" when it looks like usable IdP metadata.
func (p *Portal) checkMetadata(b []byte, w *wizard) string {
	var doc metadataDoc
	if err := xml.Unmarshal(b, &doc); err != nil || (doc.XMLName.Local != "EntityDescriptor" && doc.XMLName.Local != "EntitiesDescriptor") {
		return "This file is not SAML metadata (an XML EntityDescriptor). Download the IdP metadata XML again from your identity provider."
	}
	if doc.XMLName.Local == "EntitiesDescriptor" {
		// An aggregate: its one IdP entity is the IdP (a file may hold
		// the IdP beside an SP); a federation's, with many, names none.
		var idps []metadataDoc
		for _, ed := range doc.Entities {
			if len(ed.IdP) > 0 {
				idps = append(idps, ed)
			}
		}
		switch {
		case len(idps) == 1:
			doc = idps[0]
		case len(idps) > 1:
			return fmt.Sprintf("This file describes %d identity providers (a federation's metadata). Upload the metadata of your own identity provider, or give its metadata URL.", len(idps))
		case len(doc.Entities) == 1:
			doc = doc.Entities[0]
		}
	}
	if len(doc.IdP) == 0 {
		if len(doc.SP) > 0 {
			if samlView(w.View) != nil && doc.EntityID == samlView(w.View).SPEntityID {
				return "This is our own SP metadata, for this connection. Upload the metadata of your identity provider instead."
			}
			return fmt.Sprintf("This metadata is for a different SP (%s), not for an identity provider. Upload your identity provider's metadata.", doc.EntityID)
		}
		return "This metadata describes no identity provider (no IDPSSODescriptor). Download the IdP metadata from your identity provider."
	}
	now := p.cfg.Now()
	valid := 0
	var expired *x509.Certificate
	for _, role := range doc.IdP {
		for _, raw := range role.signingCerts() {
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(raw), ""))
			if err != nil {
				continue
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				continue
			}
			if now.After(cert.NotAfter) {
				expired = cert
				continue
			}
			valid++
		}
	}
	if valid == 0 && expired != nil {
		return fmt.Sprintf("The signing certificate in this metadata expired on %s. Ask your identity provider for current metadata (it may have rolled its certificate).", expired.NotAfter.UTC().Format("2 January 2006"))
	}
	return ""
}

// maxCertificateFile caps an uploaded certificate file: a certificate is
// a few kilobytes, a chain a few more.
const maxCertificateFile = 64 << 10

// certificateUpload reads the certificate file of the manual form, if
// one was chosen, as the text the certificate field takes: PEM or base64
// as it is (without a byte-order mark), DER (binary) as PEM. msg says in
// plain words what is wrong with a file that is not a certificate; text
// is "" and msg "" when no file was chosen.
func certificateUpload(c echo.Context) (text, msg string, err error) {
	fh, err := c.FormFile("certificate_file")
	if errors.Is(err, http.ErrMissingFile) || errors.Is(err, http.ErrNotMultipart) || err == nil && fh.Size == 0 {
		// No file chosen (a browser sends an empty part).
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("certificate file: %w", err)
	}
	f, err := fh.Open()
	if err != nil {
		return "", "", fmt.Errorf("certificate file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCertificateFile+1))
	if err != nil {
		return "", "", fmt.Errorf("certificate file: %w", err)
	}
	if len(b) > maxCertificateFile {
		return "", "This file is larger than 64 KB; a certificate is much smaller. Check that you chose the certificate file.", nil
	}
	return certificateFileText(b)
}

// certificateFileText is certificateUpload's reading of a file's bytes.
func certificateFileText(b []byte) (text, msg string, err error) {
	if cert, err := x509.ParseCertificate(b); err == nil {
		// DER: "DER encoded binary X.509 (.CER)", AD FS's export default.
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})), "", nil
	}
	if s, ok := certificateText(b); ok {
		return s, "", nil
	}
	return "", "This file is not a certificate. Choose the signing certificate your identity provider gave you (a .cer, .crt or .pem file), or paste its text.", nil
}

// certificateText is b as certificate text (PEM or base64), without a
// byte-order mark, if it is text; a file saved by Windows tools may be
// UTF-16.
func certificateText(b []byte) (string, bool) {
	if bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.HasPrefix(b, []byte{0xFE, 0xFF}) {
		if u, err := saml.MetadataUTF8(b); err == nil {
			b = u
		}
	}
	s := strings.TrimSpace(strings.TrimPrefix(string(b), "\ufeff"))
	if s == "" || !utf8.ValidString(s) {
		return "", false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || r < ' ' && r != '\n' && r != '\r' && r != '\t' {
			return "", false
		}
	}
	return s, true
}

// checkCertificatePEM says what is wrong with a pasted certificate, or "".
func (p *Portal) checkCertificatePEM(s string) string {
	// A certificate pasted from a file a Windows editor saved can start
	// with its byte-order mark; the connection reads past it too.
	s = strings.TrimSpace(strings.TrimPrefix(s, "\ufeff"))
	if s == "" {
		return "Paste your IdP's signing certificate (it starts with -----BEGIN CERTIFICATE-----), or choose its file."
	}
	var der []byte
	if strings.Contains(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil || block.Type != "CERTIFICATE" {
			return "This is not a PEM certificate: it should start with -----BEGIN CERTIFICATE----- and end with -----END CERTIFICATE-----."
		}
		der = block.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return "This is not a certificate: paste the PEM text, starting with -----BEGIN CERTIFICATE-----."
		}
		der = b
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "This certificate could not be read; copy it again from your identity provider, including the BEGIN and END lines."
	}
	now := p.cfg.Now()
	if now.After(cert.NotAfter) {
		return fmt.Sprintf("This certificate expired on %s. Download the current signing certificate from your identity provider.", cert.NotAfter.UTC().Format("2 January 2006"))
	}
	// A certificate made moments ago by an IdP whose clock is ahead of
	// ours starts a little in our future: taken within the largest skew a
	// connection allows an IdP's clock, as that IdP's responses are.
	if ahead := cert.NotBefore.Sub(now); ahead > saml.MaxClockSkew {
		if ahead < 24*time.Hour {
			return fmt.Sprintf("This certificate becomes valid only at %s, %s from now by our clock. If your identity provider made it just now, its clock is ahead of ours: have it corrected, or paste the certificate once it is valid.",
				cert.NotBefore.UTC().Format("15:04 UTC on 2 January 2006"), roughly(ahead))
		}
		return fmt.Sprintf("This certificate is not valid until %s. Paste the certificate your identity provider signs with now.", cert.NotBefore.UTC().Format("15:04 UTC on 2 January 2006"))
	}
	return ""
}

// roughly is d in whole minutes or hours, for a sentence.
func roughly(d time.Duration) string {
	if d < time.Hour {
		return fmt.Sprintf("%d minutes", int(d.Round(time.Minute)/time.Minute))
	}
	return fmt.Sprintf("%d hours", int(d.Round(time.Hour)/time.Hour))
}

// mappingFields are the profile fields an admin can map.
var mappingFields = []struct{ Key, Label, Hint string }{
	{"email", "Email", "Required. Where your IdP sends the user's work email."},
	{"given_name", "First name", ""},
	{"family_name", "Last name", ""},
	{"name", "Display name", ""},
	{"groups", "Groups", "The attribute listing the user's groups."},
}

func mappingOf(v connections.View) *connections.AttributeMapping {
	if sv := samlView(v); sv != nil {
		return sv.AttributeMapping
	}
	if ov := oidcView(v); ov != nil {
		return ov.AttributeMapping
	}
	return nil
}

func mappingList(m *connections.AttributeMapping, key string) []string {
	if m == nil {
		return nil
	}
	switch key {
	case "email":
		return m.Email
	case "given_name":
		return m.GivenName
	case "family_name":
		return m.FamilyName
	case "name":
		return m.Name
	case "groups":
		return m.Groups
	}
	return nil
}

type mappingRow struct {
	Key, Label, Hint, Value string
	// Got is the value the last test login produced, From the attribute
	// it came from.
	Got, From string
}

func (p *Portal) ssoAttributes(c echo.Context) error {
	w, err := p.wizardFor(c, "attributes")
	if err != nil {
		return err
	}
	return p.render(c, http.StatusOK, "sso_attributes.html", w.Conn.Name, p.attributesData(w))
}

func (p *Portal) attributesData(w *wizard) map[string]any {
	m := mappingOf(w.View)
	var rows []mappingRow
	for _, f := range mappingFields {
		r := mappingRow{Key: f.Key, Label: f.Label, Hint: f.Hint, Value: strings.Join(mappingList(m, f.Key), ", ")}
		if v, ok := w.Form[f.Key]; ok {
			r.Value = v
		}
		if w.Test != nil && w.Test.Profile != nil {
			r.Got = w.Test.Profile.field(f.Key)
			r.From = w.Test.sourceOf(r.Got)
		}
		rows = append(rows, r)
	}
	return map[string]any{"W": w, "Rows": rows}
}

func (p *Portal) ssoAttributesSave(c echo.Context) error {
	w, err := p.wizardFor(c, "attributes")
	if err != nil {
		return err
	}
	m := connections.AttributeMapping{Preset: w.IdP.Preset}
	if cur := mappingOf(w.View); cur != nil && cur.Preset != "" {
		m.Preset = cur.Preset
	}
	if cur := mappingOf(w.View); cur != nil {
		m.Subject = cur.Subject
	}
	for _, f := range mappingFields {
		v := c.FormValue(f.Key)
		w.Form[f.Key] = v
		var names []string
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		switch f.Key {
		case "email":
			m.Email = names
		case "given_name":
			m.GivenName = names
		case "family_name":
			m.FamilyName = names
		case "name":
			m.Name = names
		case "groups":
			m.Groups = names
		}
	}
	u := connections.Update{}
	if w.Conn.Status == store.ConnectionDraft {
		draft := store.ConnectionDraft
		u.Status = &draft
	}
	if w.Conn.Type == saml.Name {
		u.Settings = saml.Settings{AttributeMapping: &m}.Request()
	} else {
		u.Settings = oidc.Settings{AttributeMapping: &m}.Request()
	}
	ctx := c.Request().Context()
	_, err = p.cfg.Connections.UpdateConnection(ctx, w.Conn.ID, u,
		p.connAudit(c, "connection.updated", map[string]any{"attribute_mapping": true}))
	if errors.Is(err, connections.ErrConfig) {
		_, msg := configError(err, w.Conn.Type, "")
		w.Errors[""] = msg
		return p.render(c, http.StatusUnprocessableEntity, "sso_attributes.html", w.Conn.Name, p.attributesData(w))
	}
	if err != nil {
		return err
	}
	return p.redirectFlash(c, w.Base+"/test", "mapping")
}

func (p *Portal) ssoTestPage(c echo.Context) error {
	w, err := p.wizardFor(c, "test")
	if err != nil {
		return err
	}
	if w.Advanced != nil && c.QueryParam("advanced") == "open" {
		// A link to one of the settings (a test result's, a save's).
		w.Advanced.Open = true
	}
	return p.render(c, http.StatusOK, "sso_test.html", w.Conn.Name, w)
}

// ssoTestStart sends this tab to the IdP for a test login; it comes back
// through Complete to the result page.
func (p *Portal) ssoTestStart(c echo.Context) error {
	conn := c.Get(connKey).(store.Connection)
	ctx := c.Request().Context()
	view, err := p.cfg.Connections.Describe(conn)
	if err != nil {
		return err
	}
	if m := missingOf(view); len(m) > 0 {
		// Step 2 is not finished: say what is left in the form's words,
		// not the API's field names.
		t := testResult{At: p.cfg.Now().UTC(), Check: "Configuration",
			Reason: "Step 2 is not finished: we still need " + missingWords(conn.Type, m) + ".",
			Hint:   "Complete step 2, Connect " + idpOf(conn).Called() + ", then test again."}
		if err := p.saveTest(ctx, conn, t); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, Path+"/sso/"+conn.ID+"/test/result")
	}
	err = p.cfg.Connections.BeginTest(ctx, c.Response(), c.Request(), conn)
	if err == nil {
		return nil
	}
	if !errors.Is(err, connections.ErrConfig) && !errors.Is(err, connections.ErrUpstream) {
		return err
	}
	// The IdP could not even be asked (an OIDC issuer without discovery,
	// settings missing): that is the test's result.
	if err := p.saveTest(ctx, conn, failedTest(p.cfg.Now(), err, "")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, Path+"/sso/"+conn.ID+"/test/result")
}

// settingWords name, as step 2's form labels do, the settings a
// connection type reports missing by their API names.
var settingWords = map[store.ConnectionType]map[string]string{
	saml.Name: {"idp_entity_id": "the IdP entity ID", "idp_sso_url": "the IdP sign-in URL", "idp_certificates_pem": "the IdP signing certificate"},
	oidc.Name: {"issuer": "the issuer URL", "client_id": "the client ID", "client_secret": "the client secret"},
}

// missingWords lists missing settings in words: "a, b and c".
func missingWords(typ store.ConnectionType, missing []string) string {
	words := make([]string, len(missing))
	for i, m := range missing {
		words[i] = settingWords[typ][m]
		if words[i] == "" {
			words[i] = "the " + strings.ReplaceAll(m, "_", " ")
		}
	}
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

func (p *Portal) ssoTestResult(c echo.Context) error {
	w, err := p.wizardFor(c, "test")
	if err != nil {
		return err
	}
	if w.Test == nil {
		return c.Redirect(http.StatusSeeOther, w.Base+"/test")
	}
	w.Fix = fixFor(w)
	return p.render(c, http.StatusOK, "sso_result.html", "Test result · "+w.Conn.Name, w)
}

// errChangedSinceTest is what an admin sees who activates a connection
// from a page showing a version that is no longer the stored one.
const errChangedSinceTest = "This connection changed since you tested it: test again, then activate."

// ssoActivate turns the connection on, but only the version the page
// showed (the form's version): settings changed since, in another tab or
// by the maintenance loop, were not what the admin tested.
func (p *Portal) ssoActivate(c echo.Context) error {
	w, err := p.wizardFor(c, "test")
	if err != nil {
		return err
	}
	shown, err := strconv.ParseInt(c.FormValue("version"), 10, 64)
	if err != nil || shown <= 0 || shown != w.Conn.Version {
		// A missing version is a page from before versions were sent:
		// refused the same way, the page now carries the current one.
		w.Errors[""] = errChangedSinceTest
		return p.render(c, http.StatusConflict, "sso_test.html", w.Conn.Name, w)
	}
	if w.State != "tested" && w.State != "inactive" {
		w.Errors[""] = "Run a successful test login with the current settings before activating: select Test connection."
		if w.State == "active" {
			return c.Redirect(http.StatusSeeOther, w.Base+"/test")
		}
		return p.render(c, http.StatusConflict, "sso_test.html", w.Conn.Name, w)
	}
	active := store.ConnectionActive
	ctx := c.Request().Context()
	_, err = p.cfg.Connections.UpdateConnection(ctx, w.Conn.ID, connections.Update{Status: &active, IfVersion: shown},
		p.statusHook(c, "connection.activated", w.Conn, w.Test != nil && !w.TestStale))
	if errors.Is(err, connections.ErrChanged) {
		// Changed between this request's read and its write: show the
		// page as it now is.
		conn, err := p.cfg.Store.Connection(ctx, w.Conn.ID)
		if err != nil {
			return err
		}
		c.Set(connKey, conn)
		if w, err = p.wizardFor(c, "test"); err != nil {
			return err
		}
		w.Errors[""] = errChangedSinceTest
		return p.render(c, http.StatusConflict, "sso_test.html", w.Conn.Name, w)
	}
	if errors.Is(err, connections.ErrConfig) || errors.Is(err, connections.ErrUpstream) {
		_, msg := configError(err, w.Conn.Type, "")
		w.Errors[""] = msg
		return p.render(c, http.StatusUnprocessableEntity, "sso_test.html", w.Conn.Name, w)
	}
	if err != nil {
		return err
	}
	return p.redirectFlash(c, w.Base+"/test", "activated")
}

func (p *Portal) ssoDeactivate(c echo.Context) error {
	conn := c.Get(connKey).(store.Connection)
	off := store.ConnectionInactive
	ctx := c.Request().Context()
	last, stale, err := p.lastTest(ctx, conn)
	if err != nil {
		return err
	}
	conn, err = p.cfg.Connections.UpdateConnection(ctx, conn.ID, connections.Update{Status: &off},
		p.statusHook(c, "connection.deactivated", conn, last != nil && !stale))
	if err != nil {
		return err
	}
	return p.redirectFlash(c, Path+"/sso/"+conn.ID+"/test", "deactivated")
}

// ssoRename names the connection the way the organisation knows it (two
// Okta connections were both "Okta"). A name is not a setting: the last
// test login stays the test of the connection.
func (p *Portal) ssoRename(c echo.Context) error {
	w, err := p.wizardFor(c, "test")
	if err != nil {
		return err
	}
	name := c.FormValue("name")
	u := connections.Update{Name: &name}
	if w.Conn.Status == store.ConnectionDraft {
		// A complete draft stays a draft: only Activate turns it on.
		draft := store.ConnectionDraft
		u.Status = &draft
	}
	_, err = p.cfg.Connections.UpdateConnection(c.Request().Context(), w.Conn.ID, u,
		p.keepTestHook(c, "connection.updated", map[string]any{"name": true}, w.Conn, w.Test != nil && !w.TestStale))
	if errors.Is(err, connections.ErrConfig) {
		_, msg := configError(err, w.Conn.Type, "")
		w.Errors["name"] = msg
		w.Form["name"] = name
		return p.render(c, http.StatusUnprocessableEntity, "sso_test.html", w.Conn.Name, w)
	}
	if err != nil {
		return err
	}
	return p.redirectFlash(c, w.Base+"/test", "saved")
}

func (p *Portal) ssoDelete(c echo.Context) error {
	conn := c.Get(connKey).(store.Connection)
	ctx := c.Request().Context()
	if err := p.cfg.Connections.DeleteConnection(ctx, conn.ID, 0, p.connAudit(c, "connection.deleted", nil)); err != nil {
		return err
	}
	return p.redirectFlash(c, Path+"/sso", "deleted")
}

// ssoMetadata downloads the connection's SP metadata, for IdPs that take
// a file.
func (p *Portal) ssoMetadata(c echo.Context) error {
	conn := c.Get(connKey).(store.Connection)
	if conn.Type != saml.Name {
		return errNotFound
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-sp-metadata.xml"`, conn.ID))
	h.Set("Content-Security-Policy", p.pages.CSP())
	h.Set("X-Content-Type-Options", "nosniff")
	// The same document as the public metadata URL.
	return p.cfg.Connections.ServeRoute(c.Request().Context(), c.Response(), c.Request(), conn.ID, "metadata")
}

// lastTest reads the connection's last test login; stale when the
// connection changed since.
func (p *Portal) lastTest(ctx context.Context, conn store.Connection) (*testResult, bool, error) {
	t, err := p.cfg.Store.ConnectionTest(ctx, conn.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var r testResult
	if err := jsonUnmarshal(t.Result, &r); err != nil {
		return nil, false, nil // an unreadable old record is no test
	}
	r.OK = t.OK
	return &r, !t.ConnUpdatedAt.Equal(conn.UpdatedAt), nil
}
