package openapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/idbroker/idbroker/admin-portal/openapi"
)

// docURL is where the tests load the document, so that its "#/components/…"
// references resolve.
const docURL = "https://idbroker.invalid/api/v1/openapi.json"

func loadDoc(t *testing.T) (raw []byte, doc map[string]any) {
	t.Helper()
	d, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(d.JSON, &doc); err != nil {
		t.Fatalf("served document is not JSON: %v", err)
	}
	return d.JSON, doc
}

// TestDocumentIsOpenAPI31 validates the document against the OpenAPI 3.1
// schema that also checks every Schema Object against the OAS dialect of
// JSON Schema 2020-12 (testdata/oas-3.1).
func TestDocumentIsOpenAPI31(t *testing.T) {
	raw, _ := loadDoc(t)
	c := jsonschema.NewCompiler()
	for _, f := range []string{"schema", "schema-base", "dialect", "meta"} {
		y, err := os.ReadFile(filepath.Join("testdata", "oas-3.1", f+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		j, err := openapi.YAMLToJSON(y)
		if err != nil {
			t.Fatalf("%s.yaml: %v", f, err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := v.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, v); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("https://spec.openapis.org/oas/3.1/schema-base/WORK-IN-PROGRESS")
	if err != nil {
		t.Fatalf("compile the OpenAPI 3.1 schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("admin-portal/openapi/openapi.yaml is not a valid OpenAPI 3.1 document:\n%v", err)
	}
}

// example is one example found in the document: its JSON pointer, the
// pointer of the schema it must satisfy, and the value.
type example struct {
	where, schema string
	value         any
}

// TestExamplesMatchSchemas validates every example — of request bodies,
// responses, parameters, headers and schemas — against its schema, with
// formats (date-time, uri) asserted.
func TestExamplesMatchSchemas(t *testing.T) {
	raw, doc := loadDoc(t)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(docURL, inst); err != nil {
		t.Fatal(err)
	}
	examples := collectExamples(t, doc, doc, "")
	if len(examples) < 50 {
		t.Fatalf("found only %d examples; is the walk broken?", len(examples))
	}
	for _, ex := range examples {
		sch, err := c.Compile(docURL + "#" + ex.schema)
		if err != nil {
			t.Errorf("%s: compile schema %s: %v", ex.where, ex.schema, err)
			continue
		}
		// Round-trip through JSON so numbers are json.Number, as the
		// validator expects.
		b, _ := json.Marshal(ex.value)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("example at %s does not match its schema (%s) in admin-portal/openapi/openapi.yaml:\n%v", ex.where, ex.schema, err)
		}
	}
}

// collectExamples walks the document: an object with "schema" and
// "example" or "examples" (a media type, parameter or header) has its
// examples checked against that schema; a schema with an "examples" array
// against itself.
func collectExamples(t *testing.T, doc map[string]any, node any, ptr string) []example {
	var out []example
	switch n := node.(type) {
	case []any:
		for i, v := range n {
			out = append(out, collectExamples(t, doc, v, fmt.Sprintf("%s/%d", ptr, i))...)
		}
	case map[string]any:
		if _, ok := n["schema"]; ok {
			if v, ok := n["example"]; ok {
				out = append(out, example{ptr + "/example", ptr + "/schema", v})
			}
			if m, ok := n["examples"].(map[string]any); ok {
				for name, e := range m {
					value, ok := exampleValue(t, doc, e)
					if !ok {
						t.Errorf("%s/examples/%s: an Example Object needs a value", ptr, name)
						continue
					}
					out = append(out, example{ptr + "/examples/" + name, ptr + "/schema", value})
				}
			}
		}
		if a, ok := n["examples"].([]any); ok {
			for i, v := range a {
				out = append(out, example{fmt.Sprintf("%s/examples/%d", ptr, i), ptr, v})
			}
		}
		for k, v := range n {
			if k == "example" || k == "examples" {
				continue // values, not document structure
			}
			out = append(out, collectExamples(t, doc, v, ptr+"/"+escape(k))...)
		}
	}
	return out
}

// exampleValue reads an Example Object's value, following a $ref.
func exampleValue(t *testing.T, doc map[string]any, e any) (any, bool) {
	m, ok := e.(map[string]any)
	if !ok {
		return nil, false
	}
	if ref, ok := m["$ref"].(string); ok {
		target, err := resolve(doc, ref)
		if err != nil {
			t.Error(err)
			return nil, false
		}
		m, ok = target.(map[string]any)
		if !ok {
			return nil, false
		}
	}
	v, ok := m["value"]
	return v, ok
}

func escape(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

// resolve follows a local reference ("#/components/…").
func resolve(doc map[string]any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = doc
	for _, tok := range strings.Split(p, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q: %s is not an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("reference %q: no %s", ref, tok)
		}
	}
	return cur, nil
}

// deref follows obj's $ref, if any.
func deref(t *testing.T, doc map[string]any, obj any) map[string]any {
	t.Helper()
	m, _ := obj.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, err := resolve(doc, ref)
		if err != nil {
			t.Fatal(err)
		}
		m, _ = target.(map[string]any)
	}
	return m
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestEveryOperationIsComplete holds each operation to the document's
// conventions, so that a route added in a hurry is still documented
// usefully: an operationId, a summary, a tag; an example for every
// request body and every answer with a body; errors in the one Error
// shape; 401 wherever a key is required.
func TestEveryOperationIsComplete(t *testing.T) {
	_, doc := loadDoc(t)
	paths, _ := doc["paths"].(map[string]any)
	ids := map[string]string{}
	for path, item := range paths {
		for _, method := range methods {
			op, ok := item.(map[string]any)[method].(map[string]any)
			if !ok {
				continue
			}
			where := fmt.Sprintf("paths.%s.%s", path, method)
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: add an operationId", where)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s: operationId %s is also %s's", where, id, other)
			}
			ids[id] = where
			if s, _ := op["summary"].(string); s == "" {
				t.Errorf("%s: add a summary", where)
			}
			if tags, _ := op["tags"].([]any); len(tags) == 0 {
				t.Errorf("%s: add a tag (one of the top-level tags)", where)
			}
			if rb, ok := op["requestBody"]; ok {
				for ct, mt := range deref(t, doc, rb)["content"].(map[string]any) {
					if !hasExample(mt) {
						t.Errorf("%s: requestBody %s needs an example", where, ct)
					}
				}
			}
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			for status, r := range responses {
				resp := deref(t, doc, r)
				content, _ := resp["content"].(map[string]any)
				for ct, mt := range content {
					if !hasExample(mt) {
						t.Errorf("%s: response %s %s needs an example", where, status, ct)
					}
				}
				if status >= "400" {
					mt, _ := content["application/json"].(map[string]any)
					sch, _ := mt["schema"].(map[string]any)
					if sch["$ref"] != "#/components/schemas/Error" {
						t.Errorf("%s: response %s must be application/json with schema #/components/schemas/Error (use a components/responses entry)", where, status)
					}
				}
			}
			security, hasSecurity := op["security"].([]any)
			public := hasSecurity && len(security) == 0
			if _, ok := responses["401"]; !ok && !public {
				t.Errorf("%s: add '401': {$ref: '#/components/responses/Unauthorized'}", where)
			}
		}
	}
}

func hasExample(mt any) bool {
	m, _ := mt.(map[string]any)
	_, one := m["example"]
	many, _ := m["examples"].(map[string]any)
	return one || len(many) > 0
}

func TestServe(t *testing.T) {
	e := echo.New()
	e.GET(openapi.Path, openapi.Serve)
	d := openapi.Must()

	get := func(h http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, openapi.Path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}

	rec := get(nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", openapi.Path, rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	etag := rec.Header().Get("ETag")
	if etag == "" || etag != d.ETag || !strings.HasPrefix(etag, `"`) {
		t.Errorf("ETag = %q, want the strong validator %q", etag, d.ETag)
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want * (a public document, no credentials)", got)
	}
	if !bytes.Equal(rec.Body.Bytes(), d.JSON) {
		t.Errorf("body is not the document")
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["openapi"] != "3.1.1" {
		t.Errorf("body is not an OpenAPI 3.1 document: %v", err)
	}

	for _, tc := range []struct {
		ifNoneMatch string
		want        int
	}{
		{etag, http.StatusNotModified},
		{"W/" + etag, http.StatusNotModified},
		{`"other", ` + etag, http.StatusNotModified},
		{"*", http.StatusNotModified},
		{`"other"`, http.StatusOK},
	} {
		rec := get(http.Header{"If-None-Match": {tc.ifNoneMatch}})
		if rec.Code != tc.want {
			t.Errorf("If-None-Match: %s = %d, want %d", tc.ifNoneMatch, rec.Code, tc.want)
		}
		if rec.Code == http.StatusNotModified && (rec.Body.Len() != 0 || rec.Header().Get("ETag") != etag) {
			t.Errorf("304 has a body or no ETag")
		}
	}
}

func TestYAMLToJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "order kept", in: "b: 1\na: 2\n", want: `{"b":1,"a":2}`},
		{name: "status keys are strings", in: "200: ok\n'404': nf\n", want: `{"200":"ok","404":"nf"}`},
		{name: "scalars", in: "a: true\nb: 1.5\nc: null\nd: ~\ne: '1'\nf: 2026-11-02T09:14:07Z\ng: 2026-11-02\n",
			want: `{"a":true,"b":1.5,"c":null,"d":null,"e":"1","f":"2026-11-02T09:14:07Z","g":"2026-11-02"}`},
		{name: "aliases expand", in: "x: &v {a: [1, 2]}\ny: *v\nz: [*v]\n", want: `{"x":{"a":[1,2]},"y":{"a":[1,2]},"z":[{"a":[1,2]}]}`},
		{name: "unicode", in: "s: idb_sk_…\n", want: `{"s":"idb_sk_…"}`},
		{name: "duplicate key", in: "a: 1\na: 2\n", err: "a"},
		{name: "merge key", in: "x: &v {a: 1}\ny:\n  <<: *v\n", err: "merge keys"},
		{name: "not YAML", in: "a: [1\n", err: "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openapi.YAMLToJSON([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("YAMLToJSON = %s, %v; want an error mentioning %q", got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("YAMLToJSON = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// TestTagsAreDeclared: every operation's tag is one of the document's
// tags, which order the console's reference page.
func TestTagsAreDeclared(t *testing.T) {
	_, doc := loadDoc(t)
	var declared []string
	for _, tag := range doc["tags"].([]any) {
		declared = append(declared, tag.(map[string]any)["name"].(string))
	}
	for path, item := range doc["paths"].(map[string]any) {
		for _, method := range methods {
			op, ok := item.(map[string]any)[method].(map[string]any)
			if !ok {
				continue
			}
			tags, _ := op["tags"].([]any)
			for _, tag := range tags {
				if !slices.Contains(declared, tag.(string)) {
					t.Errorf("paths.%s.%s: tag %q is not among the top-level tags %v", path, method, tag, declared)
				}
			}
		}
	}
}
