package portal

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// The advanced settings of a SAML connection, on its test page: what the
// operator API calls allow_sha1, clock_skew_seconds, sign_authn_requests,
// encrypt_assertions and name_id_format. They go through the connection
// registry like every other change, so the registry's checks (the ones
// the API answers with) are the checks here; the portal only reads the
// form and puts the registry's refusals in the form's words.
//
// allow_idp_initiated is shown, not changed: it needs an application of
// the vendor's to land in (idp_initiated_client_id), which a tenant's
// admin neither knows nor should pick among the vendor's applications,
// and without one a dashboard tile still fails.

// advancedView is what the advanced section shows: the settings as stored
// (the tenant's own choices), beside what they amount to.
type advancedView struct {
	AllowSHA1 bool
	// ClockSkew is the allowance in seconds; DefaultSkew and MaxSkew
	// are the registry's, for the hint.
	ClockSkew, DefaultSkew, MaxSkew int
	// SignRequests is the tenant's own choice; IdPWantsSigned is the
	// IdP metadata's WantAuthnRequestsSigned, which signs them whatever
	// the choice.
	SignRequests, IdPWantsSigned bool
	Encrypt                      bool
	// NameIDFormat is the format chosen, "" for automatic; AutoNameID is
	// what automatic asks for now.
	NameIDFormat, AutoNameID string
	IdPInitiated             bool
	IdPInitiatedApp          string
	// Open shows the section unfolded: after a save, an error, or a link
	// from a test result pointing at one of the settings.
	Open bool
}

// fixLink is a failed test's pointer at the advanced setting that may
// fix it.
type fixLink struct {
	Href, Text, Setting string
}

// advancedOf reads the advanced settings of a SAML connection; nil for
// another type.
func advancedOf(conn store.Connection) (*advancedView, error) {
	if conn.Type != saml.Name {
		return nil, nil
	}
	cfg, err := saml.DecodeConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	auto := cfg
	auto.NameIDFormat = ""
	return &advancedView{
		AllowSHA1:       cfg.AllowSHA1,
		ClockSkew:       int(cfg.ClockSkew() / time.Second),
		DefaultSkew:     int(saml.DefaultClockSkew / time.Second),
		MaxSkew:         int(saml.MaxClockSkew / time.Second),
		SignRequests:    cfg.SignAuthnRequests,
		IdPWantsSigned:  cfg.IdPWantsSignedRequests,
		Encrypt:         cfg.EncryptAssertions,
		NameIDFormat:    cfg.NameIDFormat,
		AutoNameID:      auto.RequestedNameIDFormat(),
		IdPInitiated:    cfg.AllowIdPInitiated,
		IdPInitiatedApp: cfg.IdPInitiatedClientID,
	}, nil
}

// nameIDWords names the NameID formats in the form's words.
var nameIDWords = map[string]string{
	saml.NameIDPersistent:  "Persistent",
	saml.NameIDEmail:       "Email address",
	saml.NameIDUnspecified: "Unspecified",
}

// nameIDFormats are the formats the form offers beside automatic, in
// its order.
var nameIDFormats = []string{saml.NameIDPersistent, saml.NameIDEmail, saml.NameIDUnspecified}

// advancedNames puts the form's words for the settings' API names into
// the registry's messages.
var advancedNames = strings.NewReplacer(
	"clock_skew_seconds", "the allowed clock difference (in seconds)",
	"name_id_format", "the NameID format",
	"allow_sha1", "Accept SHA-1 signatures",
	"sign_authn_requests", "Sign sign-in requests",
	"encrypt_assertions", "Encrypt assertions",
)

// errChangedSinceShown is what an admin sees who saves the advanced
// settings of a page showing a version that is no longer the stored one.
const errChangedSinceShown = "This connection changed since you opened this page (in another tab, or by another admin): the settings below are the current ones. Check them and save again."

// ssoAdvancedSave changes the advanced settings the form shows, only on
// the version of the connection the page showed, and only those the
// admin changed: a value equal to what is in place is not sent, so
// saving an untouched form writes nothing and keeps the last test.
func (p *Portal) ssoAdvancedSave(c echo.Context) error {
	w, err := p.wizardFor(c, "test")
	if err != nil {
		return err
	}
	a := w.Advanced
	if a == nil {
		return errNotFound // an OIDC connection has no such settings
	}
	a.Open = true
	shown, err := strconv.ParseInt(c.FormValue("version"), 10, 64)
	if err != nil || shown <= 0 || shown != w.Conn.Version {
		w.Errors["advanced"] = errChangedSinceShown
		return p.render(c, http.StatusConflict, "sso_test.html", w.Conn.Name, w)
	}

	var s saml.Settings
	var changes []string
	set := func(field string) { changes = append(changes, string(saml.Name)+"."+field) }
	if v := c.FormValue("allow_sha1") == "on"; v != a.AllowSHA1 {
		s.AllowSHA1 = &v
		set("allow_sha1")
	}
	skew := strings.TrimSpace(c.FormValue("clock_skew_seconds"))
	w.Form["clock_skew_seconds"] = skew
	if n, err := strconv.Atoi(skew); err != nil {
		w.Errors["clock_skew_seconds"] = "Enter a whole number of seconds, for example " + strconv.Itoa(a.DefaultSkew) + "."
	} else if n != a.ClockSkew {
		// 0 is the default, as in the API: it resets a larger allowance.
		s.ClockSkewSeconds = &n
		set("clock_skew_seconds")
	}
	// A request the IdP's metadata asks to be signed is signed whatever
	// the tenant chose: the box is disabled and not sent.
	if !a.IdPWantsSigned {
		if v := c.FormValue("sign_authn_requests") == "on"; v != a.SignRequests {
			s.SignAuthnRequests = &v
			set("sign_authn_requests")
		}
	}
	encrypt := c.FormValue("encrypt_assertions") == "on"
	if encrypt != a.Encrypt {
		s.EncryptAssertions = &encrypt
		set("encrypt_assertions")
	}
	if v := c.FormValue("name_id_format"); v != a.NameIDFormat {
		w.Form["name_id_format"] = v
		s.NameIDFormat = &v
		set("name_id_format")
	}
	if len(w.Errors) > 0 {
		return p.render(c, http.StatusUnprocessableEntity, "sso_test.html", w.Conn.Name, w)
	}
	to := w.Base + "/test?advanced=open#advanced"
	if len(changes) == 0 {
		return p.redirectFlash(c, to, "unchanged")
	}

	slices.Sort(changes) // as the API's audit rows list them
	u := connections.Update{Settings: s.Request(), IfVersion: shown}
	if w.Conn.Status == store.ConnectionDraft {
		// A draft stays a draft: only Activate turns it on.
		draft := store.ConnectionDraft
		u.Status = &draft
	}
	ctx := c.Request().Context()
	_, err = p.cfg.Connections.UpdateConnection(ctx, w.Conn.ID, u,
		p.connAudit(c, "connection.updated", map[string]any{"changes": changes}))
	switch {
	case errors.Is(err, connections.ErrChanged):
		// Changed between this request's read and its write: show the
		// settings as they now are.
		conn, err := p.cfg.Store.Connection(ctx, w.Conn.ID)
		if err != nil {
			return err
		}
		c.Set(connKey, conn)
		if w, err = p.wizardFor(c, "test"); err != nil {
			return err
		}
		w.Advanced.Open = true
		w.Errors["advanced"] = errChangedSinceShown
		return p.render(c, http.StatusConflict, "sso_test.html", w.Conn.Name, w)
	case errors.Is(err, connections.ErrConfig):
		field := strings.TrimPrefix(connections.FieldOf(err), string(saml.Name)+".")
		switch field {
		case "clock_skew_seconds", "name_id_format":
		default:
			field = "advanced"
		}
		w.Errors[field] = upperFirst(advancedNames.Replace(connections.Message(err))) + "."
		return p.render(c, http.StatusUnprocessableEntity, "sso_test.html", w.Conn.Name, w)
	case err != nil:
		return err
	}
	// What the IdP must import again: an encryption key it does not
	// have, or requests it should check the signature of.
	if encrypt && !a.Encrypt || s.SignAuthnRequests != nil && *s.SignAuthnRequests {
		return p.redirectFlash(c, to, "metadata")
	}
	return p.redirectFlash(c, to, "saved")
}

// fixFor is the advanced setting a failed SAML test points at, if any:
// a response signed with SHA-1 that the connection refuses, or dates
// outside the clock difference it allows while a larger one may be set.
func fixFor(w *wizard) *fixLink {
	t, a := w.Test, w.Advanced
	if t == nil || t.OK || a == nil {
		return nil
	}
	href := w.Base + "/test?advanced=open#"
	switch {
	case t.Check == "Signature" && strings.Contains(t.Reason, "SHA-1") && !a.AllowSHA1:
		return &fixLink{Href: href + "adv-allow-sha1", Setting: "Accept SHA-1 signatures",
			Text: "If " + w.IdP.Called() + " cannot sign with SHA-256, you can accept its SHA-1 signatures on this connection:"}
	case t.Check == "Clock skew" && a.ClockSkew < a.MaxSkew:
		return &fixLink{Href: href + "adv-clock-skew", Setting: "Allowed clock difference",
			Text: "If " + w.IdP.Called() + "'s clock cannot be corrected, you can allow a larger difference, up to " + strconv.Itoa(a.MaxSkew) + " seconds:"}
	}
	return nil
}
