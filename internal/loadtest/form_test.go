package loadtest

import (
	"net/url"
	"reflect"
	"testing"
)

// TestAutoPostForm: the auto-submitting pages of a SAML login (the IdP's
// response form, the broker's AuthnRequest form) give the action and the
// named inputs, unescaped as a browser would post them.
func TestAutoPostForm(t *testing.T) {
	for _, tc := range []struct {
		name, page string
		action     string
		form       url.Values
		ok         bool
	}{
		{name: "crewjam IdP response",
			page: `<html><form method="post" action="http://127.0.0.1:8080/sso/saml/c1/acs" id="SAMLResponseForm">` +
				`<input type="hidden" name="SAMLResponse" value="PHNhbWxwOlJlc3BvbnNl&#43;IHg9JiM0MzsvPQ==" />` +
				`<input type="hidden" name="RelayState" value="a&amp;b=c" />` +
				`<input id="SAMLSubmitButton" type="submit" value="Submit" /></form></html>`,
			action: "http://127.0.0.1:8080/sso/saml/c1/acs",
			form:   url.Values{"SAMLResponse": {"PHNhbWxwOlJlc3BvbnNl+IHg9JiM0MzsvPQ=="}, "RelayState": {"a&b=c"}}, ok: true},
		{name: "value before name, extra attributes",
			page:   "<form\naction=\"/next?a=1&amp;b=2\" method=post><input value=\"v\" data-name=\"no\"\tname=\"n\" type=hidden>",
			action: "/next?a=1&b=2", form: url.Values{"n": {"v"}}, ok: true},
		{name: "inputs before the form are not its own",
			page:   `<input name="search" value="x"><form action="/a"><input name="id" value="1"></form>`,
			action: "/a", form: url.Values{"id": {"1"}}, ok: true},
		{name: "first form with an action",
			page:   `<form method="get"></form><form action="/b"><input name="k" value=""></form>`,
			action: "/b", form: url.Values{"k": {""}}, ok: true},
		{name: "a page without a form", page: `<html><body><p>Choose a user</p></body></html>`},
		{name: "an unterminated tag", page: `<form action="/a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			action, form, ok := autoPostForm([]byte(tc.page))
			if ok != tc.ok || action != tc.action || (tc.ok && !reflect.DeepEqual(form, tc.form)) {
				t.Fatalf("autoPostForm = %q, %v, %v; want %q, %v, %v", action, form, ok, tc.action, tc.form, tc.ok)
			}
		})
	}
}
