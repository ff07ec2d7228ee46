package scim

import (
	"errors"
	"testing"

	"github.com/idbroker/idbroker/store"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical String(); "" means a parse error
	}{
		{`userName eq "bjensen"`, `userName eq "bjensen"`},
		{`USERNAME EQ "bjensen"`, `USERNAME eq "bjensen"`},
		{`name.familyName co "O'Malley"`, `name.familyName co "O'Malley"`},
		{`userName sw "J"`, `userName sw "J"`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`},
		{`title pr`, `title pr`},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`},
		{`title pr and userType eq "Employee"`, `title pr and userType eq "Employee"`},
		{`title pr or userType eq "Intern"`, `title pr or userType eq "Intern"`},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
			`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
			`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`},
		{`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
			`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`},
		{`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
			`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`},
		// Entra ID's form, which scim2/filter-parser rejects.
		{`emails[type eq "work"].value eq "alice@contoso.com"`, `emails[type eq "work"].value eq "alice@contoso.com"`},
		{`members[value eq "usr_01"]`, `members[value eq "usr_01"]`},
		{`active eq true`, `active eq true`},
		{`active eq False`, `active eq false`},
		{`externalId eq null`, `externalId eq null`},
		{`x gt 42`, `x gt 42`},
		{`x ge -1.5e3`, `x ge -1.5e3`},
		{`a eq "quote \" and \\ and \u00e9"`, `a eq "quote \" and \\ and é"`},
		{`a eq 1 and b eq 2 or c eq 3`, `(a eq 1 and b eq 2) or c eq 3`},
		{`a eq 1 or b eq 2 and c eq 3`, `a eq 1 or (b eq 2 and c eq 3)`},
		{`((a pr))`, `a pr`},
		{``, ""},
		{`userName`, ""},
		{`userName eq`, ""},
		{`userName zz "x"`, ""},
		{`userName eq "x`, ""},
		{`userName eq "x" and`, ""},
		{`(userName eq "x"`, ""},
		{`emails[type eq "work"`, ""},
		{`emails[type[x eq 1] eq "work"]`, ""},
		{`emails.value[type eq "work"]`, ""},
		{`userName eq "x" )`, ""},
		{`1abc eq "x"`, ""},
		{`userName eq bareword`, ""},
		{`userName ; drop table users`, ""},
		{`not userName eq "x"`, ""},
	}
	for _, tc := range tests {
		got, err := ParseFilter(tc.in)
		if tc.want == "" {
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Errorf("ParseFilter(%q) = %v, %v; want a FilterError", tc.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("ParseFilter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseFilterDepthAndLength(t *testing.T) {
	deep := ""
	for range 100 {
		deep += "("
	}
	if _, err := ParseFilter(deep + `a pr` + deep); err == nil {
		t.Fatal("100 nested parentheses parsed")
	}
	long := make([]byte, maxFilterLen+1)
	for i := range long {
		long[i] = 'a'
	}
	if _, err := ParseFilter(string(long)); err == nil {
		t.Fatal("over-long filter parsed")
	}
}

func TestTranslateUserFilter(t *testing.T) {
	tests := []struct {
		in      string
		want    string // %v of the store filter; "" means invalidFilter
		invalid bool
	}{
		{`userName eq "a@b.c"`, `{user_name eq a@b.c}`, false},
		{`USERNAME Eq "a@b.c"`, `{user_name eq a@b.c}`, false},
		{`externalId eq "00u1"`, `{external_id eq 00u1}`, false},
		{`externalId eq 1234`, `{external_id eq 1234}`, false},
		{`emails[type eq "work"].value eq "x@y.z"`, `{{email pr <nil>} {email eq x@y.z}}`, false},
		{`emails[primary eq true].value eq "x@y.z"`, `{{email pr <nil>} {email eq x@y.z}}`, false},
		{`emails.value eq "x@y.z"`, `{email eq x@y.z}`, false},
		{`emails[value eq "x@y.z"]`, `{email eq x@y.z}`, false},
		{`name.givenName sw "Al" and active eq "True"`, `{{given_name sw Al} {active eq true}}`, false},
		{`not (active eq false)`, `{{active eq false}}`, false},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, `{user_name eq x}`, false},
		{`title eq "CTO"`, ``, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`, ``, true},
		{`active co "t"`, ``, true},
		{`active eq "maybe"`, ``, true},
		{`meta.created gt "yesterday"`, ``, true},
		{`meta.created co "2020"`, ``, true},
		{`userName eq true`, ``, true},
		{`emails[type eq "home"].value eq "x"`, `{{email pr <nil>} {email eq x}}`, false},
		{`emails[primary eq false].value eq "x"`, ``, true},
	}
	for _, tc := range tests {
		e, err := ParseFilter(tc.in)
		if err != nil {
			t.Fatalf("parse %q: %v", tc.in, err)
		}
		f, err := userFilters.translate(e)
		if tc.invalid {
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Errorf("translate(%q) = %v, %v; want invalidFilter", tc.in, f, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("translate(%q): %v", tc.in, err)
			continue
		}
		if got := sprint(f); got != tc.want {
			t.Errorf("translate(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestTranslateGroupFilter(t *testing.T) {
	for in, want := range map[string]store.Filter{
		`displayName eq "Engineering"`:         store.Cmp{Field: "display_name", Op: store.OpEq, Value: "Engineering"},
		`members[value eq "usr_1"]`:            store.Cmp{Field: "member", Op: store.OpEq, Value: "usr_1"},
		`members.value eq "usr_1"`:             store.Cmp{Field: "member", Op: store.OpEq, Value: "usr_1"},
		`externalId eq "x" and displayName pr`: store.And{Left: store.Cmp{Field: "external_id", Op: store.OpEq, Value: "x"}, Right: store.Cmp{Field: "display_name", Op: store.OpPr}},
	} {
		e, err := ParseFilter(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := groupFilters.translate(e)
		if err != nil || sprint(got) != sprint(want) {
			t.Errorf("translate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{`members co "usr"`, `userName eq "x"`} {
		e, _ := ParseFilter(in)
		if _, err := groupFilters.translate(e); err == nil {
			t.Errorf("translate(%q) succeeded", in)
		}
	}
}

// FuzzParseFilter: the parser never panics, and what it accepts renders to
// a string that parses back to the same expression.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`, `emails[type eq "work"].value eq "x"`, `members[value eq "usr_1"]`,
		`a pr and (b eq 1 or not (c ne "x"))`, `urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "J"`,
		`a eq "\u00e9\"\\"`, `x gt -1.5e3`, `active eq True`, `a eq null`, `((((a pr))))`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseFilter(s)
		if err != nil {
			return
		}
		out := e.String()
		e2, err := ParseFilter(out)
		if err != nil {
			t.Fatalf("String() of %q = %q does not parse: %v", s, out, err)
		}
		if e2.String() != out {
			t.Fatalf("round trip of %q: %q then %q", s, out, e2.String())
		}
		// Translation must not panic either.
		_, _ = userFilters.translate(e)
		_, _ = groupFilters.translate(e)
	})
}
