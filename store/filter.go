package store

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Filter is a condition on users or groups, built by package scim from a
// SCIM filter and rendered here as parameterised SQL: values are always
// bound, never spliced, and fields come from a fixed list.
type Filter interface{ isFilter() }

// Op is a SCIM comparison operator.
type Op string

const (
	OpEq Op = "eq"
	OpNe Op = "ne"
	OpCo Op = "co"
	OpSw Op = "sw"
	OpEw Op = "ew"
	OpPr Op = "pr"
	OpGt Op = "gt"
	OpGe Op = "ge"
	OpLt Op = "lt"
	OpLe Op = "le"
)

// Cmp compares Field with Value: a string, bool or time.Time (none for pr).
// User fields: id, external_id, user_name, email, given_name, family_name,
// display_name, active, created_at, updated_at. Group fields: id,
// external_id, display_name, created_at, updated_at, and member (eq a user
// id: the group has that member).
type Cmp struct {
	Field string
	Op    Op
	Value any
}

// And, Or and Not combine filters.
type (
	And struct{ Left, Right Filter }
	Or  struct{ Left, Right Filter }
	Not struct{ Filter Filter }
)

func (Cmp) isFilter() {}
func (And) isFilter() {}
func (Or) isFilter()  {}
func (Not) isFilter() {}

// UserQuery selects users of the tenant in ctx.
type UserQuery struct {
	DirectoryID string // "" for every user of the tenant
	Filter      Filter // nil for all
	Sort        Sort   // zero: in id (creation) order
	Offset      int
	Limit       int // 0 means 100; at most 1000
}

// GroupQuery selects groups of the tenant in ctx.
type GroupQuery struct {
	DirectoryID string
	Filter      Filter
	Sort        Sort
	Offset      int
	Limit       int
}

// Sort orders a list by one of the fields a Cmp names (not member),
// ascending unless Descending, as RFC 7644 §3.4.2.3 asks of SCIM: text
// compared case-insensitively where the field is, by code point (no
// locale, the same on both databases), rows without a value last either
// way, and id breaking ties so that pages neither repeat nor skip a row.
type Sort struct {
	Field      string // "" for id order
	Descending bool
}

type fieldKind int

const (
	kindString   fieldKind = iota // case-sensitive (ids)
	kindFoldText                  // compared case-insensitively
	kindBool
	kindTime
	kindMember
)

var (
	userFields = map[string]fieldKind{
		"id": kindString, "external_id": kindString, "user_name": kindFoldText, "email": kindFoldText,
		"given_name": kindFoldText, "family_name": kindFoldText, "display_name": kindFoldText,
		"active": kindBool, "created_at": kindTime, "updated_at": kindTime,
	}
	groupFields = map[string]fieldKind{
		"id": kindString, "external_id": kindString, "display_name": kindFoldText,
		"created_at": kindTime, "updated_at": kindTime, "member": kindMember,
	}
)

// sqlFilter renders filters; args continues the statement's numbering.
type sqlFilter struct {
	fields map[string]fieldKind
	table  string // "users" or "groups", for the member sub-query
	args   []any
	timeOf func(time.Time) any
}

// orderBy renders s as an ORDER BY list over fields; postgres selects its
// byte-order collation, which SQLite's default already is.
func orderBy(s Sort, fields map[string]fieldKind, table string, postgres bool) (string, error) {
	if s.Field == "" {
		return "id", nil
	}
	kind, ok := fields[s.Field]
	if !ok || kind == kindMember {
		return "", fmt.Errorf("%w: cannot sort on %q", ErrInvalid, s.Field)
	}
	col, missing := s.Field, s.Field+" IS NULL"
	switch kind {
	case kindString, kindFoldText:
		missing = "(" + s.Field + " IS NULL OR " + s.Field + " = '')"
		if kind == kindFoldText {
			if folded[table][s.Field] {
				col = s.Field + "_lc"
			} else {
				col = "lower(" + s.Field + ")"
			}
		}
		if postgres {
			col += ` COLLATE "C"`
		}
	}
	dir := ""
	if s.Descending {
		dir = " DESC"
	}
	return missing + ", " + col + dir + ", id", nil
}

func (b *sqlFilter) arg(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args))
}

func (b *sqlFilter) render(f Filter) (string, error) {
	switch f := f.(type) {
	case And:
		return b.binary("AND", f.Left, f.Right)
	case Or:
		return b.binary("OR", f.Left, f.Right)
	case Not:
		inner, err := b.render(f.Filter)
		if err != nil {
			return "", err
		}
		return "NOT (" + inner + ")", nil
	case Cmp:
		return b.cmp(f)
	case nil:
		return "", fmt.Errorf("%w: empty filter", ErrInvalid)
	}
	return "", fmt.Errorf("%w: unknown filter %T", ErrInvalid, f)
}

func (b *sqlFilter) binary(op string, l, r Filter) (string, error) {
	ls, err := b.render(l)
	if err != nil {
		return "", err
	}
	rs, err := b.render(r)
	if err != nil {
		return "", err
	}
	return "(" + ls + " " + op + " " + rs + ")", nil
}

func (b *sqlFilter) cmp(c Cmp) (string, error) {
	kind, ok := b.fields[c.Field]
	if !ok {
		return "", fmt.Errorf("%w: cannot filter on %q", ErrInvalid, c.Field)
	}
	col := c.Field
	bad := func() (string, error) {
		return "", fmt.Errorf("%w: %s %s %v is not a valid comparison", ErrInvalid, c.Field, c.Op, c.Value)
	}
	if c.Op == OpPr {
		switch kind {
		case kindString, kindFoldText:
			return "(" + col + " IS NOT NULL AND " + col + " <> '')", nil
		case kindMember:
			return "EXISTS (SELECT 1 FROM group_members m WHERE m.tenant_id = groups.tenant_id AND m.group_id = groups.id)", nil
		default:
			return col + " IS NOT NULL", nil
		}
	}
	switch kind {
	case kindMember:
		s, ok := c.Value.(string)
		if !ok || c.Op != OpEq {
			return bad()
		}
		// Driven from the member's side (group_members_user), not by
		// testing every group of the directory; $1 is always the tenant.
		return "id IN (SELECT m.group_id FROM group_members m WHERE m.tenant_id = $1 AND m.user_id = " + b.arg(s) + ")", nil
	case kindBool:
		v, ok := c.Value.(bool)
		if !ok || (c.Op != OpEq && c.Op != OpNe) {
			return bad()
		}
		return col + sqlOps[c.Op] + b.arg(v), nil
	case kindTime:
		v, ok := c.Value.(time.Time)
		if !ok || c.Op == OpCo || c.Op == OpSw || c.Op == OpEw {
			return bad()
		}
		return col + sqlOps[c.Op] + b.arg(b.timeOf(v.UTC())), nil
	}
	s, ok := c.Value.(string)
	if !ok {
		return bad()
	}
	lhs := col
	rhs := b.arg
	if kind == kindFoldText {
		if folded[b.table][col] {
			lhs = col + "_lc" // indexed; see migration 0006
		} else {
			lhs = "lower(" + col + ")"
		}
		// The value is folded by the database's lower(), the function
		// that folded the column, so that the two always agree (on
		// SQLite that is Go's strings.ToLower, see sqlite_lower.go; a
		// stored index folded otherwise would miss).
		rhs = func(v any) string { return "lower(" + b.arg(v) + ")" }
	}
	if b.table == "users" && col == "email" && (c.Op == OpEq || c.Op == OpNe) {
		// Addresses are stored normalised (NormalizeEmail): the value
		// is compared in that form, in the ASCII form of its domain and
		// as written, which rows stored before the normalisation hold.
		forms := EmailForms(s)
		if !slices.Contains(forms, s) {
			forms = append(forms, s)
		}
		in := make([]string, len(forms))
		for i, f := range forms {
			in[i] = rhs(f)
		}
		list := lhs + " IN (" + strings.Join(in, ", ") + ")"
		if c.Op == OpEq {
			return list, nil
		}
		return "(NOT " + list + " OR " + col + " IS NULL)", nil
	}
	// SQLite's LIKE ignores the case of ASCII letters whatever the
	// operands, so on a case-exact field (ids, externalId) a LIKE is
	// followed by a case-exact test, with replace() and substr(), which
	// both databases have and which respect case.
	exact := func(like string, test func() string) (string, error) {
		if kind == kindFoldText || s == "" {
			return like, nil
		}
		return "(" + like + " AND " + test() + ")", nil
	}
	switch c.Op {
	case OpCo:
		return exact(lhs+" LIKE "+rhs("%"+escapeLike(s)+"%")+` ESCAPE '\'`, func() string {
			return "replace(" + col + ", " + b.arg(s) + ", '') <> " + col
		})
	case OpSw:
		return exact(lhs+" LIKE "+rhs(escapeLike(s)+"%")+` ESCAPE '\'`, func() string {
			return "substr(" + col + ", 1, " + b.arg(utf8.RuneCountInString(s)) + ") = " + b.arg(s)
		})
	case OpEw:
		return exact(lhs+" LIKE "+rhs("%"+escapeLike(s))+` ESCAPE '\'`, func() string {
			return "substr(" + col + ", length(" + col + ") - " + b.arg(utf8.RuneCountInString(s)) + " + 1) = " + b.arg(s)
		})
	case OpNe:
		// SCIM: ne matches resources without the attribute too.
		return "(" + lhs + " <> " + rhs(s) + " OR " + col + " IS NULL)", nil
	}
	op, ok := sqlOps[c.Op]
	if !ok {
		return bad()
	}
	return lhs + op + rhs(s), nil
}

// folded are the text fields of each table with a stored lower-case twin
// column. Only groups have one for display_name: a user's display_name is
// folded in the query, which is why the table matters.
var folded = map[string]map[string]bool{
	"users":  {"user_name": true, "email": true},
	"groups": {"display_name": true},
}

var sqlOps = map[Op]string{OpEq: " = ", OpNe: " <> ", OpGt: " > ", OpGe: " >= ", OpLt: " < ", OpLe: " <= "}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
