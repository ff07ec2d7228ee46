package broker

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/sessions"
)

// The refresh token reuse interval (store.Application.RefreshTokenReuseInterval).
//
// Rotation is strict by default: a spent refresh token presented again is
// reuse and ends its family and session. Two tabs of one app refreshing
// at once present the same token twice, and the second ended the user's
// session. An application may opt into a window of up to 60 s, as Okta
// ("grace period for token rotation") and Auth0 ("reuse interval")
// offer, in which the token just spent answers again.
//
// What it answers: the family's current refresh token, the one the first
// request got, with fresh access and id tokens. Auth0 mints yet another
// token of the family instead; here a family holds one current token, so
// that would leave the first tab holding a token the family had moved
// past, which after the window is reuse: the session would end anyway,
// a minute later. Answering the same current token leaves every tab with
// it. Only the previous generation's token answers (as Auth0: the one
// before it is reuse), only within the window, only for its own client.
//
// The family's record (Redis, which every node reads) keeps, from the
// rotation that spent the token, its hash and the current token sealed
// with a key derived from the spent token itself: the record never holds
// a usable token, and only a holder of the spent one can open it. The
// application's setting comes with its client authentication (cached),
// so the window costs no SQL on the refresh path.

// sealNext seals the current refresh token next under a key derived from
// the token prev that its rotation spent.
func sealNext(prev, next string) ([]byte, error) {
	aead, err := graceAEAD(prev)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(next)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, []byte(next), nil), nil
}

// openNext opens what sealNext sealed, with the spent token.
func openNext(prev string, sealed []byte) (string, error) {
	aead, err := graceAEAD(prev)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("broker: sealed refresh token too short")
	}
	b, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	return string(b), err
}

func graceAEAD(prev string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte("idbroker refresh reuse interval\x00" + prev))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// isPrevious reports whether the token of generation gen with hash is
// family f's previous one, within its window as of the broker's clock.
func (p *Provider) isPrevious(f sessions.Family, gen uint64, hash string) bool {
	return gen+1 == f.Gen && f.PrevHash != "" && len(hash) == len(f.PrevHash) &&
		subtle.ConstantTimeCompare([]byte(hash), []byte(f.PrevHash)) == 1 && p.now().Before(f.PrevUntil)
}

// refreshPrevious answers the previous token of family f within its
// window: the family's current refresh token again, with new access and
// id tokens, after the checks of any refresh. The family does not move.
func (s *opServer) refreshPrevious(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest], cl client, g grant, f sessions.Family, tok string) (*op.Response, error) {
	p := s.p
	switch {
	case slices.ContainsFunc(r.Data.Scopes, func(sc string) bool { return !slices.Contains(g.Scopes, sc) }):
		return nil, oidc.ErrInvalidScope().WithDescription("a refresh cannot widen the scope")
	case p.now().Unix() >= g.Expires:
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token has expired")
	}
	rt, err := openNext(tok, f.PrevSealed)
	if err != nil || refreshHash(rt) != f.Hash {
		// The record's current token moved on since it was read, or the
		// record is not what the rotation wrote: nothing to answer, and
		// nothing proves reuse either.
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
	}
	issued := g
	if len(r.Data.Scopes) > 0 {
		issued.Scopes = r.Data.Scopes
	}
	tenantKnown(ctx, g.TenantID)
	now := p.now()
	sess, err := p.liveSession(ctx, g)
	if err != nil {
		return nil, err
	}
	if err := p.checkActive(ctx, g.TenantID, g.UserID); err != nil {
		return nil, err
	}
	issued.Nonce = ""
	p.log.InfoContext(ctx, "broker: spent refresh token presented again within its application's reuse interval; answered with the current one",
		"client_id", g.ClientID, "sid", g.SessionID)
	resp, err := p.mint(ctx, cl.app, issued, sess, rt, now)
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}
