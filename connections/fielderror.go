package connections

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/idbroker/idbroker/internal/safehttp"
)

// FieldError is an ErrConfig that names the setting to blame, by its path
// in the operator API's JSON: "name", "saml.idp_metadata_url",
// "oidc.client_secret". A Type names its own settings ("idp_metadata_url");
// the Registry prefixes the type's name. Its message is one line for
// people, with no package prefix and no library error chain.
type FieldError struct {
	// Field is the setting's path, "" when no one setting is to blame.
	Field string
	// Msg says what is wrong, in one line.
	Msg string
	// Err is the cause, if any: kept for errors.Is (an ErrUpstream the
	// IdP's answer caused) and errors.As, never shown.
	Err error
}

func (e *FieldError) Error() string { return ErrConfig.Error() + ": " + e.Msg }

// Unwrap makes a FieldError an ErrConfig (its Reason is
// invalid_configuration) and keeps its cause reachable.
func (e *FieldError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrConfig}
	}
	return []error{ErrConfig, e.Err}
}

// Invalid returns the ErrConfig refusing field, with a message formatted
// for people.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// InField returns err, an ErrConfig or ErrUpstream, as the FieldError
// refusing field, unless err names a field already. An ErrUpstream stays
// one too (errors.Is). Nil stays nil.
func InField(field string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		return err
	}
	if f := FieldOf(err); f != "" {
		field = f
	}
	return &FieldError{Field: field, Msg: Message(err), Err: err}
}

// FieldOf returns the setting err blames, "" when none.
func FieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		return fe.Field
	}
	var ue *upstreamError
	if errors.As(err, &ue) {
		return ue.field
	}
	return ""
}

// Message is err's message for people: a FieldError's or an upstream
// failure's own line, else the text after the last Failure prefix
// ("connections: invalid configuration: "), on one line.
func Message(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Msg
	}
	var ue *upstreamError
	if errors.As(err, &ue) {
		return ue.msg
	}
	msg := err.Error()
	for _, f := range []*Failure{ErrConfig, ErrUpstream} {
		if i := strings.LastIndex(msg, f.Error()+": "); i >= 0 {
			msg = msg[i+len(f.Error())+2:]
		}
	}
	return strings.Join(strings.Fields(msg), " ")
}

// qualify prefixes the field a Type blamed with the type's name, as the
// API's JSON nests settings ({"saml": {"idp_metadata_url": …}}).
func qualify(typ string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) && fe.Field != "" && !strings.HasPrefix(fe.Field, typ+".") {
		q := *fe
		q.Field = typ + "." + fe.Field
		return &q
	}
	var ue *upstreamError
	if errors.As(err, &ue) && ue.field != "" && !strings.HasPrefix(ue.field, typ+".") {
		q := *ue
		q.field = typ + "." + ue.field
		return &q
	}
	return err
}

// upstreamError is an ErrUpstream with its one-line message.
type upstreamError struct {
	field, msg string
	err        error
}

func (e *upstreamError) Error() string { return ErrUpstream.Error() + ": " + e.msg }

func (e *upstreamError) Unwrap() []error { return []error{ErrUpstream, e.err} }

// Unreachable returns the ErrUpstream of a request to an IdP that failed,
// in one line saying what failed and where: "could not fetch IdP metadata
// from https://idp.example.com/metadata: connection refused". field names
// the setting that pointed there ("idp_metadata_url", "issuer"), if any;
// err, the library's error, is kept for errors.Is but never shown whole:
// Cause reduces it to what a person can act on.
//
// A URL the broker refuses to call (a private address, another scheme) is
// no IdP failure but a setting to change: that is a FieldError.
func Unreachable(field, action, url string, err error) error {
	msg := fmt.Sprintf("could not %s %s: %s", action, url, Cause(err))
	if errors.Is(err, safehttp.ErrForbiddenAddress) || errors.Is(err, safehttp.ErrScheme) {
		return &FieldError{Field: field, Msg: msg, Err: err}
	}
	return &upstreamError{field: field, msg: msg, err: err}
}

// Cause says in a few words why a request to an IdP failed, for the
// people who configure it: "connection refused", "timed out", "host not
// found", "the server answered 404 Not Found", "TLS certificate not
// trusted". An error it does not know is flattened to one line.
func Cause(err error) string {
	var (
		dns      *net.DNSError
		status   *safehttp.StatusError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		netErr   net.Error
	)
	switch {
	case err == nil:
		return "unknown error"
	case errors.As(err, &status):
		return fmt.Sprintf("the server answered %d %s", status.Code, http.StatusText(status.Code))
	case errors.Is(err, safehttp.ErrForbiddenAddress):
		return "the address is on a private or local network, which the broker does not call"
	case errors.Is(err, safehttp.ErrBodyTooLarge):
		return "the answer is too large"
	case errors.Is(err, safehttp.ErrTooManyRedirects):
		return "too many redirects"
	case errors.Is(err, safehttp.ErrScheme):
		return "only http and https URLs can be fetched"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "host " + dns.Name + " not found"
	case errors.As(err, &dns):
		return "DNS lookup of " + dns.Name + " failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &unknown):
		return "its TLS certificate is not signed by a trusted authority"
	case errors.As(err, &hostname):
		return "its TLS certificate is for another host name"
	case errors.As(err, &invalid):
		return "its TLS certificate is not valid (expired or not yet valid)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if r := []rune(msg); len(r) > maxCause {
		msg = string(r[:maxCause]) + "…"
	}
	return msg
}

// maxCause bounds an unknown cause, which may quote what the server sent.
const maxCause = 200
