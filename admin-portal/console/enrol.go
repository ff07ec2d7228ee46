package console

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// maxEnrolToken bounds what is hashed and looked up.
const maxEnrolToken = 128

// enrolling finds the pending operator of the link's token, or answers the
// page that says the link is spent or expired.
func (c *Console) enrolling(ec echo.Context) (store.Operator, bool, error) {
	tok := ec.Param("token")
	if tok == "" || len(tok) > maxEnrolToken {
		return store.Operator{}, false, c.enrolGone(ec)
	}
	op, err := c.cfg.Store.OperatorByEnrolToken(ec.Request().Context(), secrets.HashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return store.Operator{}, false, c.enrolGone(ec)
	}
	if err != nil {
		return store.Operator{}, false, err
	}
	return op, true, nil
}

func (c *Console) enrolGone(ec echo.Context) error {
	return c.message(ec, http.StatusNotFound, "Enrolment link not valid",
		"This enrolment link was used already, has expired, or was never issued. Ask an operator to run "+
			"\"idbroker operator create --email <you>\" again for a new link.")
}

type enrolData struct {
	Email, Secret, QRURL, Action string
	MinPassword                  int
	// Invalid names the field the page's error is about ("password",
	// "password2" or "code"): it is marked invalid and described by the
	// error, so a screen reader says why when the field has focus, and
	// focus goes there.
	Invalid string
}

// enrolPage shows the authenticator key (QR code and text) and the form
// that sets the password. The key is made on the first visit and kept,
// sealed, so reloading the page shows the same one.
func (c *Console) enrolPage(ec echo.Context) error {
	op, ok, err := c.enrolling(ec)
	if !ok {
		return err
	}
	secret, err := c.enrolSecret(ec, op)
	if err != nil {
		return err
	}
	return c.renderEnrol(ec, http.StatusOK, op, secret, "", "")
}

// renderEnrol shows the enrolment page; msg, when not empty, is an error
// about the field named invalid.
func (c *Console) renderEnrol(ec echo.Context, status int, op store.Operator, secret, invalid, msg string) error {
	base := Path + "/enrol/" + ec.Param("token")
	return c.render(ec, status, "enrol.html", page{Title: "Set up", Narrow: true, Error: msg, D: enrolData{
		Email: op.Email, Secret: secret, QRURL: base + "/qr.png", Action: base, MinPassword: MinPasswordLen, Invalid: invalid,
	}})
}

func (c *Console) enrolSecret(ec echo.Context, op store.Operator) (string, error) {
	if op.TOTPSecret != "" {
		return op.TOTPSecret, nil
	}
	key, err := newTOTPKey(op.Email)
	if err != nil {
		return "", fmt.Errorf("console: TOTP key: %w", err)
	}
	if err := c.cfg.Store.SetOperatorTOTPSecret(ec.Request().Context(), op.ID, key.Secret()); err != nil {
		return "", err
	}
	return key.Secret(), nil
}

// enrolQR renders the authenticator key as a QR code, server-side: no
// third-party service sees the secret.
func (c *Console) enrolQR(ec echo.Context) error {
	op, ok, err := c.enrolling(ec)
	if !ok {
		return err
	}
	if op.TOTPSecret == "" {
		return c.enrolGone(ec)
	}
	key, err := totpKey(op.Email, op.TOTPSecret)
	if err != nil {
		return err
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return fmt.Errorf("console: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("console: QR code: %w", err)
	}
	return ec.Blob(http.StatusOK, "image/png", buf.Bytes())
}

// enrol sets the password once the first code proves the authenticator,
// activates the operator, shows the recovery codes once and signs in.
func (c *Console) enrol(ec echo.Context) error {
	op, ok, err := c.enrolling(ec)
	if !ok {
		return err
	}
	if op.TOTPSecret == "" {
		return c.enrolGone(ec)
	}
	password, again := ec.FormValue("password"), ec.FormValue("password2")
	switch {
	case len([]rune(password)) < MinPasswordLen:
		return c.renderEnrol(ec, http.StatusBadRequest, op, op.TOTPSecret, "password", fmt.Sprintf("The password must have at least %d characters.", MinPasswordLen))
	case len(password) > 1024:
		return c.renderEnrol(ec, http.StatusBadRequest, op, op.TOTPSecret, "password", "The password is too long.")
	case password != again:
		return c.renderEnrol(ec, http.StatusBadRequest, op, op.TOTPSecret, "password2", "The two passwords differ.")
	}
	step, match := matchTOTP(op.TOTPSecret, ec.FormValue("code"), c.cfg.Now())
	if !match {
		return c.renderEnrol(ec, http.StatusBadRequest, op, op.TOTPSecret, "code",
			"That code does not match. Check that the authenticator shows idbroker ("+op.Email+") and that your device's clock is right.")
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = c.cfg.Store.CompleteEnrolment(ctx, op.ID, hash, step, hashes)
	if errors.Is(err, store.ErrNotFound) {
		return c.enrolGone(ec) // raced by another tab
	}
	if err != nil {
		return err
	}
	op.Status = store.OperatorActive
	if err := c.auditOperator(ctx, actor(ec, op.ID), "operator.enrolled", operatorResource(op), nil); err != nil {
		return err
	}
	if err := c.startSession(ec, op); err != nil {
		return err
	}
	ec.Set(sessionKey, signedIn{op: op}) // the header shows who is signed in; no CSRF needed on this page
	return c.render(ec, http.StatusOK, "recovery.html", page{Title: "Recovery codes", Narrow: true, D: map[string]any{"Codes": codes}})
}
