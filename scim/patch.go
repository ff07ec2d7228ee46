package scim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// PATCH (RFC 7644 §3.5.2) applied to a stored document, tolerant of what
// real clients send: Entra ID capitalises ops ("Replace") and sends
// booleans as strings ("False"); both send no-path replaces whose value is
// an object of attributes, possibly with dotted ("name.givenName") or
// extension-URN keys; Entra removes members with a value array.

// maxPatchOps bounds one request; Entra batches group members by 1000 at
// most (in ops or values).
const maxPatchOps = 1000

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
	// hasOps: the body names Operations, as an array (perhaps empty).
	hasOps bool
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
	// null: the operation named a value, and it was JSON null.
	null bool
}

// UnmarshalJSON accepts op/path/value and Operations in any case.
func (r *patchRequest) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := unmarshalNumber(b, &raw); err != nil {
		return err
	}
	for k, v := range raw {
		switch strings.ToLower(k) {
		case "schemas":
			if err := json.Unmarshal(v, &r.Schemas); err != nil {
				return badSyntax("schemas must be an array of strings")
			}
		case "operations":
			var ops []map[string]json.RawMessage
			if err := json.Unmarshal(v, &ops); err != nil {
				return badSyntax("Operations must be an array of objects")
			}
			r.hasOps = ops != nil
			for i, o := range ops {
				var op patchOp
				for k, v := range o {
					switch strings.ToLower(k) {
					case "op":
						if json.Unmarshal(v, &op.Op) != nil {
							return badSyntax("Operations[%d].op must be a string", i)
						}
					case "path":
						if json.Unmarshal(v, &op.Path) != nil {
							return badSyntax("Operations[%d].path must be a string", i)
						}
					case "value":
						if err := unmarshalNumber(v, &op.Value); err != nil {
							return badSyntax("Operations[%d].value: %v", i, err)
						}
						op.null = op.Value == nil
					}
				}
				r.Operations = append(r.Operations, op)
			}
		}
	}
	return nil
}

func unmarshalNumber(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	return dec.Decode(v)
}

// validate normalises ops and paths before anything is applied, so that a
// bad op late in the list changes nothing.
func (r *patchRequest) validate() error {
	if !r.hasOps {
		return badValue("Operations is required")
	}
	// An empty list is one or more operations short of RFC 7644 §3.5.2,
	// but Microsoft's SCIM Validator sends it and counts a refusal as a
	// failure: it is answered as a PATCH that changed nothing.
	if len(r.Operations) > maxPatchOps {
		return badValue("at most %d operations per request", maxPatchOps)
	}
	for i := range r.Operations {
		op := &r.Operations[i]
		op.Op = strings.ToLower(strings.TrimSpace(op.Op))
		op.Path = strings.TrimSpace(op.Path)
		switch op.Op {
		case "add", "replace":
			// A value of null at a path unassigns what the path names
			// (RFC 7643 §2.5), as a null inside a no-path value does:
			// scripts and some IdPs clear an attribute so rather than
			// with remove, and were refused with 400, which stopped
			// their sync of the user.
			if op.null && op.Path != "" {
				op.Op = "remove"
				break
			}
			if op.Value == nil {
				return badValue("Operations[%d]: %s needs a value", i, op.Op)
			}
			if op.Path == "" {
				if _, ok := op.Value.(map[string]any); !ok {
					return badValue("Operations[%d]: %s without a path needs an object value", i, op.Op)
				}
			}
		case "remove":
			if op.Path == "" {
				return newError(http.StatusBadRequest, typeNoTarget, "Operations[%d]: remove needs a path", i)
			}
		default:
			return badValue("Operations[%d]: op must be add, replace or remove, not %q", i, op.Op)
		}
		v, err := canonicalize(op.Value)
		if err != nil {
			return err
		}
		op.Value = v
	}
	return nil
}

// unqualify reads an operation whose path is the core schema's URN alone,
// which names the whole resource, as one without a path, and the
// attributes a no-path value wraps in an object named by that URN as its
// own. Otherwise {"urn:…:core:2.0:User": {"active": false}} was kept as an
// extension of that name and the user stayed active. (Keys named by their
// schema URN are paths, which applyOne resolves.)
func (op *patchOp) unqualify(i int, core string) error {
	if strings.EqualFold(op.Path, core) {
		if op.Op == "remove" {
			return newError(http.StatusBadRequest, typeNoTarget, "Operations[%d]: remove needs the path of an attribute, not of the resource", i)
		}
		if !isObject(op.Value) {
			return badValue("Operations[%d]: %s with the path %s needs an object value", i, op.Op, core)
		}
		op.Path = ""
	}
	if op.Path != "" {
		return nil
	}
	if err := flattenCore(op.Value.(map[string]any), core); err != nil {
		if e, ok := err.(*Error); ok {
			e.Detail = fmt.Sprintf("Operations[%d]: %s", i, e.Detail)
		}
		return err
	}
	return nil
}

// target is one resolved PATCH path.
type target struct {
	ext    string // extension URN holding the attribute, "" for the core schema
	attr   string // canonical attribute name
	sub    string // canonical sub-attribute name, or ""
	filter Expr
}

func parseTarget(path string, coreSchema string) (target, error) {
	// A key that is an extension URN alone targets the extension object.
	if strings.EqualFold(path, SchemaEnterpriseUser) {
		return target{attr: SchemaEnterpriseUser}, nil
	}
	p, f, err := ParsePath(path)
	if err != nil {
		return target{}, newError(http.StatusBadRequest, typeInvalidPath, "path %q: %v", path, strings.TrimPrefix(err.Error(), "invalid filter: "))
	}
	t := target{attr: canonName(p.Attr), sub: canonName(p.Sub), filter: f}
	switch {
	case p.URI == "", strings.EqualFold(p.URI, coreSchema):
	case strings.EqualFold(p.URI, SchemaEnterpriseUser):
		t.ext = SchemaEnterpriseUser
	default:
		t.ext = p.URI // found ignoring case (container), created as sent
	}
	if t.ext == "" {
		switch strings.ToLower(t.attr) {
		case "id", "meta", "schemas", "groups":
			return target{}, newError(http.StatusBadRequest, typeMutability, "%s cannot be changed", t.attr)
		}
	}
	return t, nil
}

func canonName(s string) string {
	if c, ok := canonical[strings.ToLower(s)]; ok {
		return c
	}
	return s
}

// applyPatch applies ops to d in order.
func applyPatch(d doc, ops []patchOp, coreSchema string) error {
	for i, op := range ops {
		if err := applyOne(d, op, coreSchema); err != nil {
			if e, ok := err.(*Error); ok {
				e.Detail = fmt.Sprintf("Operations[%d]: %s", i, e.Detail)
			}
			return err
		}
	}
	return nil
}

func applyOne(d doc, op patchOp, coreSchema string) error {
	if op.Path != "" {
		t, err := parseTarget(op.Path, coreSchema)
		if err != nil {
			return err
		}
		return t.apply(d, op.Op, op.Value)
	}
	// No path: each key of the object is an attribute (or a dotted path,
	// or an extension URN whose object holds attributes).
	for k, v := range op.Value.(map[string]any) {
		switch strings.ToLower(k) {
		case "id", "meta", "schemas":
			continue // Entra ID echoes the id in no-path replaces: ignored, as readOnly input is
		}
		if isExtensionKey(k, v) {
			ext := k
			if strings.EqualFold(k, SchemaEnterpriseUser) {
				ext = SchemaEnterpriseUser
			}
			m, ok := v.(map[string]any)
			if !ok {
				return badValue("%s must be an object", k)
			}
			for ak, av := range m {
				t := target{ext: ext, attr: canonName(ak)}
				if err := t.apply(d, op.Op, av); err != nil {
					return err
				}
			}
			continue
		}
		t, err := parseTarget(k, coreSchema)
		if err != nil {
			return err
		}
		if err := t.apply(d, op.Op, v); err != nil {
			return err
		}
	}
	return nil
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

// isExtensionKey reports whether k, a key of a no-path PATCH value, names
// an extension whose object holds attributes, rather than one attribute
// qualified by its schema URN (RFC 7644 §3.10), such as
// urn:…:enterprise:2.0:User:manager, which is a path even when its value is
// an object.
func isExtensionKey(k string, v any) bool {
	lk := strings.ToLower(k)
	if lk == strings.ToLower(SchemaEnterpriseUser) {
		return true
	}
	if !strings.HasPrefix(lk, "urn:") || !isObject(v) {
		return false
	}
	for _, known := range []string{SchemaUser, SchemaGroup, SchemaEnterpriseUser} {
		if strings.HasPrefix(lk, strings.ToLower(known)+":") {
			return false
		}
	}
	// Another extension: its URN alone, unless its last part reads as a
	// dotted attribute path.
	return !strings.Contains(k[strings.LastIndexByte(k, ':')+1:], ".")
}

// container returns the object holding t.attr, creating an extension
// object when create is set.
func (t target) container(d doc, create bool) map[string]any {
	if t.ext == "" {
		return d
	}
	if k, v, ok := getFold(d, t.ext); ok {
		if m, isObj := v.(map[string]any); isObj {
			return m
		}
		if !create {
			return nil
		}
		delete(d, k)
	}
	if !create {
		return nil
	}
	m := map[string]any{}
	d[t.ext] = m
	return m
}

func (t target) apply(d doc, op string, value any) error {
	if strings.EqualFold(t.attr, "password") && t.ext == "" {
		return nil // write-only: accepted, never stored
	}
	c := t.container(d, op != "remove")
	if c == nil {
		return nil // removing from an absent extension
	}
	key, cur, exists := getFold(c, t.attr)
	if !exists {
		key = t.attr
	}
	// One value of a multi-valued attribute sent bare ({"op": "replace",
	// "path": "emails", "value": {"value": …}}) is a list of one: add
	// appended it to a list already there, but replace, or add to a user
	// without the attribute, was refused as "must be an array".
	if m, ok := value.(map[string]any); ok && op != "remove" && t.ext == "" && t.filter == nil && t.sub == "" && multiValued(t.attr) {
		value = []any{m}
	}
	was := primaries(cur)
	if err := t.applyAt(c, key, cur, exists, op, value); err != nil {
		return err
	}
	if op != "remove" {
		onePrimary(c[key], was)
	}
	return nil
}

// multiValued reports whether attr is a multi-valued attribute of the core
// User schema.
func multiValued(attr string) bool {
	for _, name := range userMultiValued {
		if strings.EqualFold(attr, name) {
			return true
		}
	}
	return false
}

// primaries are the elements of a multi-valued attribute whose primary is
// true. Held, not just their addresses, so that none is freed and its
// address reused while the operation runs.
func primaries(v any) []map[string]any {
	list, _ := v.([]any)
	var out []map[string]any
	for _, el := range list {
		if m, ok := el.(map[string]any); ok && isPrimary(m) {
			out = append(out, m)
		}
	}
	return out
}

func isPrimary(m map[string]any) bool {
	_, p, _ := getFold(m, "primary")
	b, ok := boolValue(p)
	return ok && b
}

func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

// onePrimary keeps primary true on one value at most (RFC 7643 §2.4): when
// an operation made a value of v primary, the values that were primary
// before it (was) no longer are, as RFC 7644 §3.5.2 has the server do.
// Otherwise Entra ID adding a primary work address beside a primary home
// one would leave two, and the user's email would stay the old one.
func onePrimary(v any, was []map[string]any) {
	list, _ := v.([]any)
	made := false
	for _, el := range list {
		if m, ok := el.(map[string]any); ok && isPrimary(m) && !slices.ContainsFunc(was, func(w map[string]any) bool { return sameMap(w, m) }) {
			made = true
		}
	}
	if !made {
		return
	}
	for _, m := range was {
		if k, _, ok := getFold(m, "primary"); ok {
			m[k] = false
		}
	}
}

// applyAt applies op to c[key], whose value is cur (exists: present).
func (t target) applyAt(c map[string]any, key string, cur any, exists bool, op string, value any) error {
	if t.filter != nil {
		return t.applyFiltered(c, key, cur, op, value)
	}
	if t.sub != "" {
		return applySub(c, key, cur, exists, t.sub, op, value)
	}
	switch op {
	case "remove":
		if value != nil {
			if list, ok := cur.([]any); ok {
				c[key] = removeValues(list, value)
				if len(c[key].([]any)) == 0 {
					delete(c, key)
				}
				return nil
			}
		}
		delete(c, key)
	case "add":
		switch cv := cur.(type) {
		case []any:
			c[key] = appendValues(cv, value)
		case map[string]any:
			if nv, ok := value.(map[string]any); ok {
				mergeInto(cv, nv)
			} else {
				c[key] = value
			}
		default:
			c[key] = value
		}
	case "replace":
		if cv, ok := cur.(map[string]any); ok {
			if nv, ok := value.(map[string]any); ok {
				mergeInto(cv, nv)
				return nil
			}
		}
		c[key] = value
	}
	return nil
}

// applySub sets or removes attr.sub: on the object, or on every element
// when attr is multi-valued.
func applySub(c map[string]any, key string, cur any, exists bool, sub, op string, value any) error {
	set := func(m map[string]any) {
		k, _, ok := getFold(m, sub)
		if !ok {
			k = sub
		}
		if op == "remove" {
			delete(m, k)
		} else {
			m[k] = value
		}
	}
	switch cv := cur.(type) {
	case map[string]any:
		set(cv)
	case []any:
		for _, el := range cv {
			if m, ok := el.(map[string]any); ok {
				set(m)
			}
		}
	default:
		if op == "remove" {
			return nil
		}
		if exists && cur != nil {
			return badValue("%s is not a complex attribute", key)
		}
		m := map[string]any{}
		set(m)
		c[key] = m
	}
	return nil
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func (t target) applyFiltered(c map[string]any, key string, cur any, op string, value any) error {
	var list []any
	if cur != nil {
		l, ok := cur.([]any)
		if !ok {
			return newError(http.StatusBadRequest, typeInvalidPath, "%s is not multi-valued", key)
		}
		list = l
	}
	var matched []int
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && matches(t.filter, m) {
			matched = append(matched, i)
		}
	}
	if op == "remove" {
		if t.sub != "" {
			for _, i := range matched {
				m := list[i].(map[string]any)
				if k, _, ok := getFold(m, t.sub); ok {
					delete(m, k)
				}
			}
			return nil
		}
		out := list[:0:0]
		for i, el := range list {
			if !containsInt(matched, i) {
				out = append(out, el)
			}
		}
		if len(out) == 0 {
			delete(c, key)
		} else {
			c[key] = out
		}
		return nil
	}
	if len(matched) == 0 {
		// emails[type eq "work"].value on a user with no work email: Entra
		// means "set it", so the element the filter describes is created.
		el, ok := elementFromFilter(t.filter)
		if !ok {
			return newError(http.StatusBadRequest, typeNoTarget, "no value of %s matches %s", key, t.filter)
		}
		list = append(list, el)
		matched = []int{len(list) - 1}
		c[key] = list
	}
	for _, i := range matched {
		m := list[i].(map[string]any)
		switch {
		case t.sub != "":
			k, _, ok := getFold(m, t.sub)
			if !ok {
				k = t.sub
			}
			m[k] = value
		case op == "add":
			nv, ok := value.(map[string]any)
			if !ok {
				return badValue("a value for %s[…] must be an object", key)
			}
			mergeInto(m, nv)
		default: // replace the matched values
			nv, ok := value.(map[string]any)
			if !ok {
				return badValue("a value for %s[…] must be an object", key)
			}
			list[i] = nv
		}
	}
	return nil
}

// elementFromFilter builds {a: v, …} from a conjunction of "a eq v".
func elementFromFilter(f Expr) (map[string]any, bool) {
	switch f := f.(type) {
	case Compare:
		if f.Op != "eq" || f.Path.Sub != "" || f.Path.URI != "" {
			return nil, false
		}
		v := f.Value
		if b, ok := boolValue(v); ok && strings.EqualFold(f.Path.Attr, "primary") {
			v = b
		}
		return map[string]any{canonName(f.Path.Attr): v}, true
	case Logical:
		if f.Op != "and" {
			return nil, false
		}
		l, ok1 := elementFromFilter(f.Left)
		r, ok2 := elementFromFilter(f.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		mergeInto(l, r)
		return l, true
	}
	return nil, false
}

// matches evaluates a value filter against one element of a multi-valued
// attribute. String comparisons ignore case (caseExact is false for the
// sub-attributes clients filter on: type, value, display).
func matches(f Expr, el map[string]any) bool {
	switch f := f.(type) {
	case Logical:
		if f.Op == "and" {
			return matches(f.Left, el) && matches(f.Right, el)
		}
		return matches(f.Left, el) || matches(f.Right, el)
	case Not:
		return !matches(f.X, el)
	case Compare:
		_, v, ok := getFold(el, f.Path.Attr)
		if f.Op == "pr" {
			s, isStr := v.(string)
			return ok && v != nil && (!isStr || s != "")
		}
		eq := func() bool {
			if b, isBool := boolValue(f.Value); isBool {
				vb, ok := boolValue(v)
				return ok && vb == b
			}
			if f.Value == nil {
				return v == nil
			}
			a, ok1 := str(v)
			b, ok2 := str(f.Value)
			return ok1 && ok2 && strings.EqualFold(a, b)
		}
		a, _ := str(v)
		b, _ := str(f.Value)
		a, b = strings.ToLower(a), strings.ToLower(b)
		switch f.Op {
		case "eq":
			return ok && eq()
		case "ne":
			return !ok || !eq()
		case "co":
			return ok && strings.Contains(a, b)
		case "sw":
			return ok && strings.HasPrefix(a, b)
		case "ew":
			return ok && strings.HasSuffix(a, b)
		case "gt":
			return ok && a > b
		case "ge":
			return ok && a >= b
		case "lt":
			return ok && a < b
		case "le":
			return ok && a <= b
		}
	}
	return false
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if dk, _, ok := getFold(dst, k); ok {
			delete(dst, dk)
		}
		dst[k] = v
	}
}

// appendValues adds values to a multi-valued attribute, skipping ones
// already present (same "value", or equal).
func appendValues(list []any, value any) []any {
	add, ok := value.([]any)
	if !ok {
		add = []any{value}
	}
	for _, v := range add {
		if !containsValue(list, v) {
			list = append(list, v)
		}
	}
	return list
}

func removeValues(list []any, value any) []any {
	rm, ok := value.([]any)
	if !ok {
		rm = []any{value}
	}
	out := list[:0:0]
	for _, el := range list {
		if !containsValue(rm, el) {
			out = append(out, el)
		}
	}
	return out
}

func containsValue(list []any, v any) bool {
	vm, vIsMap := v.(map[string]any)
	for _, el := range list {
		if em, ok := el.(map[string]any); ok && vIsMap {
			_, a, ok1 := getFold(em, "value")
			_, b, ok2 := getFold(vm, "value")
			if ok1 && ok2 && reflect.DeepEqual(a, b) {
				return true
			}
		}
		if reflect.DeepEqual(el, v) {
			return true
		}
	}
	return false
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}
