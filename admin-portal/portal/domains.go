package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/domainverify"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

func (p *Portal) mountDomains(s *echo.Group) {
	g := s.Group("/domains", allow("domains"))
	g.GET("", p.domList)
	g.POST("", p.domAdd)
	d := g.Group("/:dom", p.loadDomain)
	d.POST("/verify", p.domVerify)
	d.POST("/delete", p.domDelete)
}

const domKey = "portal.domain"

func (p *Portal) loadDomain(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("dom")
		if !store.HasPrefix(id, store.PrefixDomain) {
			return errNotFound
		}
		d, err := p.cfg.Store.Domain(c.Request().Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		c.Set(domKey, d)
		return next(c)
	}
}

type domRow struct {
	Domain            store.Domain
	RecordName, Value string
	Check             *store.DomainCheck
}

func (p *Portal) domList(c echo.Context) error { return p.renderDomains(c, http.StatusOK, "", "", "") }

// renderDomains shows the tenant's domains; failedID and failure name a
// check that just failed, addErr a domain that could not be added.
func (p *Portal) renderDomains(c echo.Context, status int, addErr, failedID, failure string) error {
	ctx := c.Request().Context()
	domains, err := p.cfg.Store.Domains(ctx)
	if err != nil {
		return err
	}
	checks, err := p.cfg.Store.DomainChecks(ctx)
	if err != nil {
		return err
	}
	var rows []domRow
	for _, d := range domains {
		name, value := domainverify.Record(d)
		r := domRow{Domain: d, RecordName: name, Value: value}
		if ch, ok := checks[d.ID]; ok {
			r.Check = &ch
		}
		rows = append(rows, r)
	}
	return p.render(c, status, "domains.html", "Domains", map[string]any{
		"Rows": rows, "AddError": addErr, "FailedID": failedID, "Failure": failure, "Typed": c.FormValue("domain"),
	})
}

func (p *Portal) domAdd(c echo.Context) error {
	name, err := domainverify.Normalize(c.FormValue("domain"))
	if err != nil {
		return p.renderDomains(c, http.StatusUnprocessableEntity, upperFirst(err.Error())+".", "", "")
	}
	err = p.cfg.Store.InTx(c.Request().Context(), func(ctx context.Context) error {
		d, err := p.cfg.Store.AddDomain(ctx, store.Domain{ID: store.NewID(store.PrefixDomain), Domain: name, VerificationToken: secrets.NewToken("")})
		if err != nil {
			return err
		}
		return p.audit(ctx, c, "domain.added", store.Resource{Type: "domain", ID: d.ID, Name: d.Domain}, nil)
	})
	if errors.Is(err, store.ErrConflict) {
		return p.renderDomains(c, http.StatusConflict, fmt.Sprintf("%s is already on this list.", name), "", "")
	}
	if err != nil {
		return err
	}
	return p.redirectFlash(c, Path+"/domains", "added")
}

// domVerify looks the TXT record up in DNS now. A domain another tenant
// verified first stays theirs.
func (p *Portal) domVerify(c echo.Context) error {
	d := c.Get(domKey).(store.Domain)
	ctx := c.Request().Context()
	if d.Verified {
		return p.redirectFlash(c, Path+"/domains", "verified")
	}
	checkErr := domainverify.Check(ctx, p.cfg.Resolver, d, 0, func(msg string, args ...any) { p.cfg.Logger.WarnContext(ctx, msg, args...) })
	var f *domainverify.Failure
	if checkErr != nil && !errors.As(checkErr, &f) {
		return checkErr
	}
	now := p.cfg.Now()
	failure := ""
	if f != nil {
		failure = f.Message
	}
	err := p.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		if f == nil {
			if _, err := p.cfg.Store.MarkDomainVerified(ctx, d.ID); err != nil {
				return err
			}
			if err := p.audit(ctx, c, "domain.verified", store.Resource{Type: "domain", ID: d.ID, Name: d.Domain}, map[string]any{"method": "dns_txt"}); err != nil {
				return err
			}
		}
		return p.cfg.Store.RecordDomainCheck(ctx, d.ID, now, failure)
	})
	if errors.Is(err, store.ErrConflict) {
		failure = fmt.Sprintf("%s is already verified by another organisation. If it is yours, contact support.", d.Domain)
		if err := p.cfg.Store.RecordDomainCheck(ctx, d.ID, now, failure); err != nil {
			return err
		}
		return p.renderDomains(c, http.StatusConflict, "", d.ID, failure)
	}
	if err != nil {
		return err
	}
	if f != nil {
		return p.renderDomains(c, http.StatusUnprocessableEntity, "", d.ID, upperFirst(failure)+".")
	}
	if p.cfg.Connections != nil {
		p.cfg.Connections.ForgetTenant(d.TenantID) // SSO sees the domain at once
	}
	return p.redirectFlash(c, Path+"/domains", "verified")
}

func (p *Portal) domDelete(c echo.Context) error {
	d := c.Get(domKey).(store.Domain)
	err := p.cfg.Store.InTx(c.Request().Context(), func(ctx context.Context) error {
		if err := p.cfg.Store.DeleteDomain(ctx, d.ID); err != nil {
			return err
		}
		return p.audit(ctx, c, "domain.removed", store.Resource{Type: "domain", ID: d.ID, Name: d.Domain}, nil)
	})
	if err != nil {
		return err
	}
	if p.cfg.Connections != nil {
		p.cfg.Connections.ForgetTenant(d.TenantID)
	}
	return p.redirectFlash(c, Path+"/domains", "deleted")
}
