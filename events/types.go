package events

import "slices"

// AllTypes subscribes a webhook to every event type, including types added
// after it was registered.
const AllTypes = "*"

// types are the event types of contract section 5, the only ones a webhook
// may subscribe to by name. Kept sorted for Types.
var types = []string{
	"authentication.failed",
	"authentication.succeeded",
	"connection.activated",
	"connection.certificate_expiring",
	"connection.deactivated",
	"dsync.deleted",
	"dsync.group.created",
	"dsync.group.deleted",
	"dsync.group.updated",
	"dsync.group.user_added",
	"dsync.group.user_removed",
	"dsync.user.created",
	"dsync.user.deactivated",
	"dsync.user.deleted",
	"dsync.user.updated",
	"session.revoked",
	"tenant.status_changed",
}

// Types returns the event types of the contract, sorted.
func Types() []string { return slices.Clone(types) }

// KnownType reports whether t is an event type of the contract (AllTypes
// is not one).
func KnownType(t string) bool {
	_, ok := slices.BinarySearch(types, t)
	return ok
}
