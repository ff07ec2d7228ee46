package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

const userCols = `tenant_id, id, directory_id, external_id, user_name, email, email_verified, given_name,
	family_name, display_name, active, attributes, version, created_at, updated_at`

func scanUser(r row) (User, error) {
	var u User
	err := r.Scan(&u.TenantID, &u.ID, nullStringDest{&u.DirectoryID}, &u.ExternalID, &u.UserName, &u.Email,
		&u.EmailVerified, &u.GivenName, &u.FamilyName, &u.DisplayName, &u.Active, jsonDest{&u.Attributes},
		&u.Version, timeDest{&u.CreatedAt}, timeDest{&u.UpdatedAt})
	return u, err
}

func (db *DB) userArgs(u User) ([]any, error) {
	attrs, err := jsonArg(u.Attributes)
	if err != nil {
		return nil, err
	}
	return []any{u.TenantID, u.ID, nullString(u.DirectoryID), u.ExternalID, u.UserName, u.Email, u.EmailVerified,
		u.GivenName, u.FamilyName, u.DisplayName, u.Active, attrs, u.Version,
		db.d.timeArg(u.CreatedAt), db.d.timeArg(u.UpdatedAt)}, nil
}

const userInsert = "INSERT INTO users (" + userCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"

const userUpdate = `UPDATE users SET directory_id = $3, external_id = $4, user_name = $5, email = $6,
	email_verified = $7, given_name = $8, family_name = $9, display_name = $10, active = $11,
	attributes = $12, version = $13, created_at = $14, updated_at = $15
	WHERE tenant_id = $1 AND id = $2`

// userInsertUnlessSSO inserts a directory user ($1…$15 as userInsert)
// unless the tenant has an SSO-only user of the same email ($16 or $17,
// its forms (EmailForms), or $18, the userName when it is an address;
// folded by the database's lower(), as email_lc is), whom the directory adopts instead (see createUser for the one it
// does not): the common case, nobody to adopt, is then one statement
// instead of a lookup and an INSERT. With byDomain, email_verified is
// read from the tenant's domains ($19 the email's domain; $7, false, when
// it has none) in the same statement.
func userInsertUnlessSSO(byDomain bool) string {
	verified := "$7"
	if byDomain {
		verified = "COALESCE((SELECT verified FROM domains WHERE tenant_id = $1 AND domain = $19), $7)"
	}
	return "INSERT INTO users (" + userCols + ") SELECT $1, $2, $3, $4, $5, $6, " + verified + `, $8, $9, $10, $11, $12, $13, $14, $15
	WHERE NOT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND directory_id IS NULL AND email_lc IN (lower($16), lower($17), lower($18))) RETURNING email_verified`
}

var (
	userInsertAsGiven    = userInsertUnlessSSO(false)
	userInsertByDomain   = userInsertUnlessSSO(true)
	domainVerifiedSelect = "SELECT COALESCE((SELECT verified FROM domains WHERE tenant_id = $1 AND domain = $2), $3)"
)

// CreateUser adds a user to the tenant in ctx (see Store).
func (db *DB) CreateUser(ctx context.Context, u User) (User, error) {
	return db.createUser(ctx, u, false)
}

// CreateDirectoryUser is CreateUser for a directory's push: u.EmailVerified
// is not taken from the caller but is true exactly when the email's domain
// is one the tenant has verified (the directory is the tenant's own IdP
// speaking), read by the INSERT itself rather than by a lookup before it.
func (db *DB) CreateDirectoryUser(ctx context.Context, u User) (User, error) {
	return db.createUser(ctx, u, true)
}

func (db *DB) createUser(ctx context.Context, u User, byDomain bool) (User, error) {
	u.Email = NormalizeEmail(u.Email)
	domain, hasDomain := EmailDomain(u.Email)
	if byDomain {
		u.EmailVerified = false
		byDomain = hasDomain
	}
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		u.TenantID = tenantID
		now := db.now()
		if u.ID == "" {
			u.ID = NewID(PrefixUser)
		}
		u.Version, u.CreatedAt, u.UpdatedAt = 1, now, now
		args, err := db.userArgs(u)
		if err != nil {
			return err
		}
		if u.DirectoryID == "" || u.Email == "" {
			_, err = q.exec(ctx, userInsert, args...)
			return err
		}
		keys := adoptionKeys(u)
		insert, insertArgs := userInsertAsGiven, append(args, keys[0], keys[1], keys[2])
		if byDomain {
			insert, insertArgs = userInsertByDomain, append(insertArgs, domain)
		}
		err = q.queryRow(ctx, insert, insertArgs...).Scan(&u.EmailVerified)
		if !db.d.isNoRows(err) {
			return err
		}
		// The person signed in by SSO before the directory pushed them:
		// they stay one user.
		if byDomain {
			if err := q.queryRow(ctx, domainVerifiedSelect, tenantID, domain, false).Scan(&u.EmailVerified); err != nil {
				return err
			}
		}
		// One key at a time, the email first: with an IN, SQLite would
		// read the tenant's users in id order rather than the entries of
		// the index.
		var sso User
		for i, k := range keys {
			if i > 0 && slices.Contains(keys[:i], k) {
				continue
			}
			sso, err = scanUser(q.queryRow(ctx, "SELECT "+userCols+` FROM users
				WHERE tenant_id = $1 AND directory_id IS NULL AND email_lc = lower($2) ORDER BY id LIMIT 1`, tenantID, k))
			if !db.d.isNoRows(err) {
				break
			}
		}
		if err == nil && !sso.EmailVerified {
			// Not one that signed in with an email its IdP only claimed
			// (outside the tenant's verified domains): that may be
			// anyone's, and adopting it would hand the directory's
			// person, groups and all, to whoever signed in first with
			// their address. One a deleted directory released, never
			// signed in, is the directory's own record of the person.
			var linked int
			err = q.queryRow(ctx, "SELECT count(*) FROM user_identities WHERE tenant_id = $1 AND user_id = $2", tenantID, sso.ID).Scan(&linked)
			if err == nil && linked > 0 {
				err = errNotAdoptable
			}
		}
		if db.d.isNoRows(err) || errors.Is(err, errNotAdoptable) {
			// Deleted since the INSERT looked, or not to be adopted:
			// nobody to adopt after all.
			if args, err = db.userArgs(u); err != nil {
				return err
			}
			_, err = q.exec(ctx, userInsert, args...)
			return err
		}
		if err != nil {
			return err
		}
		u.ID, u.CreatedAt, u.Version = sso.ID, sso.CreatedAt, sso.Version+1
		if args, err = db.userArgs(u); err != nil {
			return err
		}
		_, err = q.exec(ctx, userUpdate, args...)
		return err
	})
	return u, db.wrap("create user", err)
}

// adoptionKeys are the addresses by which a directory's new user u adopts
// an SSO user: its email's forms (emailForms2) and its userName when that
// is an address. Entra ID sends the UPN as SAML NameID and as SCIM
// userName, and the mailbox as SCIM email: a person whose UPN is not
// their mailbox signed in by the one and is pushed by the other.
func adoptionKeys(u User) [3]string {
	f := emailForms2(u.Email)
	keys := [3]string{f[0], f[1], f[0]}
	if _, ok := EmailDomain(strings.TrimSpace(u.UserName)); ok {
		keys[2] = NormalizeEmail(u.UserName)
	}
	return keys
}

// emailForms2 is EmailForms as two arguments of an IN (…, …): the second
// repeats the first when there is one form only.
func emailForms2(email string) [2]string {
	f := EmailForms(email)
	if len(f) == 1 {
		return [2]string{f[0], f[0]}
	}
	return [2]string{f[0], f[1]}
}

// errNotAdoptable: the SSO user a directory's push found by email is not
// to be adopted.
var errNotAdoptable = errors.New("store: user not adoptable")

// errNoUserByEmail: no one user is the person a sign-in's email names
// (userByEmail).
var errNoUserByEmail = errors.New("store: no user by email")

// User returns one user of the tenant in ctx.
func (db *DB) User(ctx context.Context, id string) (User, error) {
	var u User
	// Inside InTx the row stays locked until the transaction ends, so that
	// a read-modify-write (a SCIM PUT or PATCH without If-Match) waits for
	// a concurrent one instead of losing to it (ErrVersionMismatch).
	lock := ""
	if _, inTx := ctx.Value(txKey{}).(*txState); inTx {
		lock = db.d.forUpdate()
	}
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var err error
		u, err = scanUser(q.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE tenant_id = $1 AND id = $2"+lock, tenantID, id))
		return err
	})
	return u, db.wrap("get user", err)
}

// UpdateUser replaces a user's fields (see Store).
func (db *DB) UpdateUser(ctx context.Context, u User, ifVersion int64) (User, error) {
	var reactivated bool
	u.Email = NormalizeEmail(u.Email)
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		old, err := scanUser(q.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE tenant_id = $1 AND id = $2", tenantID, u.ID))
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != old.Version {
			return ErrVersionMismatch
		}
		u.TenantID, u.CreatedAt, u.UpdatedAt, u.Version = tenantID, old.CreatedAt, db.now(), old.Version+1
		reactivated = !old.Active && u.Active
		args, err := db.userArgs(u)
		if err != nil {
			return err
		}
		// The version in WHERE makes a concurrent update lose cleanly
		// instead of silently overwriting.
		n, err := q.exec(ctx, userUpdate+" AND version = $16", append(args, old.Version)...)
		if err == nil && n == 0 {
			return ErrVersionMismatch
		}
		if err == nil && old.Active && !u.Active {
			// Deprovisioned: kept outside the database before the commit
			// (tombstones.go), once the update is sure to be this one.
			db.bury(ctx, Tombstone{Kind: TombUser, ID: u.ID, TenantID: tenantID, At: u.UpdatedAt})
		}
		return err
	})
	if err == nil && reactivated {
		db.unbury(ctx, TombUser, u.ID)
	}
	return u, db.wrap("update user", err)
}

// DeleteUser removes a user, their identities and memberships.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	if tenantID, ok := TenantFrom(ctx); ok {
		// Kept outside the database first (tombstones.go).
		db.bury(ctx, Tombstone{Kind: TombUser, ID: id, TenantID: tenantID})
	}
	return db.deleteRow(ctx, "users", "user", id)
}

// FindUsers lists the users of the tenant in ctx that match q, in the order
// q.Sort asks (creation order by default), with the total number of matches.
func (db *DB) FindUsers(ctx context.Context, q UserQuery) ([]User, int, error) {
	return find(ctx, db, usersTable, q.DirectoryID, q.Filter, q.Sort, q.Limit, q.Offset)
}

var usersTable = filtered[User]{"users", userCols, userFields, scanUser}

// UpsertSSOUser links an upstream identity to a user (see Store).
func (db *DB) UpsertSSOUser(ctx context.Context, connectionID, subject string, u User) (User, error) {
	return db.upsertSSO(ctx, connectionID, subject, nil, u)
}

// UpsertStableSSOUser links an identity keyed by an id its IdP never
// reassigns (see Store).
func (db *DB) UpsertStableSSOUser(ctx context.Context, connectionID, subject string, key StableSSOKey, u User) (User, error) {
	if _, err := requireTenant(ctx); err != nil {
		return User{}, db.wrap("upsert sso user", err)
	}
	if key.Scheme == "" || !strings.HasPrefix(subject, key.Scheme) || key.Previous == subject {
		return User{}, fmt.Errorf("%w: a stable subject starts with its scheme and differs from the previous key", ErrInvalid)
	}
	return db.upsertSSO(ctx, connectionID, subject, &key, u)
}

func (db *DB) upsertSSO(ctx context.Context, connectionID, subject string, key *StableSSOKey, u User) (User, error) {
	if connectionID == "" || subject == "" {
		return User{}, fmt.Errorf("%w: an identity needs a connection and a subject", ErrInvalid)
	}
	// The same person's address as a directory or another IdP wrote it
	// (another case or form of the domain) finds them below.
	u.Email = NormalizeEmail(u.Email)
	var out User
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		linked, err := scanUser(q.queryRow(ctx, "SELECT "+prefixed("u.", userCols)+` FROM user_identities i
			JOIN users u ON u.tenant_id = i.tenant_id AND u.id = i.user_id
			WHERE i.tenant_id = $1 AND i.connection_id = $2 AND i.idp_subject = $3`, tenantID, connectionID, subject))
		switch {
		case err == nil:
			out, err = db.refreshSSO(ctx, q, linked, u)
			return err
		case !db.d.isNoRows(err):
			return err
		}
		if key != nil && key.Previous != "" {
			prev, err := scanUser(q.queryRow(ctx, "SELECT "+prefixed("u.", userCols)+` FROM user_identities i
				JOIN users u ON u.tenant_id = i.tenant_id AND u.id = i.user_id
				WHERE i.tenant_id = $1 AND i.connection_id = $2 AND i.idp_subject = $3`, tenantID, connectionID, key.Previous))
			switch {
			case err == nil:
				ok, err := db.mayBe(ctx, q, tenantID, connectionID, prev, *key)
				if err != nil {
					return err
				}
				if ok {
					// The old key's row itself moves: nothing is left
					// under it for whoever presents it later.
					n, err := q.exec(ctx, `UPDATE user_identities SET idp_subject = $4
						WHERE tenant_id = $1 AND connection_id = $2 AND idp_subject = $3 AND user_id = $5`, tenantID, connectionID, key.Previous, subject, prev.ID)
					if err != nil {
						return err
					}
					if n != 1 {
						// A sign-in at the same moment moved it first (on
						// PostgreSQL): whose it is now, a retry reads.
						return fmt.Errorf("%w: the identity moved while this sign-in read it", ErrConflict)
					}
					out, err = db.refreshSSO(ctx, q, prev, u)
					return err
				}
			case !db.d.isNoRows(err):
				return err
			}
		}
		if u.Email != "" && u.EmailVerified {
			// Prefer the directory's record of the person. Only a
			// verified email (one of the tenant's verified domains)
			// adopts an existing user: any other is only what this IdP
			// claims, and would let a connection that allows any domain
			// sign in as whoever another connection or the directory
			// knows by that address.
			forms := emailForms2(u.Email)
			byEmail, err := db.userByEmail(ctx, q, tenantID, forms)
			if errors.Is(err, errNoUserByEmail) {
				// Entra ID's NameID is the UPN, its SCIM userName, while
				// the directory's email is the mailbox: a person whose
				// UPN is not their mailbox is found by the userName.
				var found bool
				if byEmail, found, err = db.directoryUserByUserName(ctx, q, tenantID, forms); err == nil && !found {
					err = errNotAdoptable
				}
			}
			adopt := err == nil
			if adopt && key != nil {
				if adopt, err = db.mayBe(ctx, q, tenantID, connectionID, byEmail, *key); err != nil {
					return err
				}
			}
			switch {
			case adopt && !byEmail.Active:
				// A deactivated user is this sign-in's answer (refused),
				// but not linked: when the directory pushes the person's
				// new user (rehired, or the address given to someone
				// new), the same subject finds that one.
				out = byEmail
				return nil
			case adopt:
				if out, err = db.refreshSSO(ctx, q, byEmail, u); err != nil {
					return err
				}
				return db.link(ctx, q, tenantID, connectionID, subject, out.ID)
			case err != nil && !db.d.isNoRows(err) && !errors.Is(err, errNotAdoptable):
				return err
			}
		}
		u.TenantID, u.ID, u.DirectoryID, u.Active, u.Version = tenantID, NewID(PrefixUser), "", true, 1
		u.CreatedAt = db.now()
		u.UpdatedAt = u.CreatedAt
		args, err := db.userArgs(u)
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, userInsert, args...); err != nil {
			return err
		}
		out = u
		return db.link(ctx, q, tenantID, connectionID, subject, u.ID)
	})
	return out, db.wrap("upsert sso user", err)
}

// userByEmail is the user a sign-in under a new subject is taken for by
// its email (the forms of emailForms2): a directory's user before an SSO
// user, an active one before a deactivated one (a person rehired, or an
// address given to someone new, beside the old user), then the oldest.
// Two active users of the directories with the address (a person's admin
// account beside their own) are two people the address cannot tell apart:
// neither is found (no rows), as for a userName two directories share.
func (db *DB) userByEmail(ctx context.Context, q querier, tenantID string, forms [2]string) (User, error) {
	rs, err := q.query(ctx, "SELECT "+userCols+` FROM users
		WHERE tenant_id = $1 AND email_lc IN (lower($2), lower($3))
		ORDER BY CASE WHEN directory_id IS NULL THEN 1 ELSE 0 END, CASE WHEN active THEN 0 ELSE 1 END, id LIMIT 2`, tenantID, forms[0], forms[1])
	if err != nil {
		return User{}, err
	}
	us, err := collect(rs, scanUser)
	switch {
	case err != nil:
		return User{}, err
	case len(us) == 0:
		return User{}, errNoUserByEmail
	case len(us) == 2 && us[1].DirectoryID != "" && us[1].Active:
		// The first is then a directory's active user too.
		return User{}, errNoUserByEmail
	}
	return us[0], nil
}

// directoryUserByUserName is the one user of the tenant's directories
// whose userName is the address in forms (emailForms2); found is false
// when there is none, or more than one (two directories' people: neither
// is taken for the person).
func (db *DB) directoryUserByUserName(ctx context.Context, q querier, tenantID string, forms [2]string) (User, bool, error) {
	rs, err := q.query(ctx, "SELECT "+userCols+` FROM users
		WHERE tenant_id = $1 AND directory_id IN (SELECT id FROM directories WHERE tenant_id = $1)
		AND user_name_lc IN (lower($2), lower($3)) LIMIT 2`, tenantID, forms[0], forms[1])
	if err != nil {
		return User{}, false, err
	}
	us, err := collect(rs, scanUser)
	if err != nil || len(us) != 1 {
		return User{}, false, err
	}
	return us[0], true, nil
}

// mayBe reports whether cand, found by a stable key's previous key or by
// email, may be the person the key names. A user with no identity on the
// connection may (a directory's user, another connection's). One with a
// stable key of the connection is someone else: that key never changes.
// One linked only under keys of before may, unless key.SamePerson says
// otherwise (their recorded attributes name another person).
func (db *DB) mayBe(ctx context.Context, q querier, tenantID, connectionID string, cand User, key StableSSOKey) (bool, error) {
	rs, err := q.query(ctx, `SELECT idp_subject FROM user_identities
		WHERE tenant_id = $1 AND connection_id = $2 AND user_id = $3`, tenantID, connectionID, cand.ID)
	if err != nil {
		return false, err
	}
	subjects, err := collect(rs, scanString)
	if err != nil || len(subjects) == 0 {
		return err == nil, err
	}
	for _, s := range subjects {
		if strings.HasPrefix(s, key.Scheme) {
			return false, nil
		}
	}
	return key.SamePerson == nil || key.SamePerson(cand), nil
}

// refreshSSO updates the profile of a user no directory manages; a
// directory's data wins over what an IdP asserts at login.
func (db *DB) refreshSSO(ctx context.Context, q querier, cur, from User) (User, error) {
	if cur.DirectoryID != "" {
		return cur, nil
	}
	if cur.Email == from.Email && cur.EmailVerified == from.EmailVerified && cur.GivenName == from.GivenName &&
		cur.FamilyName == from.FamilyName && cur.DisplayName == from.DisplayName {
		return cur, nil
	}
	cur.Email, cur.EmailVerified, cur.GivenName, cur.FamilyName, cur.DisplayName =
		from.Email, from.EmailVerified, from.GivenName, from.FamilyName, from.DisplayName
	if len(from.Attributes) > 0 {
		cur.Attributes = from.Attributes
	}
	cur.Version++
	cur.UpdatedAt = db.now()
	args, err := db.userArgs(cur)
	if err != nil {
		return User{}, err
	}
	_, err = q.exec(ctx, userUpdate, args...)
	return cur, err
}

func (db *DB) link(ctx context.Context, q querier, tenantID, connectionID, subject, userID string) error {
	_, err := q.exec(ctx, `INSERT INTO user_identities (tenant_id, connection_id, idp_subject, user_id, created_at)
		VALUES ($1, $2, $3, $4, $5)`, tenantID, connectionID, subject, userID, db.d.timeArg(db.now()))
	return err
}

// UserGroupNames lists the display names of a user's groups.
func (db *DB) UserGroupNames(ctx context.Context, userID string) ([]string, error) {
	var out []string
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, `SELECT g.display_name FROM group_members m
			JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
			WHERE m.tenant_id = $1 AND m.user_id = $2 ORDER BY g.display_name`, tenantID, userID)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanString)
		return err
	})
	return out, db.wrap("user groups", err)
}

// prefixed qualifies each column of a column list with p.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
