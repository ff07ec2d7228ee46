package jsonerr

import (
	"encoding/json"
	"errors"
	"testing"
)

// The sentences come from real encoding/json errors, so that a change in
// how the standard library describes a value shows up here.
func TestWording(t *testing.T) {
	type target struct {
		S string            `json:"s"`
		B *bool             `json:"b"`
		I int               `json:"i"`
		F float64           `json:"f"`
		A []string          `json:"a"`
		O map[string]string `json:"o"`
		P struct{}          `json:"p"`
	}
	for _, tc := range []struct {
		body, want string
	}{
		{`{"s": 1.5}`, "a string, not a number"},
		{`{"b": "yes"}`, "a boolean, not a string"},
		{`{"i": 2.5}`, "an integer, not the number 2.5"},
		{`{"i": true}`, "an integer, not a boolean"},
		{`{"f": []}`, "a number, not an array"},
		{`{"a": {}}`, "an array, not an object"},
		{`{"o": "x"}`, "an object, not a string"},
		{`{"p": 1}`, "an object, not a number"},
	} {
		var v target
		err := json.Unmarshal([]byte(tc.body), &v)
		var typ *json.UnmarshalTypeError
		if !errors.As(err, &typ) {
			t.Fatalf("%s: error %v, want an UnmarshalTypeError", tc.body, err)
		}
		if got := Expected(typ.Type) + ", not " + Found(typ.Value); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.body, got, tc.want)
		}
	}
	if got := Expected(nil); got != "a valid value" {
		t.Errorf("Expected(nil) = %q", got)
	}
	if got := Found(""); got != "this value" {
		t.Errorf("Found(\"\") = %q", got)
	}
}
