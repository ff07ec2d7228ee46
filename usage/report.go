package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Granularity is the bucket size of a report.
type Granularity string

const (
	Day   Granularity = "day"
	Month Granularity = "month"
)

// Totals are the meters of the operator API. Logins, MAU and
// SCIMOperations are sums; Connections and DirectoryUsers are gauges and
// give the peak daily snapshot of the period.
type Totals struct {
	Logins         int64 `json:"logins"`
	MAU            int64 `json:"mau"`
	SCIMOperations int64 `json:"scim_operations"`
	Connections    int64 `json:"connections"`
	DirectoryUsers int64 `json:"directory_users"`
}

func (t *Totals) add(d store.UsageDay) {
	switch d.Meter {
	case store.MeterLogin:
		t.Logins += d.Sum
	case store.MeterActiveUser:
		t.MAU += d.Sum
	case store.MeterSCIMOperation:
		t.SCIMOperations += d.Sum
	case store.MeterConnections:
		t.Connections = max(t.Connections, d.Max)
	case store.MeterDirectoryUsers:
		t.DirectoryUsers = max(t.DirectoryUsers, d.Max)
	}
}

// Bucket is one day or month of a report.
type Bucket struct {
	Start time.Time `json:"start"`
	Totals
}

// Report sums the usage of the tenant in ctx in [from, to), overall and
// per bucket (only buckets with records appear). MAU over several months
// counts a user once per month they signed in.
func (m *Meter) Report(ctx context.Context, from, to time.Time, g Granularity) (Totals, []Bucket, error) {
	days, err := m.st.UsageByDay(ctx, from, to)
	if err != nil {
		return Totals{}, nil, fmt.Errorf("usage: report: %w", err)
	}
	var (
		total   Totals
		buckets []Bucket
	)
	for _, d := range days {
		start, err := time.Parse(time.DateOnly, d.Day)
		if err != nil {
			return Totals{}, nil, fmt.Errorf("usage: report: bad day %q", d.Day)
		}
		if g == Month {
			start = time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC)
		}
		if n := len(buckets); n == 0 || !buckets[n-1].Start.Equal(start) {
			buckets = append(buckets, Bucket{Start: start})
		}
		buckets[len(buckets)-1].add(d)
		total.add(d)
	}
	return total, buckets, nil
}

// Export calls fn on every record of every tenant in [from, to), tenant by
// tenant, each in time order, reading a page at a time so that an export
// of any size runs in constant memory.
func (m *Meter) Export(ctx context.Context, from, to time.Time, fn func(store.UsageRecord) error) error {
	tenants, err := m.st.UsageTenants(ctx, from, to)
	if err != nil {
		return fmt.Errorf("usage: export: %w", err)
	}
	const page = 1000
	for _, id := range tenants {
		tctx := store.WithTenant(ctx, id)
		var (
			afterAt  time.Time
			afterKey string
		)
		for {
			recs, err := m.st.UsageRecords(tctx, from, to, afterAt, afterKey, page)
			if err != nil {
				return fmt.Errorf("usage: export %s: %w", id, err)
			}
			for _, r := range recs {
				if err := fn(r); err != nil {
					return err
				}
			}
			if len(recs) < page {
				break
			}
			last := recs[len(recs)-1]
			afterAt, afterKey = last.At, last.IdempotencyKey
		}
	}
	return nil
}
