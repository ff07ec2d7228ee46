package connections

import (
	"errors"
	"fmt"
)

// Failure is a named reason an upstream login failed (or a connection
// could not be used). Each has a stable, machine-readable Reason — what
// the authentication.failed event, the tenant's audit row and the
// portal's test login show — and a message for people. Connectors wrap
// one of the sentinels below with the detail tenant admins need
// ("Audience was X, expected Y"); match them with errors.Is, and read the
// reason of any error with Reason.
type Failure struct {
	reason, msg string
}

func (f *Failure) Error() string { return "connections: " + f.msg }

// Reason is the failure's stable name, such as "audience_mismatch".
func (f *Failure) Reason() string { return f.reason }

// Reason returns the stable name of the Failure err wraps (the outermost
// one), or "" when it wraps none.
func Reason(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.reason
	}
	return ""
}

// Sentinel errors of a failed upstream login, with their reasons. The
// broker shows the end user a generic page with a reference id and
// records the reason and the precise message for the tenant admin.
var (
	// ErrMalformed is input that cannot be parsed: bad base64, invalid
	// XML, a DTD, a missing field, an oversized body.
	ErrMalformed = &Failure{"malformed_response", "malformed response"}
	// ErrSignature is a missing, invalid or untrusted signature, including
	// one made with SHA-1 when that is refused.
	ErrSignature = &Failure{"signature_invalid", "signature not valid"}
	// ErrAudienceMismatch is an assertion or id_token meant for another
	// service provider or client.
	ErrAudienceMismatch = &Failure{"audience_mismatch", "audience mismatch"}
	// ErrDestinationMismatch is a SAML Destination or Recipient that is not
	// this connection's ACS URL.
	ErrDestinationMismatch = &Failure{"destination_mismatch", "destination mismatch"}
	// ErrIssuerMismatch is a response from an issuer that is not the
	// connection's IdP.
	ErrIssuerMismatch = &Failure{"issuer_mismatch", "issuer mismatch"}
	// ErrExpired is a response whose validity window has passed.
	ErrExpired = &Failure{"response_expired", "response expired"}
	// ErrNotYetValid is a response whose validity window has not started.
	ErrNotYetValid = &Failure{"response_not_yet_valid", "response not yet valid"}
	// ErrRequestMismatch is a response that does not answer the login this
	// browser started: unknown or spent RelayState/state, wrong
	// InResponseTo, nonce mismatch.
	ErrRequestMismatch = &Failure{"request_mismatch", "response does not match the login request"}
	// ErrReplay is an assertion or code already used once.
	ErrReplay = &Failure{"replay", "response replayed"}
	// ErrIdPInitiated is an unsolicited SAML response on a connection that
	// does not allow IdP-initiated logins.
	ErrIdPInitiated = &Failure{"idp_initiated_not_allowed", "IdP-initiated login not allowed"}
	// ErrIdPError is a login the IdP itself refused or failed (SAML
	// status not Success, OIDC error=…).
	ErrIdPError = &Failure{"idp_error", "IdP reported an error"}
	// ErrDomainNotAllowed is a profile whose email is not in one of the
	// tenant's verified domains.
	ErrDomainNotAllowed = &Failure{"email_domain_not_allowed", "email domain not allowed for this tenant"}
	// ErrProfile is a profile missing what a login needs (subject, email)
	// or failing a connection rule (Google hd, Entra tid).
	ErrProfile = &Failure{"profile_not_acceptable", "profile not acceptable"}
	// ErrUpstream is an IdP that could not be reached or answered badly
	// (discovery, token endpoint, JWKS).
	ErrUpstream = &Failure{"upstream_unavailable", "upstream unavailable"}
	// ErrConfig is a connection configuration that is invalid or
	// incomplete.
	ErrConfig = &Failure{"invalid_configuration", "invalid configuration"}
	// ErrTenantInactive is a login into a tenant that is paused or no
	// longer exists.
	ErrTenantInactive = &Failure{"tenant_inactive", "tenant is not active"}
	// ErrNotFound is a connection that does not exist (or belongs to
	// another tenant: the two are indistinguishable).
	ErrNotFound = &Failure{"connection_not_found", "connection not found"}
	// ErrChanged is a change refused because the connection changed since
	// the version the caller named (Update.IfVersion), or that kept losing
	// to concurrent changes.
	ErrChanged = &Failure{"connection_changed", "the connection changed since it was read"}
	// ErrConnectionInactive is a login that starts or finishes on a
	// connection that is not active.
	ErrConnectionInactive = &Failure{"connection_inactive", "connection is not active"}
)

// ErrUnavailable marks a sign-in the broker could not finish because its
// own stores could not be reached: the session store (the login state,
// the replay cache) or the database (the tenant's status and verified
// domains). The broker's outage, not the IdP's and not a failed sign-in
// of the user's, answered 503 so that the browser may try again.
var ErrUnavailable = errors.New("connections: the broker's own store is unavailable")

// ErrBusy marks an answer not read because its tenant already had as
// many sign-ins finishing on this node as Config.Admit allows, and one
// did not come free in time: no failure of the IdP's or the user's, and
// nothing of the answer was checked or spent, so the browser may post it
// again (the broker answers 429 with Retry-After).
var ErrBusy = errors.New("connections: the tenant's sign-ins in flight on this node are at their cap")

// ErrNothingToVerify marks an answer posted to a connection that cannot
// have started a sign-in (not active, and its settings too incomplete to
// make a connector of: no IdP, no certificate): nothing in it can be
// checked, so it is junk, whoever sent it, and is recorded nowhere.
var ErrNothingToVerify = errors.New("connections: the connection has nothing to verify an answer against")

// Mismatch wraps sentinel with the "X was A, expected B" message tenant
// admins need.
func Mismatch(sentinel error, what, got, want string) error {
	return fmt.Errorf("%w: %s was %q, expected %q", sentinel, what, got, want)
}
