package connections

import (
	"context"
	"encoding/json"

	"github.com/idbroker/idbroker/store"
)

// Connection events (contract section 5).
const (
	EventActivated           = "connection.activated"
	EventDeactivated         = "connection.deactivated"
	EventCertificateExpiring = "connection.certificate_expiring"
)

// event appends a connection event; called inside the transaction of the
// change it reports.
func (r *Registry) event(ctx context.Context, typ string, conn store.Connection, extra map[string]any) error {
	data := map[string]any{"connection_id": conn.ID, "tenant_id": conn.TenantID, "type": conn.Type, "name": conn.Name, "status": conn.Status}
	for k, v := range extra {
		data[k] = v
	}
	b, _ := json.Marshal(data)
	_, err := r.cfg.Store.AppendEvent(ctx, store.Event{TenantID: conn.TenantID, Type: typ, Data: b})
	return err
}
