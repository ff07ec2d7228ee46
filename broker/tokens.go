package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Token prefixes: recognisable to people and secret scanners.
const (
	codePrefix    = "idbc"
	refreshPrefix = "idbr"
)

// grant is what a code or refresh token stands for: one application's
// authorization in one broker session.
type grant struct {
	ClientID    string   `json:"client_id"`
	RedirectURI string   `json:"redirect_uri,omitempty"`
	Challenge   string   `json:"code_challenge,omitempty"`
	Nonce       string   `json:"nonce,omitempty"`
	Scopes      []string `json:"scopes"`
	SessionID   string   `json:"sid"`
	TenantID    string   `json:"tenant_id"`
	UserID      string   `json:"sub"`
	Family      string   `json:"family"`            // refresh-token family, one per code
	Expires     int64    `json:"expires,omitempty"` // refresh: unix end of this token
	Issued      int64    `json:"iat,omitempty"`     // refresh: unix time it was minted
	// Granted is when the code was issued (unix seconds), kept by the
	// refresh family it starts: a revocation of the application's grant
	// in the session (sessions.Session.Revoked) at or after it ends the
	// code and the family. Zero (issued before this field) is as old as
	// can be.
	Granted int64 `json:"granted,omitempty"`
}

func tokenKey(kind, token string) string {
	return "broker:" + kind + ":" + hex.EncodeToString(secrets.HashToken(token))
}

// issueCode stores a's grant under a new single-use code (60 s).
func (p *Provider) issueCode(ctx context.Context, a pending, s session) (string, error) {
	if err := p.waitOutRevocation(ctx, s, a.ClientID); err != nil {
		return "", err
	}
	code, key, rec, err := p.newCode(a, s)
	if err != nil {
		return "", err
	}
	if err := p.once.Put(ctx, key, rec, codeTTL); err != nil {
		return "", fmt.Errorf("broker: store record: %w", err)
	}
	return code, nil
}

// waitOutRevocation waits, less than a second, while it is still the
// second in which clientID's grant in s was revoked: tokens carry whole
// seconds, and everything issued in that second counts as revoked
// (sessions.Session.GrantRevoked), so a code issued now — the application
// signing the user in again through the SSO cookie at once — would be
// dead at birth.
func (p *Provider) waitOutRevocation(ctx context.Context, s session, clientID string) error {
	r, ok := s.Revoked[clientID]
	if !ok {
		return nil
	}
	wait := time.Unix(r.Unix()+1, 0).Sub(p.now())
	if wait <= 0 || wait > time.Second {
		return nil // past, or a clock that is not the revocation's: newCode dates the grant after it
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: wait out a grant's revocation: %w", context.Cause(ctx))
	}
}

// newCode returns a new code for a's grant in session s, with the key and
// the record that issuing it stores.
func (p *Provider) newCode(a pending, s session) (code, key string, rec []byte, err error) {
	code = secrets.NewToken(codePrefix)
	g := grant{
		ClientID: a.ClientID, RedirectURI: a.RedirectURI, Challenge: a.CodeChallenge, Nonce: a.Nonce,
		Scopes: a.Scopes, SessionID: s.ID, TenantID: s.TenantID, UserID: s.UserID,
		Family: secrets.NewUniqueID(), Granted: p.now().Unix(),
	}
	// A grant given after the application's grant in the session was
	// revoked is dated after that revocation, even when this node's clock
	// is behind the one that revoked (waitOutRevocation waits out only
	// the revocation's own second): dated by this clock, it was revoked
	// at birth, and the user signing in again got invalid_grant.
	if r, ok := s.Revoked[a.ClientID]; ok && g.Granted <= r.Unix() {
		g.Granted = r.Unix() + 1
	}
	if rec, err = json.Marshal(g); err != nil {
		return "", "", nil, fmt.Errorf("broker: encode code: %w", err)
	}
	return code, tokenKey("code", code), rec, nil
}

// CodeExchange redeems a code. The code is taken atomically, so of racing
// redemptions exactly one wins; a code seen again after it was redeemed
// means it leaked, and everything issued from it is revoked: its
// refresh-token family and the session its access token names.
func (s *opServer) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	p := s.p
	// The code is taken and remembered as spent (for reuse detection) in
	// one step, before anything is minted.
	var g grant
	b, err := p.once.Spend(ctx, tokenKey("code", r.Data.Code), tokenKey("usedcode", r.Data.Code), p.sessionTTL)
	err = decodeRecord(b, err, &g)
	if errors.Is(err, errExpired) {
		// The spent code is read, not taken, until its grant is revoked:
		// if the revocation fails, the next presentation tries again.
		var used grant
		switch err := p.peekJSON(ctx, tokenKey("usedcode", r.Data.Code), &used); {
		case err == nil:
			if err := p.revokeGrant(ctx, used, "authorization code reused"); err != nil {
				return nil, unavailable(err)
			}
			_ = p.takeJSON(ctx, tokenKey("usedcode", r.Data.Code), &used) // revoked once is enough
		case !errors.Is(err, errExpired):
			return nil, unavailable(err)
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is invalid, expired or already used")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	// A redemption refused (another client, redirect_uri, verifier, an
	// ended session, an outage) spends the code but issues nothing, and
	// then it forgets that the code was spent: presented again, the code
	// is unknown, not reused. Reuse revokes everything issued from the
	// code (the session), which here is nothing of the code's own; and
	// x/oauth2, whose first token request goes with Basic credentials,
	// retries a refused one with them in the body: a wrong verifier (a
	// sign-in started in two tabs) signed the user out of every
	// application, and a stolen code presented once by anyone did too.
	issued := false
	defer func() {
		if !issued {
			tctx, cancel := detached(ctx)
			defer cancel()
			if _, err := p.once.Take(tctx, tokenKey("usedcode", r.Data.Code)); err != nil && !errors.Is(err, sessions.ErrNotFound) {
				p.log.WarnContext(ctx, "broker: forget a code refused at redemption", "err", err)
			}
		}
	}()
	sloTenant(ctx, g.TenantID)
	cl := r.Client.(client)
	switch {
	case cl.app.ID != g.ClientID:
		return nil, oidc.ErrInvalidGrant().WithDescription("the code was issued to another client")
	case r.Data.RedirectURI != g.RedirectURI:
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	case g.Challenge != "" || r.Data.CodeVerifier != "":
		// A verifier missing, unexpected or wrong is the grant failing
		// its proof (RFC 7636 §4.6, OAuth 2.1 §4.1.3): invalid_grant, as
		// the mismatch already was, not op's invalid_request for the
		// first two. The code is spent either way.
		if v := r.Data.CodeVerifier; v != "" && !isCodeVerifier(v) {
			// RFC 7636 §4.1: whatever its hash, a verifier outside 43 to
			// 128 unreserved characters is not one (op only hashes it).
			return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
		}
		if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, challenge(g.Challenge)); err != nil {
			desc := "code_verifier does not match the authorization request's code_challenge"
			if oe, ok := errors.AsType[*oidc.Error](err); ok && oe.Description != "" {
				desc = oe.Description
			}
			return nil, oidc.ErrInvalidGrant().WithDescription("%s", desc)
		}
	}
	tenantKnown(ctx, g.TenantID)
	if p.tokenPace != nil {
		defer p.tokenPace(ctx, g.TenantID)()
	}
	sess, err := p.liveSession(ctx, g)
	if err != nil {
		return nil, err
	}
	if err := p.checkActive(ctx, g.TenantID, g.UserID); err != nil {
		return nil, err
	}
	next, rt, err := p.nextRefresh(cl.app, g, sess, 0)
	if err != nil {
		return nil, err
	}
	// Back-channel logout reaches exactly the applications that got
	// tokens in a session: the session records them, before the refresh
	// family starts (in the same call with a joint store).
	if err := p.addAppFamily(ctx, g, next, rt != ""); errors.Is(err, sessions.ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("the session has ended")
	} else if err != nil {
		return nil, unavailable(err)
	}
	resp, err := p.mint(ctx, cl.app, g, sess, rt, p.now())
	if err != nil {
		return nil, err
	}
	issued = true
	return op.NewResponse(resp), nil
}

// addAppFamily records g's application in its session and, when withFamily,
// starts refresh family f: ErrNotFound, and no family, if the session has
// ended.
func (p *Provider) addAppFamily(ctx context.Context, g grant, f sessions.Family, withFamily bool) error {
	if !withFamily {
		f = sessions.Family{}
	}
	if p.joint != nil {
		return p.joint.AddAppFamily(ctx, g.SessionID, g.ClientID, f)
	}
	if err := p.sessions.AddApp(ctx, g.SessionID, g.ClientID); err != nil {
		return err
	}
	if f.ID == "" {
		return nil
	}
	return p.families.StartFamily(ctx, f)
}

// isCodeVerifier reports whether v has the form RFC 7636 §4.1 gives a
// code_verifier: 43 to 128 unreserved characters.
func isCodeVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := range len(v) {
		switch b := v[i]; {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '.', b == '_', b == '~':
		default:
			return false
		}
	}
	return true
}

func challenge(c string) *oidc.CodeChallenge {
	if c == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: c, Method: oidc.CodeChallengeMethodS256}
}

// descGrantRevoked is invalid_grant's description for a code or refresh
// token whose grant was revoked.
const descGrantRevoked = "the grant was revoked"

// liveSession returns the session of grant g, or invalid_grant once it
// has ended or the application's grant in it was revoked: nothing
// outlives its session, nor its grant. A session store that cannot
// answer is a 503 to retry, not an ended session: the client keeps its
// token.
func (p *Provider) liveSession(ctx context.Context, g grant) (session, error) {
	s, err := p.getSession(ctx, g.SessionID)
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return session{}, oidc.ErrInvalidGrant().WithDescription("the session has ended")
	case err != nil:
		return session{}, unavailable(err)
	case s.UserID != g.UserID || s.TenantID != g.TenantID:
		return session{}, oidc.ErrInvalidGrant().WithDescription("the session has ended")
	case s.GrantRevoked(g.ClientID, g.Granted):
		return session{}, oidc.ErrInvalidGrant().WithDescription(descGrantRevoked)
	}
	return s, nil
}

// RefreshToken rotates a refresh token: the token presented must be its
// family's current one, and the family moves to the next generation in one
// atomic step (sessions.Families.Rotate). A token of an earlier generation
// is reuse — the client or an attacker holds a copy that must die — and
// ends the family and its session together, so that no token of the family
// works afterwards, whichever request minted it. Of two concurrent
// refreshes of one token, one wins and the other is reuse.
func (s *opServer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	p := s.p
	tok := r.Data.RefreshToken
	if isLegacyRefresh(tok) {
		return s.refreshLegacy(ctx, r, tok)
	}
	fam, gen, ok := parseRefresh(tok)
	if !ok {
		return nil, oidc.ErrInvalidGrant().WithDescription("unknown refresh token")
	}
	f, err := p.families.Family(ctx, fam)
	if errors.Is(err, sessions.ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var g grant
	if err := json.Unmarshal(f.Grant, &g); err != nil {
		return nil, oidc.ErrServerError().WithParent(fmt.Errorf("broker: decode refresh family: %w", err))
	}
	sloTenant(ctx, g.TenantID)
	hash := refreshHash(tok)
	cl := r.Client.(client)
	if gen == f.Gen && hash == f.Hash {
		// A request refused for what it asks, not for the token, leaves
		// the token unspent: the owner's next, correct refresh must not
		// look like reuse.
		switch {
		case cl.app.ID != g.ClientID:
			return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token was issued to another client")
		case slices.ContainsFunc(r.Data.Scopes, func(sc string) bool { return !slices.Contains(g.Scopes, sc) }):
			return nil, oidc.ErrInvalidScope().WithDescription("a refresh cannot widen the scope")
		case p.now().Unix() >= g.Expires:
			return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token has expired")
		}
	} else if cl.app.ID != g.ClientID {
		// Another client's token: nothing to learn from it, nothing to
		// revoke.
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
	} else if grace := cl.app.RefreshTokenReuseInterval; grace > 0 && p.isPrevious(f, gen, hash) {
		// The token its family's last rotation spent, within the
		// application's reuse interval (refresh_grace.go).
		return s.refreshPrevious(ctx, r, cl, g, f, tok)
	}
	// Any other token of the family goes on to Rotate, which ends the
	// family and its session: an older generation is reuse; a later one,
	// or the current one with another hash, means the record was rewound
	// (a Redis restored from a snapshot) and the spent token of its
	// generation may have been taken since.

	// A narrower scope is what this refresh's tokens carry. The grant, and
	// the refresh token that stands for it, keep the scope the user
	// granted: RFC 6749 §6 treats an omitted scope as that one, so the
	// next refresh gets all of it back.
	issued := g
	if len(r.Data.Scopes) > 0 {
		issued.Scopes = r.Data.Scopes
	}
	tenantKnown(ctx, g.TenantID)
	// The tokens' iat is taken before the session is read: a revocation
	// of the grant that lands after the read (and so goes unseen here)
	// is at or after that iat, which makes them dead all the same.
	now := p.now()
	sess, err := p.liveSession(ctx, g)
	if oe, ok := errors.AsType[*oidc.Error](err); ok && oe.Description == descGrantRevoked {
		p.revokeFamily(ctx, fam) // dead anyway; the record need not wait for its expiry
	}
	if err != nil {
		return nil, err
	}
	if err := p.checkActive(ctx, g.TenantID, g.UserID); err != nil {
		return nil, err
	}
	g.Nonce, issued.Nonce = "", "" // nonce belongs to the authentication, not to refreshed id_tokens
	// Every rotation answers the next refresh token, whatever scope this
	// refresh narrowed to: it stands for the grant (RFC 6749 §6: a new
	// refresh token has the scope of the one presented), and the presented
	// one is spent. Answering none while spending it left the client the
	// spent token, which x/oauth2, Spring Security and openid-client keep
	// when the answer has no refresh_token (RFC 6749 §6 lets them): their
	// next refresh was reuse, and ended the user's session everywhere.
	next, rt, err := p.nextRefresh(cl.app, g, sess, gen+1)
	if err != nil {
		return nil, err
	}
	if rt == "" {
		// A family whose grant lacks offline_access (none is started so)
		// still rotates to a generation no token has: presenting the
		// spent token again is reuse.
		next = sessions.Family{ID: fam, SessionID: g.SessionID, Gen: gen + 1, Grant: f.Grant, ExpiresAt: time.Unix(g.Expires, 0)}
	}
	if grace := cl.app.RefreshTokenReuseInterval; grace > 0 && rt != "" {
		// The token spent here answers again for the window, with rt.
		sealed, err := sealNext(tok, rt)
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		next.PrevHash, next.PrevSealed, next.PrevUntil = hash, sealed, now.Add(grace)
		// Of two concurrent refreshes of this token, the loser is
		// answered as the previous token, not as reuse.
		next.AllowPrevious = gen == f.Gen
	}
	res, ended, err := p.families.Rotate(ctx, fam, gen, hash, next)
	if err != nil {
		return nil, unavailable(err)
	}
	if res == sessions.Previous {
		// Another request rotated the token between the read and here:
		// read what it left.
		f, err := p.families.Family(ctx, fam)
		if errors.Is(err, sessions.ErrNotFound) {
			return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
		}
		if err != nil {
			return nil, unavailable(err)
		}
		return s.refreshPrevious(ctx, r, cl, g, f, tok)
	}
	switch res {
	case sessions.Reused:
		if gen < f.Gen {
			p.log.WarnContext(ctx, "broker: spent refresh token presented again; its family and session are revoked",
				"client_id", g.ClientID, "sid", g.SessionID)
		} else {
			p.log.WarnContext(ctx, "broker: refresh token of a generation its family's record does not hold (session store rewound?); the family and session are revoked",
				"client_id", g.ClientID, "sid", g.SessionID, "generation", gen, "record_generation", f.Gen)
		}
		p.queueLogouts(ctx, ended)
		if p.revoker != nil && g.TenantID != "" {
			// Kept like a sign-out, so that a session store that comes
			// back from before this reuse has the session ended again
			// (events.Rewinds): its family, as of then, would otherwise
			// take a spent token once more.
			rv := store.Revocation{Kind: store.RevokeSession, TenantID: g.TenantID, SubjectID: g.SessionID, Reason: "refresh token reused"}
			kctx, cancel := detached(ctx)
			err := p.store.KeepRevocation(kctx, rv)
			cancel()
			if err != nil {
				p.log.ErrorContext(ctx, "broker: keep the reused family's session end for replay", "sid", g.SessionID, "err", err)
			}
		}
		// The family's store ended the session itself; revoking again
		// through this node's cache (idempotent) drops it here at once,
		// not when the revocation message arrives.
		if err := p.sessions.Revoke(ctx, g.SessionID); err != nil {
			p.log.ErrorContext(ctx, "broker: revoke session after reuse", "sid", g.SessionID, "err", err)
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
	case sessions.Rotated:
	default:
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
	}
	resp, err := p.mint(ctx, cl.app, issued, sess, rt, now)
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}

// Refresh tokens are "idbr_{family}.{generation}.{secret}": the family and
// generation find the family's one record; only the hash of the whole
// token is stored.
func newRefreshToken(family string, gen uint64) string {
	return refreshPrefix + "_" + family + "." + strconv.FormatUint(gen, 10) + "." + secrets.NewToken("")
}

func parseRefresh(tok string) (family string, gen uint64, ok bool) {
	rest, ok := strings.CutPrefix(tok, refreshPrefix+"_")
	if !ok {
		return "", 0, false
	}
	family, rest, ok1 := strings.Cut(rest, ".")
	genStr, secret, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || family == "" || secret == "" {
		return "", 0, false
	}
	gen, err := strconv.ParseUint(genStr, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return family, gen, true
}

func refreshHash(tok string) string { return hex.EncodeToString(secrets.HashToken(tok)) }

// nextRefresh mints the refresh token of generation gen for grant g and
// the family record that will make it current. Without offline_access
// there is none (rt is empty).
func (p *Provider) nextRefresh(a store.Application, g grant, s session, gen uint64) (sessions.Family, string, error) {
	if !slices.Contains(g.Scopes, oidc.ScopeOfflineAccess) {
		return sessions.Family{}, "", nil
	}
	// A refresh token lives its own TTL but never past its session.
	now := p.now()
	end := min(now.Add(refreshTokenTTL(a)).Unix(), s.ExpiresAt.Unix())
	g.Expires, g.Issued = end, now.Unix()
	g.RedirectURI, g.Challenge = "", ""
	b, err := json.Marshal(g)
	if err != nil {
		return sessions.Family{}, "", oidc.ErrServerError().WithParent(err)
	}
	rt := newRefreshToken(g.Family, gen)
	return sessions.Family{ID: g.Family, SessionID: g.SessionID, Gen: gen, Hash: refreshHash(rt), Grant: b,
		ExpiresAt: time.Unix(end, 0)}, rt, nil
}

// revokeFamily ends a refresh-token family. A failure is logged: the
// family's tokens die with their session, which revokeGrant ends durably.
func (p *Provider) revokeFamily(ctx context.Context, family string) {
	if family == "" {
		return
	}
	if err := p.families.EndFamily(ctx, family); err != nil {
		p.log.ErrorContext(ctx, "broker: end refresh family", "err", err)
	}
}

// unavailable is the token endpoint's answer when the session store cannot
// be reached: 503 temporarily_unavailable (Retry-After is added on the way
// out, see retryAfter503), never a 500.
func unavailable(err error) error {
	return op.NewStatusError(&oidc.Error{ErrorType: errTemporarilyUnavailable, Description: "try again shortly", Parent: err},
		http.StatusServiceUnavailable)
}

// revokeGrant revokes everything issued from a leaked code: its
// application's grant in the session it was issued in (RFC 6749 §4.1.2
// asks for the tokens issued from the code): every access token of the
// application in that session issued until now turns inactive, its refresh
// families die and its codes cannot be redeemed. The session, its SSO
// cookie and the other applications' tokens stay, as with /oauth/revoke:
// whoever took the code got this application's tokens, never the browser's
// session, and signing the user out of every application would punish the
// user, not the thief. It must not be lost to a session store that is
// down: revokeClientDurably queues it then, and a failure is returned only
// when neither takes it (the spent code is kept, so its next presentation
// revokes again).
func (p *Provider) revokeGrant(ctx context.Context, g grant, why string) error {
	p.log.WarnContext(ctx, "broker: "+why+"; the application's grant in the session is revoked", "client_id", g.ClientID, "sid", g.SessionID)
	// The tokens the code was redeemed for may come from a node whose
	// clock is ahead of this one: the revocation covers them by their
	// family's latest minting, when the family can still be read.
	issued := g.Granted
	if f, err := p.families.Family(ctx, g.Family); err == nil {
		var fg grant
		if json.Unmarshal(f.Grant, &fg) == nil {
			issued = max(issued, fg.Issued, fg.Granted)
		}
	}
	p.revokeFamily(ctx, g.Family)
	if err := p.revokeClientDurably(ctx, g.TenantID, g.SessionID, g.ClientID, why, issued); err != nil {
		return fmt.Errorf("broker: revoke the grant of %s in session %s: %w", g.ClientID, g.SessionID, err)
	}
	return nil
}

// mint signs the access and id tokens of grant g for application a, issued
// at now, and returns them with refresh token rt (none if empty).
func (p *Provider) mint(ctx context.Context, a store.Application, g grant, s session, rt string, now time.Time) (*oidc.AccessTokenResponse, error) {
	alg, atAlg := signingAlg(a), accessTokenAlg(a)
	iat := now.Unix()
	// The access token is never dated before its grant (see newCode): its
	// iat is what a revocation is compared with, and a grant dated after a
	// revocation on a node whose clock is ahead would otherwise mint
	// tokens that revocation already ended. The id_token keeps this
	// node's time: applications check its iat against their clocks.
	atIat := max(iat, g.Granted)
	atTTL := accessTokenTTL(a)
	scope := strings.Join(g.Scopes, " ")
	at, err := p.sign(atAlg, "at+jwt", accessClaims{
		Iss: p.issuer, Sub: g.UserID, Aud: a.ID, Exp: now.Add(atTTL).Unix(), Iat: atIat,
		JTI: secrets.NewUniqueID(), ClientID: a.ID, Scope: scope, TenantID: g.TenantID, SID: g.SessionID,
	})
	if err != nil {
		return nil, err
	}
	// at_hash uses the id_token's algorithm's hash (SHA-256 for both).
	atHash, err := oidc.ClaimHash(at, jose.SignatureAlgorithm(alg))
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	cl := s.Claims
	idt, err := p.sign(alg, "JWT", idClaims{
		Iss: p.issuer, Sub: g.UserID, Aud: a.ID, Exp: now.Add(idTokenTTL(a)).Unix(), Iat: iat,
		AuthTime: s.AuthTime.Unix(), Nonce: g.Nonce, AtHash: atHash, SID: g.SessionID,
		Email: cl.Email, EmailVerified: cl.EmailVerified, Name: cl.Name, GivenName: cl.GivenName, FamilyName: cl.FamilyName,
		Groups: cl.Groups, TenantID: g.TenantID, ConnectionID: s.ConnectionID, ConnectionType: cl.ConnectionType, IdPSubject: cl.IdPSubject,
	})
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken: at, IDToken: idt, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(atTTL / time.Second), Scope: g.Scopes,
	}
	resp.RefreshToken = rt
	p.meterActive(ctx, g, s)
	return resp, nil
}

// meterActive counts the user of tokens just minted as active this month
// (usage.Meter.Active): a refresh, or a code of the SSO session, keeps a
// user active without a sign-in at the IdP. A failure is logged and not
// the client's: the user keeps their tokens, and their next refresh this
// month writes the record again.
func (p *Provider) meterActive(ctx context.Context, g grant, s session) {
	if p.usage == nil || g.TenantID == "" {
		return
	}
	if err := p.usage.Active(store.WithTenant(ctx, g.TenantID), g.UserID, s.AuthTime); err != nil {
		p.log.ErrorContext(ctx, "broker: meter an active user; the next refresh tries again",
			"tenant_id", g.TenantID, "user_id", g.UserID, "err", err)
	}
}

func (p *Provider) sign(alg, typ string, claims any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", oidc.ErrServerError().WithParent(fmt.Errorf("broker: encode claims: %w", err))
	}
	tok, err := p.keys.Sign(alg, b, typ)
	if err != nil {
		return "", oidc.ErrServerError().WithParent(err)
	}
	return tok, nil
}

// idClaims are the id_token claims of contract section 1, no more.
type idClaims struct {
	Iss            string   `json:"iss"`
	Sub            string   `json:"sub"`
	Aud            string   `json:"aud"`
	Exp            int64    `json:"exp"`
	Iat            int64    `json:"iat"`
	AuthTime       int64    `json:"auth_time"`
	Nonce          string   `json:"nonce,omitempty"`
	AtHash         string   `json:"at_hash,omitempty"`
	SID            string   `json:"sid"`
	Email          string   `json:"email"`
	EmailVerified  bool     `json:"email_verified"`
	Name           string   `json:"name"`
	GivenName      string   `json:"given_name"`
	FamilyName     string   `json:"family_name"`
	Groups         []string `json:"groups,omitzero"` // omitted when unknown (nil), [] for none
	TenantID       string   `json:"tenant_id"`
	ConnectionID   string   `json:"connection_id"`
	ConnectionType string   `json:"connection_type"`
	IdPSubject     string   `json:"idp_subject"`
}

// accessClaims are an RFC 9068 access token's.
type accessClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	JTI      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	TenantID string `json:"tenant_id"`
	SID      string `json:"sid"`
}
