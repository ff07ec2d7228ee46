package connections

import (
	"errors"
	"fmt"
)

// Sentinel errors of a failed upstream login. Finish wraps them with a
// message precise enough for the tenant admin ("Audience was X, expected
// Y"); the broker shows the end user a generic page and records the
// precise reason in authentication.failed. Match them with errors.Is.
var (
	// ErrMalformed is input that cannot be parsed: bad base64, invalid
	// XML, a DTD, a missing field, an oversized body.
	ErrMalformed = errors.New("connections: malformed response")
	// ErrSignature is a missing, invalid or untrusted signature, including
	// one made with SHA-1 when that is refused.
	ErrSignature = errors.New("connections: signature not valid")
	// ErrAudienceMismatch is an assertion or id_token meant for another
	// service provider or client.
	ErrAudienceMismatch = errors.New("connections: audience mismatch")
	// ErrDestinationMismatch is a SAML Destination or Recipient that is not
	// this connection's ACS URL.
	ErrDestinationMismatch = errors.New("connections: destination mismatch")
	// ErrIssuerMismatch is a response from an issuer that is not the
	// connection's IdP.
	ErrIssuerMismatch = errors.New("connections: issuer mismatch")
	// ErrExpired is a response whose validity window has passed.
	ErrExpired = errors.New("connections: response expired")
	// ErrNotYetValid is a response whose validity window has not started.
	ErrNotYetValid = errors.New("connections: response not yet valid")
	// ErrRequestMismatch is a response that does not answer the login this
	// browser started: unknown or spent RelayState/state, wrong
	// InResponseTo, nonce mismatch.
	ErrRequestMismatch = errors.New("connections: response does not match the login request")
	// ErrReplay is an assertion or code already used once.
	ErrReplay = errors.New("connections: response replayed")
	// ErrIdPInitiated is an unsolicited SAML response on a connection that
	// does not allow IdP-initiated logins.
	ErrIdPInitiated = errors.New("connections: IdP-initiated login not allowed")
	// ErrIdPError is a login the IdP itself refused or failed (SAML
	// status not Success, OIDC error=…).
	ErrIdPError = errors.New("connections: IdP reported an error")
	// ErrDomainNotAllowed is a profile whose email is not in one of the
	// tenant's verified domains.
	ErrDomainNotAllowed = errors.New("connections: email domain not allowed for this tenant")
	// ErrProfile is a profile missing what a login needs (subject, email)
	// or failing a connection rule (Google hd, Entra tid).
	ErrProfile = errors.New("connections: profile not acceptable")
	// ErrUpstream is an IdP that could not be reached or answered badly
	// (discovery, token endpoint, JWKS).
	ErrUpstream = errors.New("connections: upstream unavailable")
	// ErrConfig is a connection configuration that is invalid or
	// incomplete.
	ErrConfig = errors.New("connections: invalid configuration")
	// ErrTenantInactive is a login into a tenant that is paused or no
	// longer exists.
	ErrTenantInactive = errors.New("connections: tenant is not active")
	// ErrNotFound is a connection that does not exist (or belongs to
	// another tenant: the two are indistinguishable).
	ErrNotFound = errors.New("connections: connection not found")
)

// Mismatch wraps sentinel with the "X was A, expected B" message tenant
// admins need.
func Mismatch(sentinel error, what, got, want string) error {
	return fmt.Errorf("%w: %s was %q, expected %q", sentinel, what, got, want)
}
