package adminportal

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"

	"github.com/idbroker/idbroker/internal/safehttp"
)

// checkOutboundHost refuses, at registration, a URL the broker will later
// call (a webhook, a back-channel logout URI) when its host is written as
// an address the outbound rule forbids, or is a localhost name: every
// delivery to it would be refused, and the operator learns it now rather
// than from a dead-letter queue. Names are left to the delivery, which
// checks the address after each DNS answer; allowPrivate
// (IDBROKER_ALLOW_PRIVATE_NETWORKS) lifts the rule here as there.
func checkOutboundHost(field string, u *url.URL, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return invalid(field, "%s names localhost: the broker refuses to call loopback, private, link-local and cloud-metadata addresses (IDBROKER_ALLOW_PRIVATE_NETWORKS=true lifts this for self-hosted receivers)", field)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil // a name: checked at each delivery, after resolution
	}
	if err := safehttp.CheckAddr(addr); err != nil {
		msg := err.Error()
		if errors.Is(err, safehttp.ErrForbiddenAddress) {
			msg = strings.TrimPrefix(msg, safehttp.ErrForbiddenAddress.Error()+": ")
		}
		return invalid(field, "%s: %s; the broker refuses to call loopback, private, link-local and cloud-metadata addresses (IDBROKER_ALLOW_PRIVATE_NETWORKS=true lifts this for self-hosted receivers)", field, msg)
	}
	return nil
}
