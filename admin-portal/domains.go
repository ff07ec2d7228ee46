package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/domainverify"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

func verificationRecord(d store.Domain) (name, value string) { return domainverify.Record(d) }

type verificationJSON struct {
	RecordType  string `json:"record_type"`
	RecordName  string `json:"record_name"`
	RecordValue string `json:"record_value"`
}

// domainJSON is a domain as the API shows it. The verification record is
// shown even once verified: removing it does not unverify the domain, but
// admins look for it.
type domainJSON struct {
	ID           string           `json:"id"`
	TenantID     string           `json:"tenant_id"`
	Domain       string           `json:"domain"`
	Verified     bool             `json:"verified"`
	VerifiedAt   *time.Time       `json:"verified_at"`
	Verification verificationJSON `json:"verification"`
	CreatedAt    time.Time        `json:"created_at"`
}

func toDomainJSON(d store.Domain) domainJSON {
	name, value := verificationRecord(d)
	return domainJSON{
		ID:           d.ID,
		TenantID:     d.TenantID,
		Domain:       d.Domain,
		Verified:     d.Verified,
		VerifiedAt:   d.VerifiedAt,
		Verification: verificationJSON{RecordType: "TXT", RecordName: name, RecordValue: value},
		CreatedAt:    d.CreatedAt,
	}
}

type domainRequest struct {
	Domain   string `json:"domain"`
	Verified bool   `json:"verified"`
}

// normalizeDomain is domainverify.Normalize: one definition of a tenant's
// domain for the API and the portal.
func normalizeDomain(s string) (string, error) { return domainverify.Normalize(s) }

// domainRef reads the :dom path parameter, a dom_ id or a domain name. A
// malformed one is answered like an unknown one.
func domainRef(c echo.Context) (string, error) {
	ref := c.Param("dom")
	if strings.HasPrefix(ref, store.PrefixDomain+"_") {
		if !store.HasPrefix(ref, store.PrefixDomain) {
			return "", notFound("domain")
		}
		return ref, nil
	}
	name, err := normalizeDomain(ref)
	if err != nil {
		return "", notFound("domain")
	}
	return name, nil
}

// claimDomain adds a normalised domain to the tenant in ctx and audits it.
// An operator's verified: true is trusted; it still cannot take a domain
// another tenant holds verified.
func (a *API) claimDomain(ctx context.Context, c echo.Context, req domainRequest) (store.Domain, error) {
	d, err := a.store.AddDomain(ctx, store.Domain{
		ID:                store.NewID(store.PrefixDomain),
		Domain:            req.Domain,
		Verified:          req.Verified,
		VerificationToken: secrets.NewToken(""),
	})
	if errors.Is(err, store.ErrConflict) {
		msg := fmt.Sprintf("domain %s is already claimed by this tenant", req.Domain)
		if req.Verified {
			msg = fmt.Sprintf("domain %s is already claimed by this tenant or verified by another tenant", req.Domain)
		}
		return store.Domain{}, conflict(httpserver.CodeConflict, msg, err)
	}
	if err != nil {
		return store.Domain{}, fmt.Errorf("add domain %s: %w", req.Domain, err)
	}
	if err := a.audit(ctx, c, "domain.added", domainResource(d), map[string]any{"verified": d.Verified}); err != nil {
		return store.Domain{}, err
	}
	return d, nil
}

func (a *API) addDomain(c echo.Context) error {
	var req domainRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	name, err := normalizeDomain(req.Domain)
	if err != nil {
		return invalid("domain", "%v", err)
	}
	req.Domain = name
	var d store.Domain
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		d, err = a.claimDomain(ctx, c, req)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toDomainJSON(d))
}

func (a *API) listDomains(c echo.Context) error {
	if err := onlyParams(c, "limit", "after"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixDomain)
	if err != nil {
		return err
	}
	domains, err := a.store.Domains(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	// A tenant has few domains: paged here, as every list is.
	domains, next := pageInMemory(domains, func(d store.Domain) string { return d.ID }, p)
	out := make([]domainJSON, 0, len(domains))
	for _, d := range domains {
		out = append(out, toDomainJSON(d))
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

func (a *API) getDomain(c echo.Context) error {
	ref, err := domainRef(c)
	if err != nil {
		return err
	}
	d, err := a.store.Domain(c.Request().Context(), ref)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("domain")
	}
	if err != nil {
		return fmt.Errorf("get domain: %w", err)
	}
	return c.JSON(http.StatusOK, toDomainJSON(d))
}

func (a *API) deleteDomain(c echo.Context) error {
	ref, err := domainRef(c)
	if err != nil {
		return err
	}
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		d, err := a.store.Domain(ctx, ref)
		if err != nil {
			return err
		}
		if err := a.store.DeleteDomain(ctx, d.ID); err != nil {
			return err
		}
		return a.audit(ctx, c, "domain.removed", domainResource(d), nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("domain")
	}
	if err != nil {
		return fmt.Errorf("delete domain: %w", err)
	}
	return c.NoContent(http.StatusNoContent)
}

// verifyDomain looks up the domain's TXT record and marks the domain
// verified when it carries the expected value. The lookup runs outside any
// transaction: no database lock waits on DNS.
func (a *API) verifyDomain(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	ref, err := domainRef(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := a.store.Domain(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("domain")
	}
	if err != nil {
		return fmt.Errorf("get domain: %w", err)
	}
	if d.Verified {
		return c.JSON(http.StatusOK, toDomainJSON(d))
	}

	if err := a.checkTXT(ctx, d); err != nil {
		return err
	}
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if d, err = a.store.MarkDomainVerified(ctx, d.ID); err != nil {
			return err
		}
		return a.audit(ctx, c, "domain.verified", domainResource(d), map[string]any{"method": "dns_txt"})
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return conflict(httpserver.CodeConflict, fmt.Sprintf("domain %s is already verified by another tenant", d.Domain), err)
	case errors.Is(err, store.ErrNotFound):
		return notFound("domain") // deleted meanwhile
	case err != nil:
		return fmt.Errorf("mark domain verified: %w", err)
	}
	return c.JSON(http.StatusOK, toDomainJSON(d))
}

// checkTXT reports, as a verification_failed error, what was expected at
// the record name and what DNS answered instead.
func (a *API) checkTXT(ctx context.Context, d store.Domain) error {
	err := domainverify.Check(ctx, a.resolver, d, a.verifyTimeout, func(msg string, args ...any) {
		a.log.WarnContext(ctx, msg, args...)
	})
	var f *domainverify.Failure
	if errors.As(err, &f) {
		return &httpserver.Error{Status: http.StatusUnprocessableEntity, Code: codeVerificationFailed, Message: f.Message}
	}
	return err
}

func domainResource(d store.Domain) store.Resource {
	return store.Resource{Type: "domain", ID: d.ID, Name: d.Domain}
}
