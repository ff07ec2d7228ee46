// Package devmode is what `idbroker serve --dev` adds so that a newcomer
// sees a real login within a minute: a seeded tenant (Example, verified
// domain example.com), a SAML connection to a built-in test IdP served by
// the same process under /dev/idp, and a demo application under /dev/app
// that signs in through the broker with the authorization code flow and
// PKCE, then shows the normalised id_token claims.
//
//	/dev/app ──/authorize──▶ broker ──SAML AuthnRequest──▶ /dev/idp
//	   ▲                                                     │ pick alice or bob
//	   └──code──── broker ◀──POST /sso/saml/{conn}/acs───────┘
//
// Nothing here is mounted without --dev: the test IdP signs in anyone who
// clicks a name.
package devmode
