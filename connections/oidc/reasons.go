package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/connections"
)

// exchange is rp.CodeExchange in its two steps, keeping the id_token the
// IdP sent: the library's refusals name only what it expected (the
// client id, not the audience it got; nothing of an expired token's
// times), and the tenant admin needs what the IdP sent to fix its side.
// The id_token is returned only to be explained, never shown.
func (c *oidcConnector) exchange(ctx context.Context, code, verifier string) (*oidc.Tokens[*idTokenClaims], string, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.rp.HttpClient())
	token, err := c.rp.OAuthConfig().Exchange(ctx, code, rp.WithCodeVerifier(verifier)()...)
	if err != nil {
		return nil, "", err
	}
	// Some IdPs send "" for no id_token: never a JWT, so missing.
	idt, _ := token.Extra("id_token").(string)
	if idt == "" {
		return nil, "", rp.ErrMissingIDToken
	}
	claims, err := rp.VerifyTokens[*idTokenClaims](ctx, token.AccessToken, idt, c.rp.IDTokenVerifier())
	if err != nil {
		return nil, idt, err
	}
	return &oidc.Tokens[*idTokenClaims]{Token: token, IDTokenClaims: claims, IDToken: idt}, idt, nil
}

// sentToken is what an id_token says of itself, read without checking
// its signature: only to tell the admin what the IdP sent, never to
// decide anything. Every value is the IdP's (or a forger's) text, shown
// through shown.
type sentToken struct {
	Alg, Kid string
	Iss      string
	Aud      []string
	Azp      string
	Nonce    string
	Exp, Iat time.Time
}

// readSent reads the header and claims of a compact JWS; ok is false for
// anything else (then the library's own words stand).
func readSent(idToken string) (t sentToken, ok bool) {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return t, false
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var body struct {
		Iss   any `json:"iss"`
		Aud   any `json:"aud"`
		Azp   any `json:"azp"`
		Nonce any `json:"nonce"`
		Exp   any `json:"exp"`
		Iat   any `json:"iat"`
	}
	for i, v := range []any{&hdr, &body} {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil || json.Unmarshal(b, v) != nil {
			return t, false
		}
	}
	t = sentToken{Alg: hdr.Alg, Kid: hdr.Kid, Iss: str(body.Iss), Azp: str(body.Azp), Nonce: str(body.Nonce),
		Exp: unixTime(body.Exp), Iat: unixTime(body.Iat)}
	switch a := body.Aud.(type) {
	case string:
		t.Aud = []string{a}
	case []any:
		for _, e := range a {
			t.Aud = append(t.Aud, str(e))
		}
	}
	return t, true
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// unixTime reads a time claim as the checks do (a number, or a string of
// digits); zero when it is neither.
func unixTime(v any) time.Time {
	if s, ok := v.(string); ok {
		if num, err := readTime(json.RawMessage(`"` + s + `"`)); err == nil && num != nil {
			v = json.Number(num)
		}
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case json.Number:
		f, _ = x.Float64()
	}
	if f <= 0 || f > maxTime {
		return time.Time{}
	}
	return time.Unix(int64(f), 0).UTC()
}

// shown quotes a value the IdP sent for the reason: one line, bounded,
// quoted (so that no HTML or markup in it reads as the broker's words;
// every surface escapes it as text besides).
func shown(s string) string { return fmt.Sprintf("%q", connections.OneLine(s, 200)) }

func shownList(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	if len(l) > 5 {
		l = append(l[:5:5], fmt.Sprintf("and %d more", len(l)-5))
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = shown(s)
	}
	return strings.Join(out, ", ")
}

// clock is how a time is shown: UTC, to the second.
func clock(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// explainIDToken names, for the tenant admin, what in the id_token the
// IdP sent failed the library's check err, and what to change at the
// IdP: the values the IdP sent and the ones expected (issuer, audience,
// azp, times, key id, algorithm), never the token itself nor the nonce.
// nil when err is no refusal of the id_token (the library's words, or
// classifyOIDCError's, stand).
func (c *oidcConnector) explainIDToken(err error, idToken string) error {
	v := c.rp.IDTokenVerifier()
	t, ok := readSent(idToken)
	if !ok {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Second)
	switch {
	case errors.Is(err, oidc.ErrIssuerInvalid):
		return fmt.Errorf("%w: the id_token's issuer (iss) was %s, expected %s: set the connection's issuer to the one the IdP puts in its id_tokens (Entra ID's v1.0 endpoints issue https://sts.windows.net/{tenant-id}/, its v2.0 ones https://login.microsoftonline.com/{tenant-id}/v2.0; an Okta custom authorization server has an issuer of its own)",
			connections.ErrIssuerMismatch, shown(t.Iss), shown(v.Issuer))
	case errors.Is(err, oidc.ErrAudience):
		return fmt.Errorf("%w: the id_token's audience (aud) was %s, expected it to include the connection's client_id %s: set the client id to the IdP application's (Entra ID: Application (client) ID; Okta: Client ID)",
			connections.ErrAudienceMismatch, shownList(t.Aud), shown(v.ClientID))
	case errors.Is(err, oidc.ErrAzpMissing):
		return fmt.Errorf("%w: the id_token names several audiences (aud %s) and no authorized party (azp); azp must be the connection's client_id %s",
			connections.ErrAudienceMismatch, shownList(t.Aud), shown(v.ClientID))
	case errors.Is(err, oidc.ErrAzpInvalid):
		return fmt.Errorf("%w: the id_token's authorized party (azp) was %s, expected the connection's client_id %s (aud was %s)",
			connections.ErrAudienceMismatch, shown(t.Azp), shown(v.ClientID), shownList(t.Aud))
	case errors.Is(err, oidc.ErrExpired) && !t.Exp.IsZero():
		return fmt.Errorf("%w: the id_token expired at %s (exp; issued at %s), and it is %s by the broker's clock, more than the %s allowed for clock skew: check the IdP's clock, and that its id_tokens live longer than the sign-in takes",
			connections.ErrExpired, clock(t.Exp), iatText(t.Iat), clock(now), issuedAtSkew)
	case errors.Is(err, oidc.ErrIatInFuture) && !t.Iat.IsZero():
		return fmt.Errorf("%w: the id_token was issued at %s (iat), %s ahead of the broker's clock (%s), more than the %s allowed for clock skew: check the IdP's clock (NTP)",
			connections.ErrNotYetValid, clock(t.Iat), t.Iat.Sub(now), clock(now), issuedAtSkew)
	case errors.Is(err, oidc.ErrSubjectMissing):
		// Found before the signature is checked: only the IdP's token
		// endpoint, over TLS, sent it, and nothing is accepted on it.
		return fmt.Errorf("%w: the id_token has no subject (sub), or an empty one, which OpenID Connect requires of every id_token as the user's stable id at the IdP (issuer %s): the IdP's application must issue OpenID Connect id_tokens, with sub (a custom claims policy or token mapping may have removed it)",
			connections.ErrProfile, shown(t.Iss))
	case errors.Is(err, oidc.ErrIatMissing):
		return fmt.Errorf("%w: the id_token has no issued-at time (iat), which OpenID Connect requires of every id_token and the broker checks against its clock (exp %s): the IdP's application must issue OpenID Connect id_tokens with iat (a custom claims policy or token mapping may have removed it)",
			connections.ErrMalformed, expText(t.Exp))
	case errors.Is(err, oidc.ErrNonceInvalid):
		got := "a nonce of another sign-in"
		if t.Nonce == "" {
			got = "no nonce"
		}
		return fmt.Errorf("%w: the id_token has %s, not the one this sign-in sent in its authorization request: the IdP must return the request's nonce unchanged (a replayed or cached id_token does not)",
			connections.ErrRequestMismatch, got)
	case errors.Is(err, oidc.ErrSignatureUnsupportedAlg):
		return fmt.Errorf("%w: the id_token is signed with alg %s, which the IdP's discovery document does not list in id_token_signing_alg_values_supported (%s), or one never accepted (none, HMAC): have the IdP sign id_tokens with one it lists",
			connections.ErrSignature, shown(t.Alg), strings.Join(v.SupportedSignAlgs, ", "))
	case errors.Is(err, oidc.ErrKeyNone) && t.Kid != "":
		return fmt.Errorf("%w: the id_token is signed (alg %s) with key id (kid) %s, and the IdP's JWKS at %s holds no signing key of that kid for that alg: the IdP signs with a key it does not publish there (a custom signing key on the Entra application needs appid in the issuer's jwks_uri; an Okta custom authorization server has its own issuer and keys)",
			connections.ErrSignature, shown(t.Alg), shown(t.Kid), c.keysURL())
	case errors.Is(err, oidc.ErrSignatureInvalid) && t.Kid != "" && !errors.Is(err, oidc.ErrKeyMultiple) &&
		!strings.Contains(err.Error(), "unable to fetch key"):
		// A key of that kid is published, and it does not verify the
		// token: the IdP's keys were replaced under the same kid, or the
		// token is not the IdP's.
		return fmt.Errorf("%w: the id_token (alg %s, key id (kid) %s) does not verify with the key of that kid in the IdP's JWKS at %s: the IdP signed with another key under the same kid, or the id_token is not the IdP's",
			connections.ErrSignature, shown(t.Alg), shown(t.Kid), c.keysURL())
	}
	return nil
}

func iatText(iat time.Time) string {
	if iat.IsZero() {
		return "an unknown time"
	}
	return clock(iat)
}

func expText(exp time.Time) string {
	if exp.IsZero() {
		return "none either"
	}
	return clock(exp)
}

func (c *oidcConnector) keysURL() string {
	if c.jwksURI == "" {
		return "(the discovery document's jwks_uri)"
	}
	return c.jwksURI
}
