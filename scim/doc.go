// Package scim is idbroker's SCIM 2.0 service provider (RFC 7643, RFC 7644):
// Okta, Entra ID and other IdPs push users and groups into a tenant's
// directory at {issuer}/scim/v2/{directory}.
//
// The directory's bearer token is the credential: it is hashed and looked
// up for the directory named in the URL, which yields the tenant (a token
// opens its own directory only). Every store call then runs under that
// tenant. Writes on PostgreSQL skip the lookup when the node remembers the
// tenant the token opened: the store checks the token in the write's first
// round trip instead (store.WithDirectoryCredential), so revocation still
// takes effect at once.
//
// A SCIM user is the tenant's one user of that person: store.CreateUser
// adopts an SSO-created user of the same email, and SSO logins later find the
// directory's record. Each change commits with its event (dsync.*) in one
// transaction, the outbox that package events delivers to webhooks.
// Deprovisioning (active false, by PUT or PATCH, or DELETE) revokes the
// user's sessions on every node through sessions.Store before the request
// answers; the broker, subscribed to revocations, sends back-channel logouts.
//
// Resources are stored as the documents clients sent (canonical attribute
// case), so that GET returns what was written; the columns the store
// indexes are derived from them. Filters are parsed here (ParseFilter) and
// translated into the store's filter AST, rendered as parameterised SQL.
// PATCH follows RFC 7644 §3.5.2 and tolerates what Okta and Entra ID
// actually send. Group members live in a table of their own and are never
// loaded to change one.
package scim
