package usage

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Codes are the billing metric names of each meter, the keys of Totals.
var codes = map[store.UsageMeter]string{
	store.MeterLogin:          "logins",
	store.MeterActiveUser:     "mau",
	store.MeterSCIMOperation:  "scim_operations",
	store.MeterConnections:    "connections",
	store.MeterDirectoryUsers: "directory_users",
}

// Event is one record as exported: the fields Stripe's meter events
// (event_name, identifier, timestamp, payload.value) and Lago's events
// (code, transaction_id, external_customer_id, timestamp, properties) ask
// for, so that one line maps onto either with a rename and nothing
// computed. IdempotencyKey is the same on every export of the record.
type Event struct {
	IdempotencyKey string `json:"idempotency_key"`
	EventName      string `json:"event_name"`
	Meter          string `json:"meter"`
	TenantID       string `json:"tenant_id"`
	Value          int64  `json:"value"`
	Timestamp      int64  `json:"timestamp"`
	Time           string `json:"time"`
	Subject        string `json:"subject,omitempty"`
}

// NewEvent describes r for export.
func NewEvent(r store.UsageRecord) Event {
	return Event{
		IdempotencyKey: ExportKey(r),
		EventName:      codes[r.Meter],
		Meter:          string(r.Meter),
		TenantID:       r.TenantID,
		Value:          r.Value,
		Timestamp:      r.At.Unix(),
		Time:           r.At.UTC().Format(time.RFC3339Nano),
		Subject:        r.Subject,
	}
}

// Writer writes exported records as NDJSON or CSV.
type Writer struct {
	json *json.Encoder
	csv  *csv.Writer
}

// CSVHeader is the first line of a CSV export.
var CSVHeader = []string{"idempotency_key", "event_name", "meter", "tenant_id", "value", "timestamp", "time", "subject"}

// NewWriter returns a Writer of format "ndjson" or "csv" (which writes its
// header at once).
func NewWriter(w io.Writer, format string) (*Writer, error) {
	if format == "csv" {
		cw := csv.NewWriter(w)
		return &Writer{csv: cw}, cw.Write(CSVHeader)
	}
	return &Writer{json: json.NewEncoder(w)}, nil
}

// Write writes one record.
func (w *Writer) Write(r store.UsageRecord) error {
	e := NewEvent(r)
	if w.json != nil {
		return w.json.Encode(e)
	}
	return w.csv.Write([]string{e.IdempotencyKey, e.EventName, e.Meter, e.TenantID,
		strconv.FormatInt(e.Value, 10), strconv.FormatInt(e.Timestamp, 10), e.Time, e.Subject})
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	if w.csv != nil {
		w.csv.Flush()
		return w.csv.Error()
	}
	return nil
}
