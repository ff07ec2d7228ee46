package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/openapi"
)

// The API reference page renders the operator API's OpenAPI document
// (package openapi) on the server: no client-side renderer, no CDN, no
// script, so the console's strict CSP holds. It reads the document's
// conventions (operations grouped by tag, errors as components/responses,
// named schemas under components/schemas) rather than all of OpenAPI.

// apiRef is the page's model.
type apiRef struct {
	Title       string
	Version     string
	Description template.HTML
	JSONPath    string
	Tags        []refTag
	Errors      []refResponse
	Schemas     []refSchema
}

type refTag struct {
	Name, Anchor string
	Description  template.HTML
	Ops          []refOp
}

type refOp struct {
	ID, Method, Path, Summary string
	Description               template.HTML
	Public                    bool
	Params                    []refParam
	Body                      *refContent
	Responses                 []refResponse
}

type refParam struct {
	Name, In, Type, TypeLink, Example string
	Required                          bool
	Description                       template.HTML
}

type refContent struct {
	MediaType, Type, TypeLink string
	Examples                  []refExample
}

type refExample struct{ Name, JSON string }

type refResponse struct {
	Status, Name string
	Description  template.HTML
	Content      []refContent
}

type refSchema struct {
	Name, Anchor, Type string
	Description        template.HTML
	Fields             []refField
}

type refField struct {
	Name, Type, TypeLink string
	Required             bool
	Description          template.HTML
}

// apiReference builds the model once: the document is embedded and does
// not change while the process runs.
var apiReference = sync.OnceValues(func() (*apiRef, error) {
	d, err := openapi.Load()
	if err != nil {
		return nil, err
	}
	return buildAPIRef(d.JSON)
})

// apiPage answers GET /console/api. It needs no session (the document it
// renders is public), but shows the console's navigation to an operator
// who is signed in.
func (c *Console) apiPage(ec echo.Context) error {
	if s, err := c.session(ec); err == nil {
		ec.Set(sessionKey, s)
	}
	ref, err := apiReference()
	if err != nil {
		return err
	}
	return c.render(ec, http.StatusOK, "api.html", page{Title: "API reference", Nav: "api", D: ref})
}

var methodOrder = []string{"get", "post", "put", "patch", "delete", "head", "options", "trace"}

func buildAPIRef(b []byte) (*apiRef, error) {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("console: API reference: %w", err)
	}
	raw := &rawDoc{b: b, objects: map[string]map[string]json.RawMessage{}}
	info := obj(doc["info"])
	ref := &apiRef{Title: str(info["title"]), Version: str(info["version"]), Description: prose(str(info["description"])), JSONPath: openapi.Path}

	byTag := map[string]*refTag{}
	for _, t := range list(doc["tags"]) {
		tag := obj(t)
		name := str(tag["name"])
		ref.Tags = append(ref.Tags, refTag{Name: name, Anchor: "tag-" + anchor(name), Description: prose(str(tag["description"]))})
	}
	for i := range ref.Tags {
		byTag[ref.Tags[i].Name] = &ref.Tags[i]
	}
	paths := obj(doc["paths"])
	for _, p := range keysAt(raw, "/paths") {
		item := obj(paths[p])
		shared := list(item["parameters"])
		for _, m := range methodOrder {
			o, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			op := refOp{
				ID: str(o["operationId"]), Method: strings.ToUpper(m), Path: "/api/v1" + p,
				Summary: str(o["summary"]), Description: prose(str(o["description"])),
			}
			if sec, ok := o["security"].([]any); ok && len(sec) == 0 {
				op.Public = true
			}
			for _, prm := range append(slices.Clone(shared), list(o["parameters"])...) {
				op.Params = append(op.Params, buildParam(doc, prm))
			}
			opPtr := "/paths/" + escapePtr(p) + "/" + m
			if rb, ok := o["requestBody"]; ok {
				rbPtr := opPtr + "/requestBody"
				if r := str(obj(rb)["$ref"]); r != "" {
					rbPtr = strings.TrimPrefix(r, "#")
				}
				for _, c := range buildContent(doc, raw, rbPtr+"/content") {
					op.Body = &c
					break
				}
			}
			op.Responses = buildResponses(doc, raw, opPtr+"/responses")
			tag := "Other"
			if tags := list(o["tags"]); len(tags) > 0 {
				tag = str(tags[0])
			}
			t, ok := byTag[tag]
			if !ok {
				ref.Tags = append(ref.Tags, refTag{Name: tag, Anchor: "tag-" + anchor(tag)})
				// Appending may move the slice: index afresh.
				byTag = map[string]*refTag{}
				for i := range ref.Tags {
					byTag[ref.Tags[i].Name] = &ref.Tags[i]
				}
				t = byTag[tag]
			}
			t.Ops = append(t.Ops, op)
		}
	}
	components := obj(doc["components"])
	responses := obj(components["responses"])
	for _, name := range sortedKeys(responses) {
		r := obj(responses[name])
		ref.Errors = append(ref.Errors, refResponse{Name: name, Description: prose(str(r["description"])),
			Content: buildContent(doc, raw, "/components/responses/"+escapePtr(name)+"/content")})
	}
	schemas := obj(components["schemas"])
	for _, name := range sortedKeys(schemas) {
		ref.Schemas = append(ref.Schemas, buildSchema(raw, name, obj(schemas[name])))
	}
	return ref, nil
}

func buildParam(doc map[string]any, p any) refParam {
	m := obj(deref(doc, p))
	typ, link := typeOf(obj(m["schema"]))
	out := refParam{Name: str(m["name"]), In: str(m["in"]), Type: typ, TypeLink: link, Required: m["required"] == true,
		Description: prose(str(m["description"]))}
	if ex, ok := m["example"]; ok {
		out.Example = scalarOrJSON(ex)
	}
	return out
}

// buildContent reads the content map at ptr; examples are shown as
// written (key order kept), from the raw document.
func buildContent(doc map[string]any, raw *rawDoc, ptr string) []refContent {
	c := obj(at(doc, ptr))
	var out []refContent
	for _, mt := range keysAt(raw, ptr) {
		m := obj(c[mt])
		mtPtr := ptr + "/" + escapePtr(mt)
		typ, link := typeOf(obj(m["schema"]))
		rc := refContent{MediaType: mt, Type: typ, TypeLink: link}
		if _, ok := m["example"]; ok {
			rc.Examples = append(rc.Examples, refExample{Name: "Example", JSON: rawJSON(raw, mtPtr+"/example")})
		}
		exs := obj(m["examples"])
		for _, name := range keysAt(raw, mtPtr+"/examples") {
			exPtr := mtPtr + "/examples/" + escapePtr(name)
			if r := str(obj(exs[name])["$ref"]); r != "" {
				exPtr = strings.TrimPrefix(r, "#")
			}
			label := str(obj(at(doc, exPtr))["summary"])
			if label == "" {
				label = name
			}
			rc.Examples = append(rc.Examples, refExample{Name: label, JSON: rawJSON(raw, exPtr+"/value")})
		}
		out = append(out, rc)
	}
	return out
}

func buildResponses(doc map[string]any, raw *rawDoc, ptr string) []refResponse {
	responses := obj(at(doc, ptr))
	var out []refResponse
	for _, status := range sortedKeys(responses) {
		r := obj(responses[status])
		rr := refResponse{Status: status}
		if refStr := str(r["$ref"]); refStr != "" {
			// A shared answer: named here, shown once under Errors.
			rr.Name = refStr[strings.LastIndexByte(refStr, '/')+1:]
			r = obj(deref(doc, r))
			rr.Description = prose(str(r["description"]))
		} else {
			rr.Description = prose(str(r["description"]))
			rr.Content = buildContent(doc, raw, ptr+"/"+escapePtr(status)+"/content")
		}
		out = append(out, rr)
	}
	return out
}

func buildSchema(raw *rawDoc, name string, s map[string]any) refSchema {
	out := refSchema{Name: name, Anchor: "schema-" + name, Description: prose(str(s["description"]))}
	if len(obj(s["properties"])) == 0 {
		out.Type, _ = typeOf(s)
		return out
	}
	out.Type = "object"
	out.Fields = fields(raw, "/components/schemas/"+escapePtr(name), s, "")
	return out
}

// fields lists an object schema's properties in document order; those of
// an inline object (or array of objects) follow their parent, named by
// path (verification.record_name, idp_certificates[].sha256), so that no
// field of an answer goes unshown.
func fields(raw *rawDoc, ptr string, s map[string]any, prefix string) []refField {
	props := obj(s["properties"])
	required := map[string]bool{}
	for _, r := range list(s["required"]) {
		required[str(r)] = true
	}
	var out []refField
	for _, p := range keysAt(raw, ptr+"/properties") {
		ps := obj(props[p])
		pPtr := ptr + "/properties/" + escapePtr(p)
		typ, link := typeOf(ps)
		out = append(out, refField{Name: prefix + p, Type: typ, TypeLink: link, Required: required[p], Description: prose(str(ps["description"]))})
		switch {
		case len(obj(ps["properties"])) > 0:
			out = append(out, fields(raw, pPtr, ps, prefix+p+".")...)
		case len(obj(obj(ps["items"])["properties"])) > 0:
			out = append(out, fields(raw, pPtr+"/items", obj(ps["items"]), prefix+p+"[].")...)
		}
	}
	return out
}

// typeOf names a schema's type for people, with the anchor of the named
// schema it refers to, if any.
func typeOf(s map[string]any) (string, string) {
	if s == nil {
		return "", ""
	}
	if r := str(s["$ref"]); r != "" {
		name := r[strings.LastIndexByte(r, '/')+1:]
		return name, "#schema-" + name
	}
	if c, ok := s["const"]; ok {
		return scalarOrJSON(c), ""
	}
	if e := list(s["enum"]); len(e) > 0 {
		vals := make([]string, len(e))
		for i, v := range e {
			vals[i] = scalarOrJSON(v)
		}
		return "one of " + strings.Join(vals, ", "), ""
	}
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if alts := list(s[k]); len(alts) > 0 {
			if len(alts) == 1 {
				return typeOf(obj(alts[0]))
			}
			names := make([]string, len(alts))
			for i, a := range alts {
				names[i], _ = typeOf(obj(a))
			}
			return strings.Join(names, " or "), ""
		}
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, str(x))
		}
	}
	for i, t := range types {
		if t == "array" {
			item, link := typeOf(obj(s["items"]))
			if len(types) == 1 {
				return "array of " + item, link
			}
			types[i] = "array of " + item
		}
	}
	out := strings.Join(types, " or ")
	if f := str(s["format"]); f != "" {
		out += " (" + f + ")"
	}
	return out, ""
}

// rawAt returns the JSON text at ptr in raw, as written; encoding/json's
// maps forget key order, which matters to a reader of examples and fields.
// rawDoc is the document's bytes, with the objects on the way to every
// pointer looked up so far decoded once: the page reads a few thousand
// pointers, and decoding the whole document again for each took a second
// (more under the race detector, which timed the page's first request
// out in the browser tests).
type rawDoc struct {
	b       []byte
	objects map[string]map[string]json.RawMessage // by the pointer of the object
}

// object is the object at ptr (a prefix of a pointer), decoded once.
func (d *rawDoc) object(ptr string, v json.RawMessage) (map[string]json.RawMessage, bool) {
	if m, ok := d.objects[ptr]; ok {
		return m, m != nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		m = nil
	}
	d.objects[ptr] = m
	return m, m != nil
}

func rawAt(raw *rawDoc, ptr string) []byte {
	cur := json.RawMessage(raw.b)
	if ptr == "" {
		return cur
	}
	prefix := ""
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := raw.object(prefix, cur)
		if !ok {
			return nil
		}
		cur = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
		prefix += "/" + tok
	}
	return cur
}

// rawJSON is the value at ptr, indented; a string is shown as its text.
func rawJSON(raw *rawDoc, ptr string) string {
	b := rawAt(raw, ptr)
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

// keysAt lists the keys of the object at ptr in document order.
func keysAt(raw *rawDoc, ptr string) []string {
	dec := json.NewDecoder(bytes.NewReader(rawAt(raw, ptr)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

func at(doc map[string]any, ptr string) any {
	var cur any = doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		cur = obj(cur)[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
	}
	return cur
}

func escapePtr(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func deref(doc map[string]any, v any) any {
	m := obj(v)
	r := str(m["$ref"])
	p, ok := strings.CutPrefix(r, "#/")
	if !ok {
		return v
	}
	var cur any = doc
	for _, tok := range strings.Split(p, "/") {
		cur = obj(cur)[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
	}
	return cur
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func scalarOrJSON(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

var nonAnchor = regexp.MustCompile(`[^a-z0-9]+`)

func anchor(s string) string {
	return strings.Trim(nonAnchor.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

var (
	codeSpan   = regexp.MustCompile("`([^`]+)`")
	strongSpan = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// prose renders the document's descriptions: paragraphs separated by blank
// lines, `code` and **strong**, everything else escaped. That is all of
// Markdown the document uses.
func prose(s string) template.HTML {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, para := range strings.Split(s, "\n\n") {
		p := template.HTMLEscapeString(strings.Join(strings.Fields(para), " "))
		p = codeSpan.ReplaceAllString(p, "<code>$1</code>")
		p = strongSpan.ReplaceAllString(p, "<strong>$1</strong>")
		b.WriteString("<p>" + p + "</p>")
	}
	return template.HTML(b.String()) // #nosec: built from escaped text and our own tags
}
