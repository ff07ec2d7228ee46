package broker

import "testing"

// TestMaskEmails: a failed sign-in's audit row keeps the reason without the
// person's address (the chain cannot forget it), but with its domain.
func TestMaskEmails(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`profile: the IdP says email "alice.o'neil+x@acme.example.com" is not verified`, `profile: the IdP says email "[redacted]@acme.example.com" is not verified`},
		{`no usable email in the response (got "a@b.co, c@d.co", not one email address)`, `no usable email in the response (got "[redacted]@b.co, [redacted]@d.co", not one email address)`},
		{"user usr_01 is deactivated", "user usr_01 is deactivated"},
		{"the email's domain \"globex.com\" is not one of the organisation's verified domains", "the email's domain \"globex.com\" is not one of the organisation's verified domains"},
		{"", ""},
	} {
		if got := maskEmails(c.in); got != c.want {
			t.Errorf("maskEmails(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
