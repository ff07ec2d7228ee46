package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/idbroker/idbroker/store"
)

// Event types of contract section 5 that SCIM emits.
const (
	EventUserCreated     = "dsync.user.created"
	EventUserUpdated     = "dsync.user.updated"
	EventUserDeactivated = "dsync.user.deactivated"
	EventUserDeleted     = "dsync.user.deleted"
	EventGroupCreated    = "dsync.group.created"
	EventGroupUpdated    = "dsync.group.updated"
	EventGroupDeleted    = "dsync.group.deleted"
	EventGroupUserAdded  = "dsync.group.user_added"
	EventGroupUserRemove = "dsync.group.user_removed"
)

// emit appends an event to the outbox; call it inside the InTx of the
// change. Payloads carry public profile fields only: never a token, a
// password or the raw request.
func (s *Server) emit(ctx context.Context, typ string, data any) error {
	tenantID, _ := store.TenantFrom(ctx)
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	if _, err := s.store.AppendEvent(ctx, store.Event{TenantID: tenantID, Type: typ, Data: b}); err != nil {
		return fmt.Errorf("append %s: %w", typ, err)
	}
	return nil
}

type emailJSON struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary"`
}

type userEventJSON struct {
	ID          string      `json:"id"`
	DirectoryID string      `json:"directory_id"`
	TenantID    string      `json:"tenant_id"`
	ExternalID  string      `json:"external_id,omitempty"`
	UserName    string      `json:"user_name"`
	Email       string      `json:"email,omitempty"`
	Emails      []emailJSON `json:"emails"`
	GivenName   string      `json:"given_name,omitempty"`
	FamilyName  string      `json:"family_name,omitempty"`
	DisplayName string      `json:"display_name,omitempty"`
	State       string      `json:"state"`  // active or inactive
	Groups      []string    `json:"groups"` // an array, empty included: consumers read it
}

// userEvent describes u; its groups are looked up when withGroups (a user
// just created has none yet).
func (s *Server) userEvent(ctx context.Context, u store.User, d doc, withGroups bool) (userEventJSON, error) {
	ev := userEventJSON{
		ID: u.ID, DirectoryID: u.DirectoryID, TenantID: u.TenantID, ExternalID: u.ExternalID,
		UserName: u.UserName, Email: u.Email, Emails: []emailJSON{},
		GivenName: u.GivenName, FamilyName: u.FamilyName, DisplayName: u.DisplayName, State: "active",
		Groups: []string{},
	}
	if !u.Active {
		ev.State = "inactive"
	}
	if list, ok := d["emails"].([]any); ok {
		for _, x := range list {
			m, _ := x.(map[string]any)
			v, _ := str(m["value"])
			t, _ := str(m["type"])
			if v = strings.TrimSpace(v); v != "" {
				ev.Emails = append(ev.Emails, emailJSON{Value: v, Type: t, Primary: m["primary"] == true})
			}
		}
	}
	if withGroups {
		g, err := s.store.UserGroupNames(ctx, u.ID)
		if err != nil {
			return ev, fmt.Errorf("user groups: %w", err)
		}
		if g != nil {
			ev.Groups = g
		}
	}
	return ev, nil
}

type groupEventJSON struct {
	ID          string `json:"id"`
	DirectoryID string `json:"directory_id"`
	TenantID    string `json:"tenant_id"`
	ExternalID  string `json:"external_id,omitempty"`
	Name        string `json:"name"`
}

func groupEvent(g store.Group) groupEventJSON {
	return groupEventJSON{ID: g.ID, DirectoryID: g.DirectoryID, TenantID: g.TenantID, ExternalID: g.ExternalID, Name: g.DisplayName}
}

type membershipEventJSON struct {
	DirectoryID string         `json:"directory_id"`
	TenantID    string         `json:"tenant_id"`
	Group       groupEventJSON `json:"group"`
	User        struct {
		ID string `json:"id"`
	} `json:"user"`
}

func (s *Server) emitMembership(ctx context.Context, typ string, g store.Group, userIDs []string) error {
	if len(userIDs) == 0 {
		return nil
	}
	tenantID, _ := store.TenantFrom(ctx)
	es := make([]store.Event, len(userIDs))
	for i, id := range userIDs {
		ev := membershipEventJSON{DirectoryID: g.DirectoryID, TenantID: g.TenantID, Group: groupEvent(g)}
		ev.User.ID = id
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode %s: %w", typ, err)
		}
		es[i] = store.Event{TenantID: tenantID, Type: typ, Data: b}
	}
	// One statement per couple of hundred members, not one per member:
	// a PUT of 10,000 members announces 10,000 of them.
	if _, err := s.store.AppendEvents(ctx, es); err != nil {
		return fmt.Errorf("append %s: %w", typ, err)
	}
	return nil
}
