package connections

import (
	"encoding/json"
	"time"

	"github.com/idbroker/idbroker/store"
)

// View is a connection as the operator API and the portal show it: no
// secret, and under the type's name (saml, oidc) the type's own part —
// the URLs the IdP side needs and what the tenant admin must know.
type View struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Type      string    `json:"type"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Details is the Type's Describe: a *saml.View, an *oidc.View, …
	Details any `json:"-"`
}

// MarshalJSON renders the view with Details under the type's name.
func (v View) MarshalJSON() ([]byte, error) {
	type plain View
	b, err := json.Marshal(plain(v))
	if err != nil || v.Details == nil {
		return b, err
	}
	d, err := json.Marshal(v.Details)
	if err != nil {
		return nil, err
	}
	key, _ := json.Marshal(v.Type)
	out := append(b[:len(b)-1:len(b)-1], ',')
	out = append(out, key...)
	out = append(out, ':')
	out = append(out, d...)
	return append(out, '}'), nil
}

// Describe renders conn for the API with the registry's issuer and clock.
func (r *Registry) Describe(conn store.Connection) (View, error) {
	v := View{
		ID: conn.ID, TenantID: conn.TenantID, Type: string(conn.Type), Name: conn.Name,
		Status: string(conn.Status), CreatedAt: conn.CreatedAt, UpdatedAt: conn.UpdatedAt,
	}
	t, ok := r.cfg.Types[conn.Type]
	if !ok {
		// A type no longer registered: the row is still shown.
		return v, nil
	}
	d, err := t.Describe(r.deps, conn, r.now())
	if err != nil {
		return View{}, err
	}
	v.Details = d
	return v, nil
}
