package broker

import (
	"encoding/json"
	"net/url"
	"testing"
)

// FuzzAppendJSONString: the hand-written encoder of introspection answers
// always yields a JSON string that decodes to the input (invalid UTF-8
// replaced, as encoding/json does).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "openid email", `a"b\c`, "tab\tnl\n", "\x00\x1f", "<script>&", "é\u2028\u2029", "\xff\xfe", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, b, err)
		}
		want, _ := json.Marshal(s)
		var w string
		json.Unmarshal(want, &w)
		if got != w {
			t.Fatalf("%q → %s → %q, want %q", s, b, got, w)
		}
	})
}

// FuzzIntrospectForm: the in-place form parser agrees with net/url on the
// parameters it reads, or refuses the body.
func FuzzIntrospectForm(f *testing.F) {
	for _, s := range []string{"token=abc", "token=a%2Bb+c&client_id=x", "token=a&token=b", "token=%zz", "&&token=&client_secret=s%3D", "x=1&token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var form introspectForm
		err := form.parse([]byte(body))
		want, werr := url.ParseQuery(body)
		if err != nil {
			return // refused: duplicates or bad escapes (net/url is laxer about some)
		}
		if werr != nil {
			// net/url refuses semicolons, which the broker's parser treats as
			// data; both are fine for a token or a secret.
			return
		}
		for k, got := range map[string][]byte{"token": form.token, "client_id": form.clientID, "client_secret": form.clientSecret, "token_type_hint": form.tokenTypeHint} {
			if want.Has(k) != (got != nil) || (got != nil && want.Get(k) != string(got)) {
				t.Fatalf("%q: %s = %q, net/url says %q", body, k, got, want[k])
			}
		}
	})
}
