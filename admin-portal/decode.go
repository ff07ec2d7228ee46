package adminportal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
)

// decodeJSON reads the request body into dst strictly: a JSON object and
// nothing after it, no unknown fields, every value of the declared type.
// Each failure names what is wrong, so that a caller fixes it in one go.
// The body size is capped by the server; reading past the cap fails with
// *http.MaxBytesError, which the server answers with 413.
func decodeJSON(c echo.Context, dst any) error {
	req := c.Request()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return fmt.Errorf("reading request body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "request body is required: a JSON object")
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return httpserver.NewError(http.StatusUnsupportedMediaType, httpserver.CodeUnsupportedMediaType,
			"Content-Type must be application/json")
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		return invalid("", "request body must hold one JSON object and nothing after it")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return invalid("", "malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("", "request body must be a JSON object, not %s", article(typ.Value))
		}
		return invalid(typ.Field, "field %q must be %s, not %s", typ.Field, jsonType(typ.Type), article(typ.Value))
	}
	// encoding/json reports unknown fields only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		return invalid(field, "unknown field %s", name)
	}
	var invalidTarget *json.InvalidUnmarshalError
	if errors.As(err, &invalidTarget) {
		return fmt.Errorf("decoding request body: %w", err) // our bug: 500
	}
	return invalid("", "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonType names t as JSON calls it.
func jsonType(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
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

// article turns encoding/json's value description ("string", "number 1.5")
// into prose.
func article(v string) string {
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
