package scim

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Translation of parsed filters into store.Filter: the store renders those
// as parameterised SQL over a fixed list of columns. Attributes the store
// does not index are refused with invalidFilter rather than filtered in
// memory, which would make a list cost a scan of the whole directory.

type fieldType int

const (
	typeString fieldType = iota
	typeBool
	typeTime
	typeMember
)

type storeField struct {
	name string
	typ  fieldType
	// trimmed: the column holds the value with its leading and trailing
	// spaces cut (see userFields, groupFields), so an eq or ne compares
	// the filter's value cut the same way.
	trimmed bool
}

// userAttrs maps lower-cased attribute paths (attr or attr.sub) to columns.
var userAttrs = map[string]storeField{
	"id":                {"id", typeString, false},
	"externalid":        {"external_id", typeString, true},
	"username":          {"user_name", typeString, true},
	"emails":            {"email", typeString, true},
	"emails.value":      {"email", typeString, true},
	"name.givenname":    {"given_name", typeString, false},
	"name.familyname":   {"family_name", typeString, false},
	"displayname":       {"display_name", typeString, true},
	"active":            {"active", typeBool, false},
	"meta.created":      {"created_at", typeTime, false},
	"meta.lastmodified": {"updated_at", typeTime, false},
}

var groupAttrs = map[string]storeField{
	"id":                {"id", typeString, false},
	"externalid":        {"external_id", typeString, true},
	"displayname":       {"display_name", typeString, true},
	"members":           {"member", typeMember, false},
	"members.value":     {"member", typeMember, false},
	"meta.created":      {"created_at", typeTime, false},
	"meta.lastmodified": {"updated_at", typeTime, false},
}

// filterTranslator turns an Expr into a store.Filter for one resource type.
type filterTranslator struct {
	attrs    map[string]storeField
	schemas  []string // URNs an attribute path may carry
	resource string
}

var (
	userFilters  = filterTranslator{attrs: userAttrs, schemas: []string{SchemaUser}, resource: "User"}
	groupFilters = filterTranslator{attrs: groupAttrs, schemas: []string{SchemaGroup}, resource: "Group"}
)

func (ft filterTranslator) translate(e Expr) (store.Filter, error) {
	switch e := e.(type) {
	case Logical:
		l, err := ft.translate(e.Left)
		if err != nil {
			return nil, err
		}
		r, err := ft.translate(e.Right)
		if err != nil {
			return nil, err
		}
		if e.Op == "and" {
			return store.And{Left: l, Right: r}, nil
		}
		return store.Or{Left: l, Right: r}, nil
	case Not:
		x, err := ft.translate(e.X)
		if err != nil {
			return nil, err
		}
		return store.Not{Filter: x}, nil
	case ValuePath:
		return ft.valueFilter(e.Path, e.Filter)
	case Compare:
		c, err := ft.compare(e)
		if err != nil || e.Filter == nil {
			return c, err
		}
		vf, err := ft.valueFilter(AttrPath{URI: e.Path.URI, Attr: e.Path.Attr}, e.Filter)
		if err != nil {
			return nil, err
		}
		return store.And{Left: vf, Right: c}, nil
	}
	return nil, filterErr("unsupported expression")
}

// valueFilter translates attr[filter]: each comparison inside is on a
// sub-attribute of attr. A user has one email in the store, which is both
// the primary and the work address, so conditions on emails.type and
// emails.primary hold when the user has an email at all.
func (ft filterTranslator) valueFilter(outer AttrPath, f Expr) (store.Filter, error) {
	switch f := f.(type) {
	case Logical:
		l, err := ft.valueFilter(outer, f.Left)
		if err != nil {
			return nil, err
		}
		r, err := ft.valueFilter(outer, f.Right)
		if err != nil {
			return nil, err
		}
		if f.Op == "and" {
			return store.And{Left: l, Right: r}, nil
		}
		return store.Or{Left: l, Right: r}, nil
	case Not:
		x, err := ft.valueFilter(outer, f.X)
		if err != nil {
			return nil, err
		}
		return store.Not{Filter: x}, nil
	case Compare:
		if f.Path.URI != "" || f.Path.Sub != "" {
			return nil, filterErr("%s inside %s[…] must be a sub-attribute name", f.Path, outer.Attr)
		}
		attr, sub := strings.ToLower(outer.Attr), strings.ToLower(f.Path.Attr)
		if attr == "emails" && ft.resource == "User" && (sub == "type" || sub == "primary") {
			if f.Op == "pr" || (sub == "type" && f.Op == "eq") || (sub == "primary" && f.Op == "eq" && f.Value == true) {
				return store.Cmp{Field: "email", Op: store.OpPr}, nil
			}
			return nil, filterErr("only emails[type eq …] and emails[primary eq true] are supported")
		}
		return ft.compare(Compare{Path: AttrPath{URI: outer.URI, Attr: outer.Attr, Sub: f.Path.Attr}, Op: f.Op, Value: f.Value})
	}
	return nil, filterErr("unsupported expression inside %s[…]", outer.Attr)
}

func (ft filterTranslator) compare(c Compare) (store.Filter, error) {
	if c.Path.URI != "" && !containsFold(ft.schemas, c.Path.URI) {
		return nil, filterErr("filtering on %s is not supported", c.Path)
	}
	key := strings.ToLower(c.Path.Attr)
	if c.Path.Sub != "" {
		key += "." + strings.ToLower(c.Path.Sub)
	}
	f, ok := ft.attrs[key]
	if !ok {
		return nil, filterErr("filtering %s resources on %s is not supported", ft.resource, c.Path)
	}
	op := store.Op(c.Op)
	if op == store.OpPr {
		return store.Cmp{Field: f.name, Op: op}, nil
	}
	// null is a value of the grammar (RFC 7644 §3.4.2.2), and null and
	// unassigned are one state (RFC 7643 §2.5): "eq null" is "not pr",
	// "ne null" is "pr". It was refused, so a client asking for the users
	// without a displayName got a 400 it could do nothing with.
	if c.Value == nil && f.typ != typeMember && (op == store.OpEq || op == store.OpNe) {
		pr := store.Cmp{Field: f.name, Op: store.OpPr}
		if op == store.OpEq {
			return store.Not{Filter: pr}, nil
		}
		return pr, nil
	}
	bad := func(why string) (store.Filter, error) {
		return nil, filterErr("%s %s %s: %s", c.Path, c.Op, literal(c.Value), why)
	}
	switch f.typ {
	case typeMember:
		s, ok := c.Value.(string)
		if !ok || op != store.OpEq {
			return bad(`members can only be tested with eq "<user id>"`)
		}
		return store.Cmp{Field: f.name, Op: op, Value: s}, nil
	case typeBool:
		b, ok := boolValue(c.Value)
		if !ok || (op != store.OpEq && op != store.OpNe) {
			return bad("a boolean takes eq or ne and true or false")
		}
		return store.Cmp{Field: f.name, Op: op, Value: b}, nil
	case typeTime:
		s, ok := c.Value.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil {
			return bad("a date-time must be an RFC 3339 string")
		}
		if op == store.OpCo || op == store.OpSw || op == store.OpEw {
			return bad("a date-time takes eq ne gt ge lt le")
		}
		return store.Cmp{Field: f.name, Op: op, Value: t}, nil
	}
	s, ok := c.Value.(string)
	if !ok {
		if n, isNum := c.Value.(json.Number); isNum {
			s = n.String() // an externalId of digits, sent unquoted
		} else {
			return bad("a string value is required")
		}
	}
	// The client looks up what it wrote, spaces and all, before writing
	// it: "userName eq \"ann@acme.com \"" must find the user stored as
	// ann@acme.com, or the client creates it again and is answered 409
	// (uniqueness) at every sync.
	if f.trimmed && (op == store.OpEq || op == store.OpNe) {
		s = strings.TrimSpace(s)
	}
	return store.Cmp{Field: f.name, Op: op, Value: s}, nil
}

// sortField is the store field of a sortBy attribute (RFC 7644 §3.4.2.3):
// one a filter may name, but members. A multi-valued attribute sorts by
// its primary value, which for emails is the one the store keeps.
func (ft filterTranslator) sortField(attr string) (string, error) {
	p, err := splitPath(attr)
	bad := func() (string, error) {
		return "", badValue("sortBy %q: %s resources sort on the attributes they can be filtered on, members excepted", attr, ft.resource)
	}
	if err != nil || (p.URI != "" && !containsFold(ft.schemas, p.URI)) {
		return bad()
	}
	key := strings.ToLower(p.Attr)
	if p.Sub != "" {
		key += "." + strings.ToLower(p.Sub)
	}
	f, ok := ft.attrs[key]
	if !ok || f.typ == typeMember {
		return bad()
	}
	return f.name, nil
}

// boolValue accepts JSON booleans and the strings "true"/"false" in any
// case, which Entra ID sends.
func boolValue(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
