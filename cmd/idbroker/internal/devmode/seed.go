package devmode

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// Names of what Seed creates.
const (
	TenantName     = "Example"
	Domain         = "example.com"
	ConnectionName = "Dev IdP (SAML)"
	AppName        = "Dev demo app"
	// secretIdPKey keeps the dev IdP's own signing key beside the
	// connection that trusts it, sealed like every connection secret, so a
	// restart keeps the same IdP.
	secretIdPKey = "dev_idp_private_key_pem"
)

// Store is what seeding needs of the store: the dev tenant and its
// domain, its connection's sealed secrets, and the demo application.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	ResolveDomain(ctx context.Context, domain string) (tenantID string, err error)
	CreateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error)
	// A demo tenant deleted through the API still holds its domain for
	// the 30 days it stays restorable (findDeleted).
	ListTenantsByStatus(ctx context.Context, status store.TenantStatus, p store.Page) ([]store.Tenant, string, error)
	Domains(ctx context.Context) ([]store.Domain, error)
	RestoreTenant(ctx context.Context) (store.Tenant, error)
	AddDomain(ctx context.Context, d store.Domain) (store.Domain, error)
	MarkDomainVerified(ctx context.Context, ref string) (store.Domain, error)
	Connections(ctx context.Context) ([]store.Connection, error)
	UpdateConnection(ctx context.Context, c store.Connection) (store.Connection, error)
	ListApplications(ctx context.Context, p store.Page) ([]store.Application, string, error)
	CreateApplication(ctx context.Context, a store.Application) (store.Application, error)
	// The demo of deprovisioning (deprovision.go): the app's back-channel
	// logout, an introspecting API client and a SCIM directory.
	UpdateApplication(ctx context.Context, id string, u store.ApplicationUpdate) (store.Application, error)
	DeleteApplication(ctx context.Context, id string) error
	Directories(ctx context.Context) ([]store.Directory, error)
	CreateDirectory(ctx context.Context, d store.Directory) (store.Directory, error)
	SetDirectoryToken(ctx context.Context, id string, tokenHash []byte) error
}

// Dev is the seeded dev environment. Mount serves its pages.
type Dev struct {
	Issuer       string
	TenantID     string
	ConnectionID string
	AppID        string
	// Restored says this start found the demo tenant deleted (through
	// the API) and restored it.
	Restored bool

	st  Store
	reg *connections.Registry
	idp *testIdP

	demo demo // the deprovisioning demo's credentials and state
}

// Seed creates, or finds from an earlier start, the dev tenant, its SAML
// connection to the built-in IdP and the demo application. It is
// idempotent: run it on every `serve --dev`, on every node.
func Seed(ctx context.Context, st Store, reg *connections.Registry, issuer string) (*Dev, error) {
	d, err := seed(ctx, st, reg, issuer)
	if errors.Is(err, store.ErrConflict) {
		// Another node seeded the fresh database at the same moment and
		// committed first: its seed is the one, found now.
		d, err = seed(ctx, st, reg, issuer)
	}
	return d, err
}

func seed(ctx context.Context, st Store, reg *connections.Registry, issuer string) (*Dev, error) {
	issuer = strings.TrimRight(issuer, "/")
	d := &Dev{Issuer: issuer, st: st, reg: reg}

	tenantID, err := st.ResolveDomain(ctx, Domain)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted through the API, the demo tenant keeps its domain while
		// it can be restored, so a new one could not take it and the
		// broker would not start: bring the demo back instead.
		tenantID, err = restoreDeleted(ctx, st)
		d.Restored = err == nil
	}
	switch {
	case err == nil:
		d.TenantID = tenantID
		if err := d.seedRest(ctx); err != nil {
			return nil, err
		}
	case errors.Is(err, store.ErrNotFound):
		// A fresh database: the whole seed is one transaction. Nodes
		// started together on one database all come here; the verified
		// domain, which one tenant only may hold, lets one of them
		// commit and refuses the others (store.ErrConflict, once the
		// first has committed), which start over and find its seed.
		// Seeded step by step, each would have added its own
		// connection, IdP key and applications beside the first's.
		err = st.InTx(ctx, func(ctx context.Context) error {
			t, err := st.CreateTenant(ctx, store.Tenant{Name: TenantName, Status: store.TenantActive})
			if err != nil {
				return err
			}
			tctx := store.WithTenant(ctx, t.ID)
			if _, err := st.AddDomain(tctx, store.Domain{Domain: Domain, VerificationToken: "idbroker-dev"}); err != nil {
				return err
			}
			if _, err := st.MarkDomainVerified(tctx, Domain); err != nil {
				return err
			}
			d.TenantID = t.ID
			return d.seedRest(ctx)
		})
		if err != nil {
			return nil, fmt.Errorf("devmode: seed tenant: %w", err)
		}
	default:
		return nil, fmt.Errorf("devmode: find tenant: %w", err)
	}
	return d, nil
}

// seedRest seeds, or finds, what the demo tenant d.TenantID holds and the
// applications.
func (d *Dev) seedRest(ctx context.Context) error {
	tctx := store.WithTenant(ctx, d.TenantID)
	if err := d.seedConnection(tctx); err != nil {
		return err
	}
	if err := d.seedApp(ctx); err != nil {
		return err
	}
	return d.seedDemo(ctx, tctx)
}

// restoreDeleted restores the deleted tenant that holds Domain, if there
// is one, and returns its ID; store.ErrNotFound when there is none.
func restoreDeleted(ctx context.Context, st Store) (string, error) {
	after := ""
	for {
		ts, next, err := st.ListTenantsByStatus(ctx, store.TenantDeleted, store.Page{Limit: 100, After: after})
		if err != nil {
			return "", fmt.Errorf("devmode: list deleted tenants: %w", err)
		}
		for _, t := range ts {
			tctx := store.WithTenant(ctx, t.ID)
			ds, err := st.Domains(tctx)
			if err != nil {
				return "", fmt.Errorf("devmode: domains of deleted tenant %s: %w", t.ID, err)
			}
			for _, d := range ds {
				if d.Domain != Domain {
					continue
				}
				if _, err := st.RestoreTenant(tctx); err != nil {
					return "", fmt.Errorf("devmode: restore the deleted demo tenant %s: %w", t.ID, err)
				}
				return t.ID, nil
			}
		}
		if next == "" {
			return "", store.ErrNotFound
		}
		after = next
	}
}

func (d *Dev) seedConnection(ctx context.Context) error {
	conns, err := d.st.Connections(ctx)
	if err != nil {
		return fmt.Errorf("devmode: list connections: %w", err)
	}
	for _, c := range conns {
		if c.Name == ConnectionName && c.Type == saml.Name && c.Secrets[secretIdPKey] != "" {
			key, cert, err := parseKeyPair(c.Secrets[secretIdPKey])
			if err != nil {
				return err
			}
			d.ConnectionID = c.ID
			d.idp = newTestIdP(d, key, cert)
			d.demo.key = key
			return nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "idbroker dev IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	// The connection and the IdP key it trusts are written together: a
	// connection left without the key would be skipped by the next start,
	// which would seed a second one beside it.
	var conn store.Connection
	err = d.st.InTx(ctx, func(ctx context.Context) error {
		var err error
		conn, err = d.reg.CreateConnection(ctx, saml.Name, ConnectionName, saml.Settings{
			IdPEntityID:        ptr(d.Issuer + "/dev/idp/metadata"),
			IdPSSOURL:          ptr(d.Issuer + "/dev/idp/sso"),
			IdPCertificatesPEM: &saml.PEMList{certPEM},
			AllowIdPInitiated:  ptr(false),
		}.Request(), nil)
		if err != nil {
			return fmt.Errorf("devmode: create connection: %w", err)
		}
		conn.Secrets[secretIdPKey] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})) + certPEM
		if _, err := d.st.UpdateConnection(ctx, conn); err != nil {
			return fmt.Errorf("devmode: store dev IdP key: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.ConnectionID = conn.ID
	d.idp = newTestIdP(d, key, cert)
	d.demo.key = key
	return nil
}

func (d *Dev) seedApp(ctx context.Context) error {
	redirect := d.Issuer + "/dev/app/callback"
	after := ""
	for {
		apps, next, err := d.st.ListApplications(ctx, store.Page{Limit: 100, After: after})
		if err != nil {
			return fmt.Errorf("devmode: list applications: %w", err)
		}
		for _, a := range apps {
			if a.Name == AppName && a.Public && len(a.RedirectURIs) == 1 && a.RedirectURIs[0] == redirect {
				d.AppID = a.ID
				if a.BackchannelLogoutURI == d.backchannelURI() {
					return nil
				}
				// Seeded before the demo app received back-channel logouts.
				bcl := d.backchannelURI()
				if _, err := d.st.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{BackchannelLogoutURI: &bcl}); err != nil {
					return fmt.Errorf("devmode: update application: %w", err)
				}
				return nil
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	a, err := d.st.CreateApplication(ctx, store.Application{Name: AppName, Public: true, RedirectURIs: []string{redirect},
		PostLogoutRedirectURIs: []string{d.Issuer + "/dev/app"}, BackchannelLogoutURI: d.backchannelURI(), IDTokenSigningAlg: "RS256"})
	if err != nil {
		return fmt.Errorf("devmode: create application: %w", err)
	}
	d.AppID = a.ID
	return nil
}

func parseKeyPair(s string) (*rsa.PrivateKey, *x509.Certificate, error) {
	var key *rsa.PrivateKey
	var cert *x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("devmode: IdP key: %w", err)
			}
			key, _ = k.(*rsa.PrivateKey)
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("devmode: IdP certificate: %w", err)
			}
			cert = c
		}
	}
	if key == nil || cert == nil {
		return nil, nil, errors.New("devmode: stored dev IdP key pair is incomplete")
	}
	return key, cert, nil
}

func ptr[T any](v T) *T { return &v }
