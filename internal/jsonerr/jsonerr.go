// Package jsonerr words encoding/json's type errors for whoever sent the
// JSON, so that every API of the broker refuses a value of the wrong type
// in the same sentence: "enabled must be a boolean, not a string".
package jsonerr

import (
	"reflect"
	"strings"
)

// Expected names the JSON value a Go type accepts: "a string", "an
// integer", "an object".
func Expected(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a valid value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a valid value"
}

// Found turns encoding/json's description of the value it met
// (json.UnmarshalTypeError.Value: "string", "number 1.5", "bool") into
// prose: "a string", "the number 1.5", "a boolean".
func Found(v string) string {
	switch {
	case v == "":
		return "this value"
	case v == "array" || v == "object":
		return "an " + v
	case strings.HasPrefix(v, "number "):
		return "the number " + strings.TrimPrefix(v, "number ")
	case v == "bool":
		return "a boolean"
	}
	return "a " + v
}
