package broker

import (
	"context"
	"errors"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// newOPHandler builds zitadel/oidc's handler for the four protocol
// endpoints Mount routes to it: authorization, token, revocation and
// userinfo. The library parses and validates requests and writes
// RFC-shaped errors; opServer decides everything that touches a grant.
//
// Discovery, keys, introspection and end session the broker serves
// itself, so they are not registered here. Whatever op.Server method
// opServer does not implement answers "not implemented"
// (op.UnimplementedServer): there is no grant storage of the library's
// left for a request to reach (opserver_test.go drives every route).
func (p *Provider) newOPHandler() http.Handler {
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint(PathAuthorize),
		Token:         op.NewEndpoint(PathToken),
		Revocation:    op.NewEndpoint(PathRevoke),
		Userinfo:      op.NewEndpoint(PathUserinfo),
	}
	// The library's CORS (any origin reflected, with credentials, on all
	// four endpoints) is off: Mount offers the broker's own, on the
	// endpoints that need it and without credentials (cors.go).
	return op.RegisterServer(&opServer{p: p}, endpoints, op.WithServerCORSOptions(nil))
}

// opServer implements the endpoints; its methods are spread over the
// files of their flows (authorize.go, tokens.go, logout.go,
// introspect.go).
type opServer struct {
	op.UnimplementedServer
	p *Provider
}

// VerifyAuthRequest finds the client of an authorization request. By the
// time op calls it, checkAuthorize has already shown the user a page for
// an unknown client or redirect_uri, so the failures here are defensive.
func (s *opServer) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	if r.Data.ClientID == "" {
		return nil, oidc.ErrInvalidRequest().WithParent(op.ErrAuthReqMissingClientID).WithDescription("%s", op.ErrAuthReqMissingClientID)
	}
	a, err := s.p.apps.get(ctx, r.Data.ClientID)
	if err != nil {
		return nil, oidc.DefaultToServerError(err, "unable to retrieve client by id")
	}
	return &op.ClientRequest[oidc.AuthRequest]{Request: r, Client: client{app: a, login: s.p.loginURL}}, nil
}

// VerifyClient authenticates the client of a token or revocation request:
// client_secret_basic, client_secret_post, or none for public clients.
// A failure is 401 invalid_client whatever the method (RFC 6749 §5.2).
func (s *opServer) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	if r.Data.ClientAssertion != "" || r.Data.ClientAssertionType != "" {
		return nil, invalidClient("private_key_jwt is not supported; use client_secret_basic or client_secret_post")
	}
	a, err := s.p.apps.authenticate(ctx, r.Data.ClientID, r.Data.ClientSecret)
	if err != nil {
		return nil, s.p.clientError(ctx, err)
	}
	return client{app: a, login: s.p.loginURL}, nil
}

// clientError maps a failed client authentication to its OAuth error.
func (p *Provider) clientError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, errUnknownClient):
		return invalidClient("unknown client")
	case errors.Is(err, errBadSecret):
		return invalidClient("client authentication failed")
	}
	// The application could not be read (the database is down and this
	// node has not cached it): an outage the client retries, as on the
	// other endpoints, not a server error.
	p.outages.Error(ctx, p.log, "broker: client authentication", "err", err)
	return unavailable(err)
}

func invalidClient(desc string) error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", desc), http.StatusUnauthorized)
}
