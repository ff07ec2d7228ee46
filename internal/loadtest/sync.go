package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// syncGroups is how many groups scim-sync fills, and syncBatch how many
// members one of its group PATCHes adds (Entra ID sends up to 1,000 values
// an operation, and a first sync sends several operations a request).
const (
	syncGroups = 4
	syncBatch  = 2000
)

// maxBackoff caps how long a scim-sync worker honours a Retry-After: the
// run measures the broker, not the client's patience.
const maxBackoff = 5 * time.Second

// scimSync: an IdP's initial sync of a big tenant, all of its phases at
// once as Okta and Entra ID overlap them: of every 8 workers, 6 create
// users, one PATCHes a group adding up to 2,000 of the users created so
// far in one request, and one runs the reconciliation loop, filtered GETs
// of a user by userName and of a group by displayName. An answer with
// Retry-After (429, 503) is honoured before the worker's next request, as
// Okta and Entra ID do, and counted as an error of its status.
func scimSync(b *Broker, o Options) *Scenario {
	var (
		d       directory
		tenant  tenantSetup
		groups  []string
		n       atomic.Int64
		mu      sync.Mutex
		created []string // ids of users not yet added to a group
		known   []string // userNames created, for the filter loop
		patches atomic.Int64
	)
	s := &Scenario{Name: "scim-sync"}
	s.Setup = func(ctx context.Context, _ int) (err error) {
		if tenant, err = b.createTenant(ctx, "load scim-sync"); err != nil {
			return err
		}
		if d, err = b.createDirectory(ctx, tenant.TenantID); err != nil {
			return err
		}
		for i := range syncGroups {
			var g struct {
				ID string `json:"id"`
			}
			if err := b.scim(ctx, d, "POST", "/Groups", map[string]any{
				"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
				"displayName": fmt.Sprintf("Sync %d", i)}, &g, http.StatusCreated); err != nil {
				return err
			}
			groups = append(groups, g.ID)
		}
		return nil
	}
	create := func(ctx context.Context) error {
		name := fmt.Sprintf("s%d@%s", n.Add(1), tenant.Domain)
		var u struct {
			ID string `json:"id"`
		}
		if err := b.scim(ctx, d, "POST", "/Users", scimUser(name), &u, http.StatusCreated); err != nil {
			return err
		}
		mu.Lock()
		created = append(created, u.ID)
		known = append(known, name)
		mu.Unlock()
		return nil
	}
	s.Op = func(ctx context.Context, w int) (time.Duration, error) {
		var err error
		switch w % 8 {
		case 0:
			mu.Lock()
			var batch []string
			if len(created) >= syncBatch/4 {
				k := min(len(created), syncBatch)
				batch = append(batch, created[:k]...)
				created = created[k:]
			}
			mu.Unlock()
			if batch == nil {
				err = create(ctx)
				break
			}
			members := make([]any, len(batch))
			for i, id := range batch {
				members[i] = map[string]any{"value": id}
			}
			body := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "add", "path": "members", "value": members}}}
			g := groups[patches.Add(1)%syncGroups]
			err = b.scim(ctx, d, "PATCH", "/Groups/"+g, body, nil, http.StatusNoContent)
			if err != nil {
				mu.Lock() // not added: let a later PATCH try them again
				created = append(created, batch...)
				mu.Unlock()
			}
		case 1:
			mu.Lock()
			var name string
			if len(known) > 0 {
				name = known[rand.IntN(len(known))]
			}
			mu.Unlock()
			if name == "" {
				err = create(ctx)
				break
			}
			q := url.Values{"filter": {fmt.Sprintf("userName eq %q", name)}}
			if err = b.scim(ctx, d, "GET", "/Users?"+q.Encode(), nil, nil, http.StatusOK); err == nil {
				q = url.Values{"filter": {fmt.Sprintf("displayName eq %q", fmt.Sprintf("Sync %d", rand.IntN(syncGroups)))},
					"excludedAttributes": {"members"}}
				err = b.scim(ctx, d, "GET", "/Groups?"+q.Encode(), nil, nil, http.StatusOK)
			}
		default:
			err = create(ctx)
		}
		backoff(ctx, err)
		return 0, err
	}
	return s
}

// backoff waits out the Retry-After of err's answer, if it had one, up to
// maxBackoff.
func backoff(ctx context.Context, err error) {
	var oe *OpError
	if !errors.As(err, &oe) || oe.RetryAfter <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(min(oe.RetryAfter, maxBackoff)):
	}
}
