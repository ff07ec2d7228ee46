package broker

import "context"

// IssueCode mints a code for clientID in session sid, as a finished login
// would; benchmarks use it to measure the token endpoint alone.
func (p *Provider) IssueCode(ctx context.Context, clientID, redirectURI, sid string) (string, error) {
	s, err := p.getSession(ctx, sid)
	if err != nil {
		return "", err
	}
	return p.issueCode(ctx, pending{ClientID: clientID, RedirectURI: redirectURI, Nonce: "n0nce",
		Scopes: []string{"openid", "email", "profile", "groups", "offline_access"}}, s)
}
