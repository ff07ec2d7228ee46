package adminportal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// connectionRequest is the body of a connection create or update: the
// fixed fields this call takes (type, name, status) and, under each
// connection type's name, that type's settings object, which the type
// decodes and validates itself. So a new connection type needs nothing
// here.
type connectionRequest struct {
	Type, Name, Status string
	Settings           connections.Settings

	// types tells a settings object from an unknown field; fixed lists
	// the fields this call takes. Set before decoding.
	types interface {
		HasType(store.ConnectionType) bool
	}
	fixed []string
	// has records which fixed fields the body carried.
	has map[string]bool
}

// UnmarshalJSON reads the body as encoding/json would a struct with
// DisallowUnknownFields, errors included, so decodeJSON reports them the
// same way.
func (req *connectionRequest) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	if fields == nil {
		return &json.UnmarshalTypeError{Value: "null", Type: reflect.TypeOf(fields)}
	}
	req.has = map[string]bool{}
	for k, v := range fields {
		var dst *string
		switch {
		case slices.Contains(req.fixed, k) && k == "type":
			dst = &req.Type
		case slices.Contains(req.fixed, k) && k == "name":
			dst = &req.Name
		case slices.Contains(req.fixed, k) && k == "status":
			dst = &req.Status
		case req.types.HasType(store.ConnectionType(k)):
			// A null is refused like any value that is not an object,
			// not taken for absent settings: a silent no-op otherwise.
			if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
				return &json.UnmarshalTypeError{Value: jsonKind(t), Type: reflect.TypeOf(struct{}{}), Field: k}
			}
			if req.Settings == nil {
				req.Settings = connections.Settings{}
			}
			req.Settings[store.ConnectionType(k)] = v
			continue
		default:
			return fmt.Errorf("json: unknown field %q", k)
		}
		// type, name and status always have a value: a null is refused
		// as a value of the wrong type, not taken for an absent field.
		if err := json.Unmarshal(v, dst); err != nil || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return &json.UnmarshalTypeError{Value: jsonKind(bytes.TrimSpace(v)), Type: reflect.TypeOf(""), Field: k}
		}
		req.has[k] = true
	}
	return nil
}

// changes names what a PATCH sent, for its audit row: the fixed fields
// and each settings field as "<type>.<field>", sorted, never a value (a
// client secret or a certificate is named, not recorded).
func (req *connectionRequest) changes() []string {
	out := []string{}
	for k := range req.has {
		out = append(out, k)
	}
	for typ, raw := range req.Settings {
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			continue // refused by the connector before any row is written
		}
		for k := range fields {
			out = append(out, string(typ)+"."+k)
		}
	}
	slices.Sort(out)
	return out
}

// jsonKind names a JSON value's kind as encoding/json's errors do.
func jsonKind(v []byte) string {
	switch {
	case len(v) == 0:
		return ""
	case v[0] == '{':
		return "object"
	case v[0] == '[':
		return "array"
	case v[0] == '"':
		return "string"
	case v[0] == 't' || v[0] == 'f':
		return "bool"
	case v[0] == 'n':
		return "null"
	}
	return "number " + string(v)
}
