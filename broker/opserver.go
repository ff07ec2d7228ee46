package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// newOPHandler builds zitadel/oidc's handler for the protocol endpoints:
// it parses and validates requests and writes RFC-shaped errors, and calls
// the broker (opServer) for everything that touches a grant.
func (p *Provider) newOPHandler(insecure bool) (http.Handler, error) {
	cfg := &op.Config{
		CodeMethodS256:             true,
		AuthMethodPost:             true,
		GrantTypeRefreshToken:      true,
		SupportedScopes:            supportedScopes,
		BackChannelLogoutSupported: true,
		DefaultLogoutRedirectURI:   p.url(PathLoggedOut),
	}
	var opts []op.Option
	if insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	prov, err := op.NewProvider(cfg, opStorage{p}, op.StaticIssuer(p.issuer), opts...)
	if err != nil {
		return nil, err
	}
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint(PathAuthorize),
		Token:         op.NewEndpoint(PathToken),
		Introspection: op.NewEndpoint(PathIntrospect),
		Userinfo:      op.NewEndpoint(PathUserinfo),
		Revocation:    op.NewEndpoint(PathRevoke),
		EndSession:    op.NewEndpoint(PathEndSession),
		JwksURI:       op.NewEndpoint(PathJWKS),
	}
	srv := &opServer{LegacyServer: op.NewLegacyServer(prov, endpoints), p: p}
	// The broker finishes authorization requests itself (Complete), so the
	// library's login callback is never used; a request to it is refused.
	refuse := func(w http.ResponseWriter, r *http.Request) {
		op.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("not an endpoint of this provider"), nil)
	}
	return op.RegisterLegacyServer(srv, refuse), nil
}

// opServer overrides the endpoints whose rules are the broker's own.
type opServer struct {
	*op.LegacyServer
	p *Provider
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
	p.log.ErrorContext(ctx, "broker: client authentication", "err", err)
	return oidc.ErrServerError().WithDescription("temporarily unavailable").WithParent(err)
}

func invalidClient(desc string) error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", desc), http.StatusUnauthorized)
}

// Discovery is served by the broker's own handler (serveDiscovery); this
// keeps the library's copy identical should anything reach it.
func (s *opServer) Discovery(ctx context.Context, _ *op.Request[struct{}]) (*op.Response, error) {
	return op.NewResponse(discoveryDoc(s.p.issuer)), nil
}

// opStorage is the op.Storage the library needs for what it still does
// itself: load clients for authorization requests and publish keys. The
// grant methods are never reached, because opServer overrides every
// endpoint that would call them.
type opStorage struct{ p *Provider }

var _ op.Storage = opStorage{}

var errNotUsed = errors.New("broker: not used by this provider")

func (s opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	a, err := s.p.apps.get(ctx, id)
	if err != nil {
		if errors.Is(err, errUnknownClient) {
			return nil, err
		}
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return client{app: a, login: s.p.loginURL}, nil
}

func (s opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.p.apps.authenticate(ctx, id, secret)
	return err
}

func (s opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return s.p.keys.Signer("RS256")
}

func (s opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256}, nil
}

func (s opStorage) KeySet(context.Context) ([]op.Key, error) {
	set := s.p.keys.JWKS()
	out := make([]op.Key, len(set.Keys))
	for i, k := range set.Keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s opStorage) Health(ctx context.Context) error { return s.p.store.Ping(ctx) }

// publicKey adapts a JWKS entry to op.Key.
type publicKey struct{ k jose.JSONWebKey }

func (k publicKey) ID() string                         { return k.k.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.k.Algorithm) }
func (k publicKey) Use() string                        { return k.k.Use }
func (k publicKey) Key() any                           { return k.k.Key }

// The grant storage below is unreachable (see opStorage).

func (opStorage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotUsed
}
func (opStorage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotUsed
}
func (opStorage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotUsed
}
func (opStorage) SaveAuthCode(context.Context, string, string) error { return errNotUsed }
func (opStorage) DeleteAuthRequest(context.Context, string) error    { return errNotUsed }
func (opStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errNotUsed
}
func (opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotUsed
}
func (opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotUsed
}
func (opStorage) TerminateSession(context.Context, string, string) error { return errNotUsed }
func (opStorage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError().WithParent(errNotUsed)
}
func (opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}
func (opStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotUsed
}
func (opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotUsed
}
func (opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, errNotUsed
}
func (opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotUsed
}
func (opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotUsed
}
