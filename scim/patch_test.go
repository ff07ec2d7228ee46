package scim

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestApplyPatch(t *testing.T) {
	base := `{"userName":"alice@acme.com","active":true,"name":{"givenName":"Alice","familyName":"A"},
		"emails":[{"value":"alice@acme.com","type":"work","primary":true}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Eng"}}`
	tests := []struct {
		name string
		ops  string
		want map[string]any // dotted path → expected value (nil: absent)
		err  string         // scimType expected, or ""
	}{
		{"Entra capitalised Replace with string boolean",
			`[{"op":"Replace","path":"active","value":"False"}]`, map[string]any{"active": "False"}, ""},
		{"Okta no-path replace of active",
			`[{"op":"replace","value":{"active":false}}]`, map[string]any{"active": false}, ""},
		{"no-path replace with dotted keys",
			`[{"op":"replace","value":{"name.givenName":"Alicia","displayName":"Alicia A"}}]`,
			map[string]any{"name.givenName": "Alicia", "name.familyName": "A", "displayName": "Alicia A"}, ""},
		{"enterprise extension path",
			`[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"}]`,
			map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department": "Sales"}, ""},
		{"enterprise manager sub-attribute",
			`[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"usr_9"}}]`,
			map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value": "usr_9"}, ""},
		{"no-path with extension object",
			`[{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42"}}}]`,
			map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.employeeNumber": "42",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department": "Eng"}, ""},
		{"no-path URN-qualified attribute with an object value",
			`[{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":{"value":"usr_9"}}}]`,
			map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value": "usr_9",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department": "Eng",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager":    nil}, ""},
		{"no-path core-qualified attribute with an object value",
			`[{"op":"replace","value":{"urn:ietf:params:scim:schemas:core:2.0:User:name":{"givenName":"Al"}}}]`,
			map[string]any{"name.givenName": "Al", "name.familyName": "A", "urn:ietf:params:scim:schemas:core:2.0:user:name": nil}, ""},
		{"Entra value-filter path replace",
			`[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"alice@new.com"}]`,
			map[string]any{"emails.0.value": "alice@new.com", "emails.0.type": "work"}, ""},
		{"value-filter path with no match creates the element",
			`[{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555"}]`,
			map[string]any{"phoneNumbers.0.value": "+1 555", "phoneNumbers.0.type": "mobile"}, ""},
		{"case-insensitive attribute names",
			`[{"op":"replace","path":"NAME.GIVENNAME","value":"Al"}]`, map[string]any{"name.givenName": "Al"}, ""},
		{"add to multi-valued appends",
			`[{"op":"add","path":"emails","value":[{"value":"a2@acme.com","type":"home"}]}]`,
			map[string]any{"emails.0.value": "alice@acme.com", "emails.1.value": "a2@acme.com"}, ""},
		{"remove by value filter",
			`[{"op":"remove","path":"emails[type eq \"work\"]"}]`, map[string]any{"emails": nil}, ""},
		{"remove sub-attribute",
			`[{"op":"remove","path":"name.familyName"}]`, map[string]any{"name.familyName": nil, "name.givenName": "Alice"}, ""},
		{"remove extension attribute",
			`[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]`,
			map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department": nil}, ""},
		{"password is accepted and dropped",
			`[{"op":"replace","path":"password","value":"hunter2"}]`, map[string]any{"password": nil}, ""},
		{"remove without path", `[{"op":"remove"}]`, nil, typeNoTarget},
		{"unknown op", `[{"op":"merge","path":"active","value":true}]`, nil, typeInvalidValue},
		{"bad path", `[{"op":"replace","path":"emails[type eq","value":"x"}]`, nil, typeInvalidPath},
		{"read-only id", `[{"op":"replace","path":"id","value":"usr_x"}]`, nil, typeMutability},
		{"replace without value", `[{"op":"replace","path":"active"}]`, nil, typeInvalidValue},
		{"no-path add needs an object", `[{"op":"add","value":"x"}]`, nil, typeInvalidValue},
		{"filter with no match and no way to create it", `[{"op":"replace","path":"emails[value co \"zz\"].type","value":"home"}]`, nil, typeNoTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decodeDoc(json.RawMessage(base))
			if err != nil {
				t.Fatal(err)
			}
			var req patchRequest
			if err := json.Unmarshal([]byte(`{"schemas":["`+SchemaPatchOp+`"],"Operations":`+tc.ops+`}`), &req); err != nil {
				t.Fatal(err)
			}
			err = req.validate()
			if err == nil {
				err = applyPatch(d, req.Operations, SchemaUser)
			}
			if tc.err != "" {
				e, ok := err.(*Error)
				if !ok || e.ScimType != tc.err {
					t.Fatalf("err = %v, want scimType %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range tc.want {
				if got := lookupDoc(d, path); !reflect.DeepEqual(got, want) {
					b, _ := json.Marshal(d)
					t.Errorf("%s = %#v, want %#v (doc %s)", path, got, want, b)
				}
			}
		})
	}
}

// lookupDoc walks a path whose first segment may be a URN (containing dots).
func lookupDoc(d doc, path string) any {
	var v any = d
	if strings.HasPrefix(path, "urn:") {
		i := strings.Index(path, ":User.")
		if i < 0 {
			return d[path]
		}
		v = d[path[:i+5]]
		path = path[i+6:]
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			n := int(part[0] - '0')
			if n >= len(x) {
				return nil
			}
			v = x[n]
		default:
			return nil
		}
	}
	return v
}

func TestSplitMemberOps(t *testing.T) {
	var req patchRequest
	body := `{"Operations":[
		{"op":"add","path":"members","value":[{"value":"usr_01ARZ3NDEKTSV4RRFFQ69G5FAV"}]},
		{"op":"remove","path":"members[value eq \"usr_01ARZ3NDEKTSV4RRFFQ69G5FAW\"]"},
		{"op":"Remove","path":"members","value":[{"value":"usr_01ARZ3NDEKTSV4RRFFQ69G5FAX"}]},
		{"op":"Replace","path":"displayName","value":"Eng"},
		{"op":"replace","value":{"id":"grp_x","displayName":"Eng 2","members":[{"value":"usr_01ARZ3NDEKTSV4RRFFQ69G5FAY"}]}}
	]}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	if err := req.validate(); err != nil {
		t.Fatal(err)
	}
	mops, rest, err := splitMemberOps(req.Operations)
	if err != nil {
		t.Fatal(err)
	}
	// The two removes in a row are one (one statement, not two).
	want := []memberOp{
		{"add", []string{"usr_01ARZ3NDEKTSV4RRFFQ69G5FAV"}},
		{"remove", []string{"usr_01ARZ3NDEKTSV4RRFFQ69G5FAW", "usr_01ARZ3NDEKTSV4RRFFQ69G5FAX"}},
		{"replace", []string{"usr_01ARZ3NDEKTSV4RRFFQ69G5FAY"}},
	}
	if !reflect.DeepEqual(mops, want) || len(rest) != 2 {
		t.Fatalf("member ops %v, rest %v", mops, rest)
	}
}

// TestSplitMemberOpsJoinsOnlyNeighbours: Entra's 1,000 one-member
// operations become one; an add, a remove and an add of the same user
// stay three, in order, so that the user ends a member.
func TestSplitMemberOpsJoinsOnlyNeighbours(t *testing.T) {
	const x, y = "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV", "usr_01ARZ3NDEKTSV4RRFFQ69G5FAW"
	op := func(kind, id string) patchOp {
		return patchOp{Op: kind, Path: "members", Value: []any{map[string]any{"value": id}}}
	}
	var many []patchOp
	var ids []string
	for i := range 1000 {
		id := fmt.Sprintf("usr_%026d", i)
		many = append(many, patchOp{Op: "remove", Path: fmt.Sprintf("members[value eq %q]", id)})
		ids = append(ids, id)
	}
	for name, c := range map[string]struct {
		ops  []patchOp
		want []memberOp
	}{
		"1,000 removes":          {many, []memberOp{{"remove", ids}}},
		"add, remove, add":       {[]patchOp{op("add", x), op("remove", x), op("add", x)}, []memberOp{{"add", []string{x}}, {"remove", []string{x}}, {"add", []string{x}}}},
		"adds around a replace":  {[]patchOp{op("add", x), op("replace", y), op("add", y)}, []memberOp{{"add", []string{x}}, {"replace", []string{y}}, {"add", []string{y}}}},
		"replaces stay apart":    {[]patchOp{op("replace", x), op("replace", y)}, []memberOp{{"replace", []string{x}}, {"replace", []string{y}}}},
		"adds of one user twice": {[]patchOp{op("add", x), op("add", x)}, []memberOp{{"add", []string{x, x}}}},
	} {
		got, _, err := splitMemberOps(c.ops)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}
