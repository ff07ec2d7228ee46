package scim

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idbroker/idbroker/store"
)

// A resource is kept as the JSON document the client sent (store.User.
// Attributes / store.Group.Attributes), with the attribute names of the
// schemas in their canonical case, so that GET returns what was written.
// The columns the store indexes (userName, emails, active…) are derived
// from it on every write. Server-owned attributes (id, meta, groups) and
// write-only ones (password) are never stored.
type doc = map[string]any

// canonical names of known attributes, by lower-cased name. Sub-attributes
// share the table: the names do not collide.
var canonical = func() map[string]string {
	names := []string{
		"schemas", "id", "externalId", "meta", "userName", "name", "displayName", "nickName", "profileUrl",
		"title", "userType", "preferredLanguage", "locale", "timezone", "active", "password", "emails",
		"phoneNumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles", "x509Certificates",
		"formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix",
		"value", "display", "type", "primary", "$ref", "streetAddress", "locality", "region", "postalCode", "country",
		"employeeNumber", "costCenter", "organization", "division", "department", "manager", "members",
		SchemaEnterpriseUser,
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}()

// serverOwned attributes are ignored on input (RFC 7643 §3.1 mutability
// readOnly) and writeOnly ones are dropped.
var serverOwned = map[string]bool{"id": true, "meta": true, "groups": true, "password": true}

// canonicalize renames known attributes to their canonical case,
// recursively, and refuses an attribute given twice under two spellings.
// An extension URN the server does not know keeps the case it was sent in
// (a client reads its extension back under the URN it wrote), and is
// compared ignoring case (getFold), as attribute names are.
func canonicalize(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		urns := map[string]bool{}
		for k, x := range v {
			name := k
			if c, ok := canonical[strings.ToLower(k)]; ok {
				name = c
			} else if lk := strings.ToLower(k); strings.HasPrefix(lk, "urn:") {
				if urns[lk] {
					return nil, badSyntax("attribute %q is given twice", k)
				}
				urns[lk] = true
			}
			if _, dup := out[name]; dup {
				return nil, badSyntax("attribute %q is given twice", name)
			}
			cx, err := canonicalize(x)
			if err != nil {
				return nil, err
			}
			out[name] = cx
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			cx, err := canonicalize(x)
			if err != nil {
				return nil, err
			}
			out[i] = cx
		}
		return out, nil
	}
	return v, nil
}

// inputDoc canonicalizes a POST/PUT body of a resource whose core schema
// is core, puts attributes named by their full URN in their place, and
// drops what the server owns.
func inputDoc(body doc, core string) (doc, error) {
	c, err := canonicalize(body)
	if err != nil {
		return nil, err
	}
	d := c.(doc)
	if err := unqualify(d, core); err != nil {
		return nil, err
	}
	for k := range serverOwned {
		delete(d, k)
	}
	return d, nil
}

// unqualify moves a top-level key that names an attribute by its schema
// URN (RFC 7644 §3.10: urn:…:enterprise:2.0:User:department, urn:…:core:
// 2.0:User:name.givenName) to where the schema puts it: in the extension's
// object, or among the core attributes. Left as it was, it read as an
// extension of its own, which schemas then named. The extensions are the
// enterprise one for a User and those the body's schemas list.
func unqualify(d doc, core string) error {
	if err := flattenCore(d, core); err != nil {
		return err
	}
	type prefix struct{ urn, into string }
	prefixes := []prefix{{core, ""}}
	if core == SchemaUser {
		prefixes = append(prefixes, prefix{SchemaEnterpriseUser, SchemaEnterpriseUser})
	}
	listed, _ := d["schemas"].([]any)
	for _, x := range listed {
		if urn, ok := x.(string); ok && strings.HasPrefix(strings.ToLower(urn), "urn:") &&
			!slices.ContainsFunc(prefixes, func(p prefix) bool { return strings.EqualFold(p.urn, urn) }) {
			prefixes = append(prefixes, prefix{urn, urn})
		}
	}
	// The longest first: urn:a:User:x belongs to urn:a:User, not to urn:a.
	slices.SortStableFunc(prefixes, func(a, b prefix) int { return len(b.urn) - len(a.urn) })
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if slices.ContainsFunc(prefixes, func(p prefix) bool { return strings.EqualFold(p.urn, k) }) {
			continue // an extension's own object, not an attribute of a shorter URN
		}
		v := d[k]
		for _, p := range prefixes {
			n := len(p.urn) + 1
			if len(k) <= n || !strings.EqualFold(k[:n], p.urn+":") {
				continue
			}
			rest := k[n:]
			delete(d, k)
			m := d
			if p.into != "" {
				into, cur, _ := getFold(d, p.into)
				if into == "" {
					into = p.into
				}
				ext, _ := cur.(map[string]any)
				if ext == nil {
					if cur != nil {
						return badSyntax("%s must be an object", p.into)
					}
					ext = map[string]any{}
					d[into] = ext
				}
				m = ext
			}
			parts := strings.Split(rest, ".")
			for _, part := range parts[:len(parts)-1] {
				sub, _ := m[canonName(part)].(map[string]any)
				if sub == nil {
					if m[canonName(part)] != nil {
						return badSyntax("attribute %q is given twice", k)
					}
					sub = map[string]any{}
					m[canonName(part)] = sub
				}
				m = sub
			}
			last := canonName(parts[len(parts)-1])
			if _, dup := m[last]; dup {
				return badSyntax("attribute %q is given twice", k)
			}
			m[last] = v
			break
		}
	}
	return nil
}

// flattenCore moves the attributes of a key that is the core schema's URN
// alone ("urn:…:core:2.0:User": {"active": false}), as some clients wrap
// them, among the core attributes where they belong. Left as it was, it
// was kept as an extension of its own: the user answered 200 and stayed
// active.
func flattenCore(d doc, core string) error {
	var keys []string
	for k := range d {
		if strings.EqualFold(k, core) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		v := d[k]
		inner, ok := v.(map[string]any)
		if !ok && v != nil {
			return badValue("%s must be an object of the resource's attributes", core)
		}
		delete(d, k)
		for ik, iv := range inner {
			// The same value both wrapped and not says one thing.
			if cur, dup := d[ik]; dup && !reflect.DeepEqual(cur, iv) {
				return badSyntax("attribute %q is given twice", ik)
			}
			d[ik] = iv
		}
	}
	return nil
}

// getFold finds key in m case-insensitively (unknown attributes keep the
// case they were sent in).
func getFold(m doc, key string) (string, any, bool) {
	if v, ok := m[key]; ok {
		return key, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return k, v, true
		}
	}
	return "", nil, false
}

func str(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case nil:
		return "", true
	}
	return "", false
}

// dropUnassigned removes from d what RFC 7643 §2.5 calls unassigned: an
// attribute that is null or an empty array, and a complex value (an
// extension's object included) left with no sub-attribute, at any depth.
// Stored, they came back as "emails": null or "phoneNumbers": [] (and an
// extension set to null was still named in schemas), and a re-sent
// resource that spelt an absent attribute as null counted as a change.
func dropUnassigned(d doc) {
	for k, v := range d {
		if v, ok := assigned(v); ok {
			d[k] = v
		} else {
			delete(d, k)
		}
	}
}

// assigned is v without its unassigned parts, and whether anything is left.
func assigned(v any) (any, bool) {
	switch v := v.(type) {
	case nil:
		return nil, false
	case map[string]any:
		dropUnassigned(v)
		return v, len(v) > 0
	case []any:
		out := v[:0]
		for _, el := range v {
			if el, ok := assigned(el); ok {
				out = append(out, el)
			}
		}
		return out, len(out) > 0
	}
	return v, true
}

// userFields derives the store columns of a user from its document, after
// dropping what is unassigned from it.
func userFields(d doc, u *store.User) error {
	dropUnassigned(d)
	if err := checkUserTypes(d); err != nil {
		return err
	}
	var err error
	field := func(name string) string {
		s, _ := d[name].(string) // checkUserTypes: a string or absent
		return strings.TrimSpace(s)
	}
	u.UserName = field("userName")
	u.ExternalID = field("externalId")
	u.DisplayName = field("displayName")
	if err != nil {
		return err
	}
	if u.UserName == "" {
		return badValue("userName is required")
	}
	if len(u.UserName) > 256 || len(u.ExternalID) > 256 {
		return badValue("userName and externalId are at most 256 bytes")
	}
	u.GivenName, u.FamilyName = "", ""
	if n, ok := d["name"]; ok && n != nil {
		nm, isObj := n.(map[string]any)
		if !isObj {
			return badValue("name must be an object")
		}
		var e1, e2 bool
		u.GivenName, e1 = str(nm["givenName"])
		u.FamilyName, e2 = str(nm["familyName"])
		if !e1 || !e2 {
			return badValue("name.givenName and name.familyName must be strings")
		}
	}
	email, err := primaryEmail(d["emails"])
	if err != nil {
		return err
	}
	if email == "" {
		// No emails[]: a userName that is an address is the person's
		// email (Okta's and Entra's userName usually is). Without it the
		// directory's user and the one who signs in with that address
		// would be two users, and deprovisioning the first would leave
		// the second signing in.
		if _, ok := store.EmailDomain(u.UserName); ok && !strings.ContainsAny(u.UserName, " \t\r\n") {
			email = u.UserName
		}
	}
	// Stored with its domain in the one form SSO profiles use too
	// (store.NormalizeEmail), so that the same person signing in is found;
	// the resource keeps the address as the client wrote it.
	u.Email = store.NormalizeEmail(email)
	u.Active = true
	if v, ok := d["active"]; ok && v != nil {
		b, isBool := boolValue(v)
		if !isBool {
			return badValue("active must be a boolean")
		}
		u.Active = b
	}
	// Stored always, and as a boolean (Entra's "False" as false): a user
	// created without it and then re-sent by PUT, which keeps the stored
	// value, must compare equal to what is stored.
	d["active"] = u.Active
	normalizeManager(d)
	return nil
}

// normalizeManager stores the enterprise extension's manager in its schema
// shape, {"value": id}: Entra ID sends the bare id as a string, and readers
// of the resource should not have to handle both.
func normalizeManager(d doc) {
	ext, ok := d[SchemaEnterpriseUser].(map[string]any)
	if !ok {
		return
	}
	if m, ok := ext["manager"].(string); ok {
		if m = strings.TrimSpace(m); m == "" {
			delete(ext, "manager")
		} else {
			ext["manager"] = map[string]any{"value": m}
		}
	}
}

// primaryEmail picks the address the store indexes and tokens carry: the
// primary one, else the work one, else the first.
func primaryEmail(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	list, ok := v.([]any)
	if !ok {
		return "", badValue("emails must be an array")
	}
	pick := ""
	rank := 0
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return "", badValue("emails[%d] must be an object", i)
		}
		val, ok := str(m["value"])
		if !ok {
			return "", badValue("emails[%d].value must be a string", i)
		}
		if p, has := m["primary"]; has {
			b, ok := boolValue(p)
			if !ok {
				return "", badValue("emails[%d].primary must be a boolean", i)
			}
			m["primary"] = b
		}
		r := 1
		if t, _ := str(m["type"]); strings.EqualFold(t, "work") {
			r = 2
		}
		if m["primary"] == true {
			r = 3
		}
		if r > rank && strings.TrimSpace(val) != "" {
			pick, rank = strings.TrimSpace(val), r
		}
	}
	if len(pick) > 320 {
		return "", badValue("email addresses are at most 320 bytes")
	}
	return pick, nil
}

// groupFields derives a group's columns, after dropping what is
// unassigned from its document; members are handled apart.
func groupFields(d doc, g *store.Group) error {
	dropUnassigned(d)
	name, ok := d["displayName"].(string)
	ext, ok2 := d["externalId"].(string)
	if (!ok && d["displayName"] != nil) || (!ok2 && d["externalId"] != nil) {
		return badValue("displayName and externalId must be strings")
	}
	g.DisplayName, g.ExternalID = strings.TrimSpace(name), strings.TrimSpace(ext)
	if g.DisplayName == "" {
		return badValue("displayName is required")
	}
	if len(g.DisplayName) > 256 || len(g.ExternalID) > 256 {
		return badValue("displayName and externalId are at most 256 bytes")
	}
	return nil
}

// memberIDs reads [{"value": "usr_…"}, …].
func memberIDs(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		// Entra ID sometimes sends one member as an object.
		if m, isObj := v.(map[string]any); isObj {
			list = []any{m}
		} else {
			return nil, badValue("members must be an array of {\"value\": \"<user id>\"}")
		}
	}
	out := make([]string, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, badValue("members[%d] must be an object", i)
		}
		_, raw, _ := getFold(m, "value")
		id, ok := raw.(string)
		if !ok || id == "" {
			return nil, badValue("members[%d].value must be a user id", i)
		}
		if !store.HasPrefix(id, store.PrefixUser) {
			return nil, badValue("members[%d].value %q is not a user of this directory", i, id)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func encodeDoc(d doc) (json.RawMessage, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode resource: %w", err)
	}
	return b, nil
}

func decodeDoc(raw json.RawMessage) (doc, error) {
	d := doc{}
	if len(raw) == 0 {
		return d, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("decode stored resource: %w", err)
	}
	if d == nil {
		d = doc{}
	}
	return d, nil
}

// sameDoc reports whether two stored documents say the same thing. The
// bytes are not compared: PostgreSQL's jsonb answers its own spelling
// (key order, spaces) of what was written.
func sameDoc(a, b json.RawMessage) bool {
	da, err1 := decodeDoc(a)
	db, err2 := decodeDoc(b)
	return err1 == nil && err2 == nil && reflect.DeepEqual(da, db)
}

// unchangedUser: writing u over old would store nothing new. Entra and
// Okta re-send resources that did not change; such a write must not move
// the version or announce an update.
func unchangedUser(old, u store.User) bool {
	return old.UserName == u.UserName && old.ExternalID == u.ExternalID && old.Email == u.Email &&
		old.EmailVerified == u.EmailVerified && old.GivenName == u.GivenName && old.FamilyName == u.FamilyName &&
		old.DisplayName == u.DisplayName && old.Active == u.Active && sameDoc(old.Attributes, u.Attributes)
}

// unchangedGroup is unchangedUser for a group's own fields (members are
// rows apart, see groups.go).
func unchangedGroup(old, g store.Group) bool {
	return old.DisplayName == g.DisplayName && old.ExternalID == g.ExternalID && sameDoc(old.Attributes, g.Attributes)
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads If-Match: 0 when absent or "*", else the version it names.
func ifMatch(h string) (precondition, error) {
	var p precondition
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return nil, nil
		}
		if t == "" {
			continue
		}
		n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(t, "W/"), `"`), 10, 64)
		if err != nil || n <= 0 {
			return nil, newError(412, "", "If-Match must be an ETag this server issued")
		}
		p = append(p, n)
	}
	return p, nil
}

// precondition is what an If-Match header asks: the versions it names,
// any of which will do (RFC 9110 §13.1.1); none without the header or
// with "*".
type precondition []int64

func (p precondition) none() bool { return len(p) == 0 }

// holds reports whether the resource at version current meets p.
func (p precondition) holds(current int64) bool {
	if p.none() {
		return true
	}
	for _, v := range p {
		if v == current {
			return true
		}
	}
	return false
}

// version is the version to hand a versioned write of a resource read at
// current: 0 (any) without If-Match, current when If-Match names it, and
// otherwise one it names, which the write then refuses (412).
func (p precondition) version(current int64) int64 {
	if p.none() {
		return 0
	}
	if p.holds(current) {
		return current
	}
	return p[0]
}

// noneMatch reports whether an If-None-Match header names version (or is
// "*"), comparing entity tags weakly.
func noneMatch(h string, version int64) bool {
	if h = strings.TrimSpace(h); h == "" {
		return false
	}
	want := strconv.FormatInt(version, 10)
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.Trim(strings.TrimPrefix(t, "W/"), `"`) == want {
			return true
		}
	}
	return false
}

func meta(resourceType, location string, created, modified time.Time, version int64) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      created.UTC().Format(time.RFC3339Nano),
		"lastModified": modified.UTC().Format(time.RFC3339Nano),
		"version":      etag(version),
		"location":     location,
	}
}

// userResource is the SCIM representation of u: the stored document plus
// what the server owns.
func (s *Server) userResource(dir string, u store.User) (doc, error) {
	d, err := decodeDoc(u.Attributes)
	if err != nil {
		return nil, err
	}
	d["schemas"] = withExtensions(d, SchemaUser)
	d["id"] = u.ID
	d["userName"] = u.UserName
	d["active"] = u.Active
	if u.ExternalID != "" {
		d["externalId"] = u.ExternalID
	}
	d["meta"] = meta("User", s.BaseURL(dir)+"/Users/"+u.ID, u.CreatedAt, u.UpdatedAt, u.Version)
	return d, nil
}

func (s *Server) groupResource(dir string, g store.Group, members []string) (doc, error) {
	d, err := decodeDoc(g.Attributes)
	if err != nil {
		return nil, err
	}
	d["schemas"] = withExtensions(d, SchemaGroup)
	d["id"] = g.ID
	d["displayName"] = g.DisplayName
	if g.ExternalID != "" {
		d["externalId"] = g.ExternalID
	}
	if members != nil {
		list := make([]any, len(members))
		for i, m := range members {
			list[i] = map[string]any{"value": m, "$ref": s.BaseURL(dir) + "/Users/" + m, "type": "User"}
		}
		d["members"] = list
	}
	d["meta"] = meta("Group", s.BaseURL(dir)+"/Groups/"+g.ID, g.CreatedAt, g.UpdatedAt, g.Version)
	return d, nil
}

// project applies ?attributes= and ?excludedAttributes= (RFC 7644 §3.9):
// names in attribute notation, with or without their schema URN, down to
// sub-attributes (name.givenName, emails.value) and into extensions
// (urn:…:enterprise:2.0:User:department). id, schemas and meta are always
// returned (RFC 7643 §7 "always").
func project(d doc, attributes, excluded string) doc {
	switch {
	case attributes != "":
		keepOnly(d, selection(d, attributes), true)
	case excluded != "":
		drop(d, selection(d, excluded), true)
	}
	return d
}

// selected is a tree of lower-cased attribute names: a node that ends a
// name (all) selects the attribute whole, its children select parts.
type selected struct {
	all      bool
	children map[string]*selected
}

func (n *selected) child(name string) *selected {
	if n.children == nil {
		n.children = map[string]*selected{}
	}
	c, ok := n.children[name]
	if !ok {
		c = &selected{}
		n.children[name] = c
	}
	return c
}

// selection parses a comma-separated list of attribute names against d,
// whose top-level URN keys are its extensions.
func selection(d doc, list string) *selected {
	var exts []string
	for k := range d {
		if strings.HasPrefix(strings.ToLower(k), "urn:") {
			exts = append(exts, strings.ToLower(k))
		}
	}
	root := &selected{}
	for _, a := range strings.Split(list, ",") {
		a = strings.ToLower(strings.TrimSpace(a))
		var path []string
		if strings.HasPrefix(a, "urn:") {
			for _, ext := range exts {
				if a == ext {
					path = []string{ext}
				} else if strings.HasPrefix(a, ext+":") {
					path = append([]string{ext}, strings.Split(a[len(ext)+1:], ".")...)
				}
			}
			if path == nil {
				for _, core := range []string{SchemaUser, SchemaGroup} {
					if core = strings.ToLower(core); strings.HasPrefix(a, core+":") {
						path = strings.Split(a[len(core)+1:], ".")
					}
				}
			}
		} else if a != "" {
			path = strings.Split(a, ".")
		}
		n := root
		for _, p := range path {
			n = n.child(p)
		}
		if n != root {
			n.all = true
		}
	}
	return root
}

var alwaysReturned = map[string]bool{"id": true, "schemas": true, "meta": true}

// keepOnly removes from m what sel does not name; an object left empty by
// it goes too.
func keepOnly(m map[string]any, sel *selected, top bool) {
	for k, v := range m {
		lk := strings.ToLower(k)
		if top && alwaysReturned[lk] {
			continue
		}
		n := sel.children[lk]
		switch {
		case n == nil:
			delete(m, k)
		case n.all:
		default:
			if !inside(v, func(sub map[string]any) { keepOnly(sub, n, false) }) {
				delete(m, k) // a part asked of an attribute that has none
			} else if sub, ok := v.(map[string]any); ok && len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}

// drop removes from m what sel names.
func drop(m map[string]any, sel *selected, top bool) {
	for k, v := range m {
		lk := strings.ToLower(k)
		n := sel.children[lk]
		switch {
		case n == nil || (top && alwaysReturned[lk]):
		case n.all:
			delete(m, k)
		default:
			inside(v, func(sub map[string]any) { drop(sub, n, false) })
		}
	}
}

// inside applies f to v if it is an object, or to each object of v if it is
// an array (a multi-valued complex attribute), and reports whether v had
// parts to apply it to.
func inside(v any, f func(map[string]any)) bool {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		return true
	case []any:
		for _, el := range v {
			if m, ok := el.(map[string]any); ok {
				f(m)
			}
		}
		return true
	}
	return false
}

// withExtensions is the schemas attribute of stored document d: its core
// schema, then the URN of every extension it carries, in order (RFC 7643
// §3: "schemas" names the core and extension schemas the resource holds).
// An extension the server does not describe (a client's own URN) is kept
// as sent, so it is named too: a client reading the resource back must
// find every extension it wrote listed.
func withExtensions(d doc, core string) []any {
	var ext []string
	for k := range d {
		if len(k) > 4 && strings.EqualFold(k[:4], "urn:") && k != core {
			ext = append(ext, k)
		}
	}
	slices.SortFunc(ext, func(a, b string) int {
		// The enterprise extension first, as it always was.
		switch {
		case a == SchemaEnterpriseUser:
			return -1
		case b == SchemaEnterpriseUser:
			return 1
		}
		return strings.Compare(a, b)
	})
	out := make([]any, 0, 1+len(ext))
	out = append(out, core)
	for _, e := range ext {
		out = append(out, e)
	}
	return out
}
