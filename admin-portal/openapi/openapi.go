// Package openapi holds the operator API's OpenAPI 3.1 document: written
// by hand in openapi.yaml (embedded), served as JSON at
// GET /api/v1/openapi.json, and read by the console's API reference page.
//
// The document is YAML because people maintain it: comments, no braces to
// balance, and YAML anchors (&tenant, *tenant) to reuse one example in
// several answers. It is converted to JSON once, in key order, so the
// served document reads in the order it was written.
//
// Tests keep it honest: cmd/idbroker's route test fails on any route of
// the wired operator API missing here (or documented but not served), and
// this package's tests validate every example against its schema and the
// document against the OpenAPI 3.1 schema.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// Path is where the document is served.
const Path = "/api/v1/openapi.json"

// Source is the document as written: YAML.
//
//go:embed openapi.yaml
var Source []byte

// Document is the converted document.
type Document struct {
	// JSON is the document as served, indented.
	JSON []byte
	// ETag is a strong validator of JSON.
	ETag string
}

// load converts Source once; a document that does not convert is a
// build mistake that the package's tests catch, so later calls panic.
var load = sync.OnceValues(func() (*Document, error) {
	b, err := YAMLToJSON(Source)
	if err != nil {
		return nil, fmt.Errorf("openapi: openapi.yaml: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, fmt.Errorf("openapi: openapi.yaml: %w", err)
	}
	out.WriteByte('\n')
	sum := sha256.Sum256(out.Bytes())
	return &Document{JSON: out.Bytes(), ETag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}, nil
})

// Load returns the document.
func Load() (*Document, error) { return load() }

// Must returns the document, panicking if openapi.yaml does not convert.
func Must() *Document {
	d, err := load()
	if err != nil {
		panic(err)
	}
	return d
}

// Serve answers GET /api/v1/openapi.json: no credential needed (the
// document says nothing a reader of the source could not), readable from
// any origin (so that an OpenAPI viewer elsewhere can load it; no
// credential travels), and cacheable: clients revalidate with
// If-None-Match and get 304 until it changes.
func Serve(c echo.Context) error {
	d := Must()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set("ETag", d.ETag)
	h.Set("Cache-Control", "no-cache")
	h.Set(echo.HeaderAccessControlAllowOrigin, "*")
	if matches(c.Request().Header.Get("If-None-Match"), d.ETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, d.JSON)
}

// matches reports whether an If-None-Match list names etag (weak
// comparison, RFC 9110 section 13.1.2).
func matches(ifNoneMatch, etag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// YAMLToJSON converts a YAML document to compact JSON, keeping the order
// of mapping keys and resolving aliases. Mapping keys become strings
// (OpenAPI's "200" status keys are YAML integers), timestamps stay the
// strings they were written as.
func YAMLToJSON(src []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := writeNode(&b, &root, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// maxDepth bounds alias expansion: a document that nests deeper than this
// is a mistake (or an alias loop).
const maxDepth = 100

func writeNode(b *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("line %d: nested deeper than %d levels (an alias loop?)", n.Line, maxDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("null")
			return nil
		}
		return writeNode(b, n.Content[0], depth+1)
	case yaml.AliasNode:
		return writeNode(b, n.Alias, depth+1)
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeNode(b, c, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	case yaml.MappingNode:
		b.WriteByte('{')
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: mapping keys must be scalars", k.Line)
			}
			if k.Value == "<<" && k.Tag == "!!merge" {
				return fmt.Errorf("line %d: merge keys (<<) are not supported; repeat the fields", k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("line %d: key %q repeated", k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k.Value)
			b.WriteByte(':')
			if err := writeNode(b, v, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case yaml.ScalarNode:
		return writeScalar(b, n)
	}
	return fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

func writeScalar(b *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		b.WriteString("null")
		return nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %v has no JSON form: %w", n.Line, n.Value, err)
		}
		b.Write(out)
		return nil
	case "!!str", "!!timestamp", "!!binary":
		writeString(b, n.Value)
		return nil
	}
	return fmt.Errorf("line %d: unsupported YAML tag %s", n.Line, n.Tag)
}

func writeString(b *bytes.Buffer, s string) {
	out, _ := json.Marshal(s) // a string always marshals
	b.Write(out)
}
