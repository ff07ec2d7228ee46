package connections

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/idbroker/idbroker/internal/safehttp"
)

func TestCause(t *testing.T) {
	dial := func(err error) error {
		// How net/http reports a failed dial: *url.Error around *net.OpError.
		return &url.Error{Op: "Get", URL: "https://idp.example/m", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}}
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{dial(syscall.ECONNREFUSED), "connection refused"},
		{dial(syscall.ECONNRESET), "connection reset"},
		{&url.Error{Op: "Get", URL: "u", Err: &net.DNSError{Err: "no such host", Name: "idp.example", IsNotFound: true}}, "host idp.example not found"},
		{fmt.Errorf("safehttp: GET u: %w", &safehttp.StatusError{Code: 404}), "the server answered 404 Not Found"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "timed out"},
		{&url.Error{Op: "Get", URL: "u", Err: x509.UnknownAuthorityError{}}, "its TLS certificate is not signed by a trusted authority"},
		{fmt.Errorf("%w: 10.0.0.1", safehttp.ErrForbiddenAddress), "the address is on a private or local network, which the broker does not call"},
		{errors.Join(errors.New("discovery failed"), errors.New("line two\n\tindented")), "discovery failed line two indented"},
		{errors.New(strings.Repeat("x", 500)), strings.Repeat("x", maxCause) + "…"},
	} {
		if got := Cause(tt.err); got != tt.want {
			t.Errorf("Cause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	refused := fmt.Errorf("%w: 10.0.0.1", safehttp.ErrForbiddenAddress)
	down := &url.Error{Op: "Get", URL: "u", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tt := range []struct {
		name            string
		err             error
		field, msg      string
		config, upstram bool
	}{
		{"invalid", qualify("saml", Invalid("idp_sso_url", "idp_sso_url must use https")), "saml.idp_sso_url", "idp_sso_url must use https", true, false},
		{"unreachable", qualify("oidc", Unreachable("issuer", "read the OIDC discovery document at", "https://idp.example/.well-known/openid-configuration", down)),
			"oidc.issuer", "could not read the OIDC discovery document at https://idp.example/.well-known/openid-configuration: connection refused", false, true},
		{"unreachable as a refused setting", InField("idp_metadata_url", Unreachable("idp_metadata_url", "fetch IdP metadata from", "https://idp.example/m", down)),
			"idp_metadata_url", "could not fetch IdP metadata from https://idp.example/m: connection refused", true, true},
		{"an address the broker does not call is a setting to change", Unreachable("idp_metadata_url", "fetch IdP metadata from", "https://10.0.0.1/m", refused),
			"idp_metadata_url", "could not fetch IdP metadata from https://10.0.0.1/m: the address is on a private or local network, which the broker does not call", true, false},
		{"a plain ErrConfig gets the field", InField("idp_metadata_xml", fmt.Errorf("%w: IdP metadata has no IDPSSODescriptor", ErrConfig)),
			"idp_metadata_xml", "IdP metadata has no IDPSSODescriptor", true, false},
		{"the first field wins", InField("idp_metadata_url", Invalid("idp_certificates_pem", "bad")), "idp_certificates_pem", "bad", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := FieldOf(tt.err); got != tt.field {
				t.Errorf("FieldOf = %q, want %q", got, tt.field)
			}
			if got := Message(tt.err); got != tt.msg {
				t.Errorf("Message = %q, want %q", got, tt.msg)
			}
			if errors.Is(tt.err, ErrConfig) != tt.config || errors.Is(tt.err, ErrUpstream) != tt.upstram {
				t.Errorf("ErrConfig %v ErrUpstream %v, want %v %v", errors.Is(tt.err, ErrConfig), errors.Is(tt.err, ErrUpstream), tt.config, tt.upstram)
			}
			if strings.Contains(tt.err.Error(), "\n") {
				t.Errorf("Error() spans lines: %q", tt.err.Error())
			}
		})
	}
}
