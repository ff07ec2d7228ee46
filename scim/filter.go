package scim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Filter parsing (RFC 7644 §3.4.2.2), written here because the maintained
// parsers we tried reject what Entra ID actually sends: a value path
// followed by a sub-attribute and a comparison, emails[type eq "work"].value
// eq "x". Keywords and attribute names are case-insensitive; string literals
// are JSON strings.

// Limits that keep a hostile filter from costing much.
const (
	maxFilterLen   = 4096
	maxFilterDepth = 32
)

// Expr is a parsed filter: Compare, ValuePath, Logical or Not.
type Expr interface {
	// String renders the expression in canonical form; parsing it again
	// yields the same expression.
	String() string
	isExpr()
}

// AttrPath names an attribute: an optional schema URN, the attribute and
// an optional sub-attribute, as written (matching is case-insensitive).
type AttrPath struct {
	URI  string // "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", or ""
	Attr string
	Sub  string
}

func (p AttrPath) String() string {
	s := p.Attr
	if p.URI != "" {
		s = p.URI + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// Compare is attrPath op value, or attrPath pr. Filter, when set, is the
// value filter of Entra's form attr[filter].sub op value.
type Compare struct {
	Path   AttrPath
	Filter Expr
	Op     string // lower case: eq ne co sw ew gt ge lt le pr
	Value  any    // string, bool, nil or json.Number; unset for pr
}

// ValuePath is attr[filter]: some element of a multi-valued attribute
// matches filter.
type ValuePath struct {
	Path   AttrPath
	Filter Expr
}

// Logical is left and/or right.
type Logical struct {
	Op          string // "and" or "or"
	Left, Right Expr
}

// Not negates X.
type Not struct{ X Expr }

func (Compare) isExpr()   {}
func (ValuePath) isExpr() {}
func (Logical) isExpr()   {}
func (Not) isExpr()       {}

func (c Compare) String() string {
	path := c.Path.String()
	if c.Filter != nil {
		path = AttrPath{URI: c.Path.URI, Attr: c.Path.Attr}.String() + "[" + c.Filter.String() + "]." + c.Path.Sub
	}
	if c.Op == "pr" {
		return path + " pr"
	}
	return path + " " + c.Op + " " + literal(c.Value)
}

func (v ValuePath) String() string { return v.Path.String() + "[" + v.Filter.String() + "]" }

// Logical operands are parenthesised whenever they are themselves logical,
// so that String never depends on precedence.
func (l Logical) String() string { return operand(l.Left) + " " + l.Op + " " + operand(l.Right) }

func (n Not) String() string { return "not (" + n.X.String() + ")" }

func operand(e Expr) string {
	if _, ok := e.(Logical); ok {
		return "(" + e.String() + ")"
	}
	return e.String()
}

func literal(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	case string:
		b, _ := json.Marshal(v)
		return string(b)
	}
	return fmt.Sprint(v)
}

var compareOps = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "ge": true, "lt": true, "le": true}

// FilterError is a filter that does not parse or cannot be served; it is
// answered as 400 invalidFilter.
type FilterError struct{ Msg string }

func (e *FilterError) Error() string { return "invalid filter: " + e.Msg }

func filterErr(format string, args ...any) error {
	return &FilterError{Msg: fmt.Sprintf(format, args...)}
}

// ParseFilter parses a SCIM filter.
func ParseFilter(s string) (Expr, error) {
	if len(s) > maxFilterLen {
		return nil, filterErr("longer than %d bytes", maxFilterLen)
	}
	if !utf8.ValidString(s) {
		return nil, filterErr("not valid UTF-8")
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.or(0, false)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, filterErr("unexpected %s at offset %d", t, t.pos)
	}
	return e, nil
}

// ParsePath parses a PATCH path: attrPath, or attr[valFilter] optionally
// followed by .subAttr (RFC 7644 §3.5.2).
func ParsePath(s string) (AttrPath, Expr, error) {
	if len(s) > maxFilterLen {
		return AttrPath{}, nil, filterErr("path longer than %d bytes", maxFilterLen)
	}
	toks, err := lex(s)
	if err != nil {
		return AttrPath{}, nil, err
	}
	p := &parser{toks: toks}
	t := p.next()
	if t.kind != tokWord {
		return AttrPath{}, nil, filterErr("path must start with an attribute name")
	}
	path, err := splitPath(t.text)
	if err != nil {
		return AttrPath{}, nil, err
	}
	var f Expr
	if p.peek().kind == tokLBrack {
		p.next()
		if path.Sub != "" {
			return AttrPath{}, nil, filterErr("a value filter follows an attribute, not a sub-attribute")
		}
		if f, err = p.or(1, true); err != nil {
			return AttrPath{}, nil, err
		}
		if t := p.next(); t.kind != tokRBrack {
			return AttrPath{}, nil, filterErr("missing ] in path")
		}
		if t := p.peek(); t.kind == tokWord && strings.HasPrefix(t.text, ".") {
			p.next()
			if path.Sub, err = subAttr(t.text); err != nil {
				return AttrPath{}, nil, err
			}
		}
	}
	if t := p.peek(); t.kind != tokEOF {
		return AttrPath{}, nil, filterErr("unexpected %s in path", t)
	}
	return path, f, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
)

type token struct {
	kind tokKind
	text string // words: as written; strings: decoded
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of filter"
	case tokString:
		return strconv.Quote(t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '$' || c == ':' || c == '.' || c == '+'
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '[' || c == ']':
			out = append(out, token{kind: map[byte]tokKind{'(': tokLParen, ')': tokRParen, '[': tokLBrack, ']': tokRBrack}[c], text: string(c), pos: i})
			i++
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return nil, filterErr("unterminated string at offset %d", i)
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, filterErr("bad string literal at offset %d", i)
			}
			// "\u0000" decodes to a NUL, which no stored value holds
			// (bodies with one are refused) and which PostgreSQL refuses
			// as a query argument: it would fail the list, not match.
			if strings.IndexByte(v, 0) >= 0 {
				return nil, filterErr("the string at offset %d contains U+0000", i)
			}
			out = append(out, token{kind: tokString, text: v, pos: i})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			out = append(out, token{kind: tokWord, text: s[i:j], pos: i})
			i = j
		default:
			return nil, filterErr("unexpected character %q at offset %d", rune(c), i)
		}
	}
	return append(out, token{kind: tokEOF, pos: len(s)}), nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(k string) bool {
	t := p.peek()
	return t.kind == tokWord && strings.EqualFold(t.text, k)
}

// or parses a disjunction; inValue is set inside [ ], where value paths
// cannot nest.
func (p *parser) or(depth int, inValue bool) (Expr, error) {
	if depth > maxFilterDepth {
		return nil, filterErr("nested deeper than %d", maxFilterDepth)
	}
	l, err := p.and(depth, inValue)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		p.next()
		r, err := p.and(depth, inValue)
		if err != nil {
			return nil, err
		}
		l = Logical{Op: "or", Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) and(depth int, inValue bool) (Expr, error) {
	l, err := p.unary(depth, inValue)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		p.next()
		r, err := p.unary(depth, inValue)
		if err != nil {
			return nil, err
		}
		l = Logical{Op: "and", Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) unary(depth int, inValue bool) (Expr, error) {
	if p.keyword("not") && p.toks[p.i+1].kind == tokLParen {
		p.next()
		x, err := p.group(depth, inValue)
		if err != nil {
			return nil, err
		}
		return Not{X: x}, nil
	}
	if p.peek().kind == tokLParen {
		return p.group(depth, inValue)
	}
	return p.attrExpr(depth, inValue)
}

func (p *parser) group(depth int, inValue bool) (Expr, error) {
	p.next() // (
	x, err := p.or(depth+1, inValue)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tokRParen {
		return nil, filterErr("expected ) at offset %d, found %s", t.pos, t)
	}
	return x, nil
}

func (p *parser) attrExpr(depth int, inValue bool) (Expr, error) {
	t := p.next()
	if t.kind != tokWord {
		return nil, filterErr("expected an attribute name at offset %d, found %s", t.pos, t)
	}
	path, err := splitPath(t.text)
	if err != nil {
		return nil, err
	}
	var vf Expr
	if p.peek().kind == tokLBrack {
		if inValue {
			return nil, filterErr("value filters cannot nest (offset %d)", p.peek().pos)
		}
		if path.Sub != "" {
			return nil, filterErr("a value filter follows an attribute, not a sub-attribute (offset %d)", p.peek().pos)
		}
		p.next()
		if vf, err = p.or(depth+1, true); err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tokRBrack {
			return nil, filterErr("expected ] at offset %d, found %s", t.pos, t)
		}
		// Entra ID: attr[filter].sub op value.
		st := p.peek()
		if !(st.kind == tokWord && strings.HasPrefix(st.text, ".")) {
			return ValuePath{Path: path, Filter: vf}, nil
		}
		p.next()
		if path.Sub, err = subAttr(st.text); err != nil {
			return nil, err
		}
	}
	opTok := p.next()
	if opTok.kind != tokWord {
		return nil, filterErr("expected an operator after %s at offset %d, found %s", t.text, opTok.pos, opTok)
	}
	op := strings.ToLower(opTok.text)
	if op == "pr" {
		return Compare{Path: path, Filter: vf, Op: op}, nil
	}
	if !compareOps[op] {
		return nil, filterErr("unknown operator %q at offset %d", opTok.text, opTok.pos)
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	return Compare{Path: path, Filter: vf, Op: op, Value: v}, nil
}

func (p *parser) value() (any, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return t.text, nil
	case tokWord:
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		if n := json.Number(t.text); isJSONNumber(t.text) {
			return n, nil
		}
	}
	return nil, filterErr("expected a value (string, number, true, false or null) at offset %d, found %s", t.pos, t)
}

func isJSONNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9')
}

// splitPath splits [urn:…:]attr[.sub]. The URN is whatever precedes the last
// colon; attribute names then cannot contain one.
func splitPath(w string) (AttrPath, error) {
	var p AttrPath
	rest := w
	if i := strings.LastIndexByte(w, ':'); i >= 0 {
		p.URI, rest = w[:i], w[i+1:]
		if !strings.HasPrefix(strings.ToLower(p.URI), "urn:") {
			return p, filterErr("%q: only a schema URN may precede an attribute name", w)
		}
	}
	attr, sub, hasSub := strings.Cut(rest, ".")
	if !validName(attr) || (hasSub && !validName(sub)) {
		return p, filterErr("%q is not an attribute path", w)
	}
	p.Attr, p.Sub = attr, sub
	return p, nil
}

func subAttr(w string) (string, error) {
	s := strings.TrimPrefix(w, ".")
	if !validName(s) {
		return "", filterErr("%q is not a sub-attribute", w)
	}
	return s, nil
}

// validName: ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA
// ($ref is allowed too, as members.$ref).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !alpha && c != '$' {
			return false
		}
		if !alpha && !(c >= '0' && c <= '9') && c != '-' && c != '_' && !(i == 0 && c == '$') {
			return false
		}
	}
	return true
}
