package connections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/idbroker/idbroker/internal/jsonerr"
	"github.com/idbroker/idbroker/store"
)

// Settings is the type-specific part of a create or update request: each
// type's object under the type's name, as the API's JSON carries it
// ({"saml": {…}}). Only the connection's own type may appear; the type
// decodes and validates its object itself.
type Settings map[store.ConnectionType]json.RawMessage

// Update changes a connection; nil fields are left as they are.
type Update struct {
	Name   *string
	Status *store.ConnectionStatus
	Settings
	// IfVersion, when not 0, is the version of the connection the caller
	// last saw (an If-Match): if it has changed since, nothing is written
	// and the error is ErrChanged. Without it the update is applied to
	// the current connection, whatever changed since the caller read it.
	IfVersion int64
}

// Hook runs inside the transaction of a connection change, after the
// change is written, with the connection as written (as it was, for a
// delete). Its error rolls the change back. Callers append the change's
// audit row with it, so that a change never commits without its row nor
// a row without its change.
type Hook func(ctx context.Context, conn store.Connection) error

// SettingsFor wraps v, a type's settings struct, as the Settings of a
// request; it is how Go callers (the dev seed, tests) build one.
func SettingsFor(typ store.ConnectionType, v any) Settings {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("connections: settings of type %s do not marshal: %v", typ, err))
	}
	return Settings{typ: b}
}

// DecodeStrict reads a type's stored config or request settings into v,
// refusing unknown fields and trailing data, as ErrConfig.
func DecodeStrict(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return Invalid("", "trailing data after the settings object")
	}
	return nil
}

// DecodeRequest reads the settings object of a create or update request
// into v as DecodeStrict does, and refuses a setting sent as null. Every
// setting is a pointer, so encoding/json would take a null for an absent
// field and leave the setting as it was: a silent no-op for a caller who
// meant to clear it. The API's other PATCH bodies refuse such a null too;
// "" (or [], or false) is how a setting is cleared.
func DecodeRequest(raw json.RawMessage, v any) error {
	if err := DecodeStrict(raw, v); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return decodeError(err)
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if bytes.Equal(bytes.TrimSpace(fields[k]), []byte("null")) {
			return Invalid(k, "%s cannot be null: leave it out to keep the current value", k)
		}
	}
	return nil
}

// decodeError names the field encoding/json refused, in the API's words.
func decodeError(err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return &FieldError{Field: typ.Field, Msg: fmt.Sprintf("%s must be %s, not %s", typ.Field, jsonerr.Expected(typ.Type), jsonerr.Found(typ.Value)), Err: err}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(name, `"`), Msg: "unknown field " + name, Err: err}
	}
	return &FieldError{Msg: "malformed settings: " + strings.TrimPrefix(err.Error(), "json: "), Err: err}
}

// CheckURL accepts an absolute http(s) URL; plain http only when allowed
// (development, tests). field names it in the refusal. Every URL a
// connection sends the browser or the broker to passes it, however it was
// given (a manual field or IdP metadata).
//
// The refusal says what this mode accepts: where plain http is allowed it
// never says "must be https".
func CheckURL(field, raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		if allowHTTP {
			return Invalid(field, "%s must be an absolute http or https URL", field)
		}
		return Invalid(field, "%s must be an absolute https URL", field)
	}
	if u.Scheme == "http" && !allowHTTP {
		return Invalid(field, "%s must use https", field)
	}
	if u.User != nil || u.Fragment != "" {
		return Invalid(field, "%s must not carry credentials or a fragment", field)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return Invalid(field, "%s contains whitespace", field)
	}
	return nil
}

func checkConnName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return "", Invalid("name", "name must be 1 to 200 characters")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "", Invalid("name", "name contains control characters")
		}
	}
	return name, nil
}
