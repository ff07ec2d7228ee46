package store

import (
	"context"
	"fmt"
)

const domainCols = "tenant_id, id, domain, verified, verification_token, verified_at, created_at"

func scanDomain(r row) (Domain, error) {
	var d Domain
	err := r.Scan(&d.TenantID, &d.ID, &d.Domain, &d.Verified, &d.VerificationToken,
		nullTimeDest{&d.VerifiedAt}, timeDest{&d.CreatedAt})
	return d, err
}

// AddDomain claims d.Domain for the tenant in ctx. A domain added as
// verified that another tenant already holds verified is ErrConflict.
func (db *DB) AddDomain(ctx context.Context, d Domain) (Domain, error) {
	d.Domain = NormalizeDomain(d.Domain)
	if d.Domain == "" {
		return Domain{}, fmt.Errorf("%w: domain is empty", ErrInvalid)
	}
	if d.VerificationToken == "" {
		return Domain{}, fmt.Errorf("%w: verification token is empty", ErrInvalid)
	}
	if d.ID == "" {
		d.ID = NewID(PrefixDomain)
	}
	d.CreatedAt = db.now()
	if d.Verified && d.VerifiedAt == nil {
		at := d.CreatedAt
		d.VerifiedAt = &at
	}
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		d.TenantID = tenantID
		var verifiedAt any
		if d.VerifiedAt != nil {
			verifiedAt = db.d.timeArg(*d.VerifiedAt)
		}
		_, err := q.exec(ctx, "INSERT INTO domains ("+domainCols+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
			d.TenantID, d.ID, d.Domain, d.Verified, d.VerificationToken, verifiedAt, db.d.timeArg(d.CreatedAt))
		return err
	})
	return d, db.wrap("add domain", err)
}

// Domains lists the domains of the tenant in ctx.
func (db *DB) Domains(ctx context.Context) ([]Domain, error) {
	var out []Domain
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, "SELECT "+domainCols+" FROM domains WHERE tenant_id = $1 ORDER BY domain", tenantID)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanDomain)
		return err
	})
	return out, db.wrap("list domains", err)
}

// domainWhere matches a domain by id or by name.
func domainWhere(ref string) (string, string) {
	if HasPrefix(ref, PrefixDomain) {
		return "id = $2", ref
	}
	return "domain = $2", NormalizeDomain(ref)
}

// Domain returns one domain of the tenant in ctx, by id or name.
func (db *DB) Domain(ctx context.Context, ref string) (Domain, error) {
	var d Domain
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		where, arg := domainWhere(ref)
		var err error
		d, err = scanDomain(q.queryRow(ctx, "SELECT "+domainCols+" FROM domains WHERE tenant_id = $1 AND "+where, tenantID, arg))
		return err
	})
	return d, db.wrap("get domain", err)
}

// MarkDomainVerified records a passed verification.
func (db *DB) MarkDomainVerified(ctx context.Context, ref string) (Domain, error) {
	var d Domain
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		where, arg := domainWhere(ref)
		var err error
		if d, err = scanDomain(q.queryRow(ctx, "SELECT "+domainCols+" FROM domains WHERE tenant_id = $1 AND "+where, tenantID, arg)); err != nil {
			return err
		}
		if d.Verified {
			return nil
		}
		at := db.now()
		d.Verified, d.VerifiedAt = true, &at
		_, err = q.exec(ctx, "UPDATE domains SET verified = $3, verified_at = $4 WHERE tenant_id = $1 AND id = $2",
			tenantID, d.ID, true, db.d.timeArg(at))
		return err
	})
	return d, db.wrap("verify domain", err)
}

// DeleteDomain removes one domain of the tenant in ctx.
func (db *DB) DeleteDomain(ctx context.Context, ref string) error {
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		where, arg := domainWhere(ref)
		n, err := q.exec(ctx, "DELETE FROM domains WHERE tenant_id = $1 AND "+where, tenantID, arg)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap("delete domain", err)
}

// ResolveDomain returns the tenant holding domain verified.
func (db *DB) ResolveDomain(ctx context.Context, domain string) (string, error) {
	return db.resolveOne(ctx, "resolve domain", db.d.resolveDomainSQL(), NormalizeDomain(domain))
}

// ResolveConnection returns the tenant of connection id.
func (db *DB) ResolveConnection(ctx context.Context, id string) (string, error) {
	if !HasPrefix(id, PrefixConnection) {
		return "", ErrNotFound
	}
	return db.resolveOne(ctx, "resolve connection", db.d.resolveConnectionSQL(), id)
}

func (db *DB) resolveOne(ctx context.Context, op, query, arg string) (string, error) {
	// A deleted tenant is out of service: none of its credentials or ids
	// lead to it any more (tenants is global, so the check needs no
	// resolver).
	query = "SELECT t.id FROM tenants t WHERE t.id = (" + query + ") AND t.status <> 'deleted'"
	var tenantID string
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, query, arg).Scan(nullStringDest{&tenantID})
	})
	if err == nil && tenantID == "" {
		err = ErrNotFound
	}
	return tenantID, db.wrap(op, err)
}
