package connections_test

import (
	"strings"
	"testing"

	"github.com/idbroker/idbroker/connections"
)

// TestGuestEmail: an Entra ID guest's account name gives the guest's own
// address, whatever runes come before the tag (some change length when
// lowered, which once made the cut land elsewhere or past the end).
func TestGuestEmail(t *testing.T) {
	m := connections.AttributeMapping{Email: []string{"email"}}
	for _, tt := range []struct{ in, want string }{
		{"alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", "alice@fabrikam.com"},
		{"a_b_fabrikam.com#ext#@contoso.onmicrosoft.com", "a_b@fabrikam.com"},
		{strings.Repeat("İ", 10) + "_x.com#EXT#@c.com", strings.Repeat("İ", 10) + "@x.com"},
		{strings.Repeat("İ", 10) + "#ext#@", strings.Repeat("İ", 10) + "#ext#@"},
		{"\u212a_x.com#EXT#@c.com", "\u212a@x.com"},
		{"#EXT#@contoso.onmicrosoft.com", "#EXT#@contoso.onmicrosoft.com"},
		{"alice@fabrikam.com", "alice@fabrikam.com"},
	} {
		if got := m.GuestEmail(tt.in, connections.Attrs{}); got != tt.want {
			t.Errorf("GuestEmail(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := m.GuestEmail("alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", connections.Attrs{"email": {"x_y.com#EXT#@c.com", "alice@fabrikam.com"}}); got != "alice@fabrikam.com" {
		t.Errorf("with a mapped address: %q", got)
	}
}
