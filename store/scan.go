package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"
)

// Scanners that read both dialects' encodings: PostgreSQL hands back
// time.Time and JSON text, SQLite integer microseconds and text.

type timeDest struct{ p *time.Time }

func (d timeDest) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*d.p = x.UTC()
	case int64:
		*d.p = time.UnixMicro(x).UTC()
	default:
		return fmt.Errorf("store: cannot scan %T into a time", v)
	}
	return nil
}

type nullTimeDest struct{ p **time.Time }

func (d nullTimeDest) Scan(v any) error {
	if v == nil {
		*d.p = nil
		return nil
	}
	var t time.Time
	if err := (timeDest{&t}).Scan(v); err != nil {
		return err
	}
	*d.p = &t
	return nil
}

type nullStringDest struct{ p *string }

func (d nullStringDest) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d.p = ""
	case string:
		*d.p = x
	case []byte:
		*d.p = string(x)
	default:
		return fmt.Errorf("store: cannot scan %T into a string", v)
	}
	return nil
}

// jsonDest unmarshals a JSON column into p.
type jsonDest struct{ p any }

func (d jsonDest) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		// pgx may decode jsonb itself; re-encode to reach p's type.
		var err error
		if b, err = json.Marshal(x); err != nil {
			return err
		}
	}
	if raw, ok := d.p.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], b...)
		return nil
	}
	return json.Unmarshal(b, d.p)
}

// jsonArg encodes v for a JSON column as text, which both dialects accept.
func jsonArg(v any) (string, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if len(raw) == 0 {
			return "{}", nil
		}
		if !json.Valid(raw) {
			return "", fmt.Errorf("%w: not valid JSON", ErrInvalid)
		}
		return string(raw), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// nullString maps "" to NULL for optional references.
func nullString(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}
