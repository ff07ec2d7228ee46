package adminportal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/jsonerr"
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
	if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || !acceptedBody(req.Method, mt) {
		msg := "Content-Type must be application/json"
		if req.Method == http.MethodPatch {
			msg = "Content-Type must be application/json or application/merge-patch+json"
		}
		return httpserver.NewError(http.StatusUnsupportedMediaType, httpserver.CodeUnsupportedMediaType, msg)
	}
	// A compressed body would otherwise be read as malformed JSON, or a
	// body mislabelled as compressed taken as it is (RFC 9110 §15.5.16).
	if ce := strings.TrimSpace(req.Header.Get(echo.HeaderContentEncoding)); ce != "" && !strings.EqualFold(ce, "identity") {
		return httpserver.NewError(http.StatusUnsupportedMediaType, httpserver.CodeUnsupportedMediaType,
			fmt.Sprintf("Content-Encoding %q is not supported: send the JSON body uncompressed", ce))
	}

	// encoding/json decodes null into a struct as nothing at all, which
	// would surface as a confusing "name is required".
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return invalid("", "request body must be a JSON object, not null")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		return invalid("", "request body must hold one JSON object and nothing after it")
	}
	return refuseNUL(body)
}

// mimeMergePatch is RFC 7396's JSON merge patch. Every PATCH of the API
// already reads its body as one: a field left out is kept, a field sent
// replaces the value (an object of settings field by field, a list
// whole), and null unsets a field that may have no value. A field that
// always has one refuses null with a 400 rather than pretend to remove
// it; RFC 7396 leaves the validity of the result to the resource.
const mimeMergePatch = "application/merge-patch+json"

// acceptedBody reports whether a body of media type mt is read for a
// request of method: JSON always, a JSON merge patch for PATCH, which
// clients built on RFC 7396 (Kubernetes', many HTTP libraries') label so.
func acceptedBody(method, mt string) bool {
	return mt == echo.MIMEApplicationJSON || (method == http.MethodPatch && mt == mimeMergePatch)
}

// refuseNUL refuses a body with a NUL character (\u0000) in any string or
// key, naming where. PostgreSQL stores no NUL in text or jsonb, so such a
// value could only fail later, as a 500, in whichever field the handler's
// own checks did not think of (a connection's IdP settings, say). Only a
// body with the escape at all is walked again.
func refuseNUL(body []byte) error {
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil // decodeJSON has read it already; cannot happen
	}
	if at, ok := findNUL(v, ""); ok {
		field := strings.TrimPrefix(at, ".")
		if field == "" {
			return invalid("", "request body must not contain control characters such as NUL (\\u0000)")
		}
		return invalid(field, "%s must not contain control characters such as NUL (\\u0000)", field)
	}
	return nil
}

// findNUL returns the path of the first string or key of v with a NUL.
func findNUL(v any, at string) (string, bool) {
	switch v := v.(type) {
	case string:
		return at, strings.ContainsRune(v, 0)
	case []any:
		for i, e := range v {
			if p, ok := findNUL(e, fmt.Sprintf("%s[%d]", at, i)); ok {
				return p, true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) {
				return at, true
			}
			if p, ok := findNUL(e, at+"."+k); ok {
				return p, true
			}
		}
	}
	return "", false
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
			return invalid("", "request body must be a JSON object, not %s", jsonerr.Found(typ.Value))
		}
		return invalid(typ.Field, "field %q must be %s, not %s", typ.Field, jsonerr.Expected(typ.Type), jsonerr.Found(typ.Value))
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

// patchField is a field of a PATCH body that tells an absent field (Set
// false: leave it as it is) from an explicit null (Null: remove the value,
// for a field the API shows as null when it has none, or a 400 for one
// that always has a value). A plain pointer cannot: encoding/json leaves it
// nil for both, so a null a client sent to clear something was silently
// ignored.
type patchField[T any] struct {
	Set, Null bool
	Value     T
}

// UnmarshalJSON records that the field was sent. encoding/json calls it
// for null too, since patchField is not a pointer.
func (f *patchField[T]) UnmarshalJSON(b []byte) error {
	f.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		f.Null = true
		return nil
	}
	// As strict as decodeJSON's own decoder, which does not reach in here.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(&f.Value)
}

// refuseNull is the 400 for a null sent to a field that always has a value.
func refuseNull(field string, null bool) error {
	if null {
		return invalid(field, "%s cannot be null: leave it out to keep the current value", field)
	}
	return nil
}

// refuseBody is the body check of a call that takes none: no body, or {},
// passes; anything else is refused as decodeJSON refuses it (an unknown
// field is a 400 naming it, another media type a 415) rather than ignored,
// so that an option the call does not have is never silently dropped.
func refuseBody(c echo.Context) error {
	return decodeOptionalJSON(c, &struct{}{})
}
