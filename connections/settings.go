package connections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

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
}

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
		return fmt.Errorf("%w: %v", ErrConfig, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrConfig)
	}
	return nil
}

// CheckURL accepts an absolute http(s) URL; plain http only when allowed
// (development, tests). field names it in the refusal. Every URL a
// connection sends the browser or the broker to passes it, however it was
// given (a manual field or IdP metadata).
func CheckURL(field, raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: %s must be an absolute https URL", ErrConfig, field)
	}
	if u.Scheme == "http" && !allowHTTP {
		return fmt.Errorf("%w: %s must use https", ErrConfig, field)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: %s must not carry credentials or a fragment", ErrConfig, field)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("%w: %s contains whitespace", ErrConfig, field)
	}
	return nil
}

func checkConnName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: name must be 1 to 200 characters", ErrConfig)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: name contains control characters", ErrConfig)
		}
	}
	return name, nil
}
