package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/idbroker/idbroker/store"
)

// The isolation suite finds another tenant's data by its ids, so a read
// that leaks only a number of tenant A's (a count, a sum, SLO totals, a
// "last activity" time, the length of a list, a cursor to a next page)
// passes it. This case holds those too, generated from the same
// interface: every tenant-scoped read is called under tenant B, with the
// same arguments (B's values and A's, A's ids chosen in advance), before
// tenant A exists and again after A has written one row of everything,
// outside a transaction and inside one that has just read A. B writes
// nothing in between, so each answer must be the same, error or value, to
// the last field. A new read is covered by default; one that
// takes a type with no values fails until isolationArgs has some.

// writeVerbs start the names of the tenant-scoped methods that change the
// store. They are not called twice: their second answer differs by what
// the first wrote (a new id, a version, a conflict with B's own row). What
// they answer under B with A's values is held by
// EveryMethodIsTenantScoped: not found or refused, nothing of A returned,
// nothing of A changed. Every other tenant-scoped method is a read here.
var writeVerbs = []string{
	"Add", "Append", "Create", "Delete", "End", "Erase", "Mark", "Open", "Record",
	"Remove", "Restore", "Rotate", "Save", "Set", "SoftDelete", "Update", "Upsert",
}

// isWrite reports whether name starts with a write verb as a whole word
// ("AddDomain", not "Address").
func isWrite(name string) bool {
	for _, v := range writeVerbs {
		rest, ok := strings.CutPrefix(name, v)
		if ok && (rest == "" || unicode.IsUpper(rune(rest[0]))) {
			return true
		}
	}
	return false
}

// tenantReads are the tenant-scoped methods of store.Store that are not
// writes, in interface order.
func tenantReads() []reflect.Method {
	var out []reflect.Method
	st := reflect.TypeFor[store.Store]()
	for i := range st.NumMethod() {
		m := st.Method(i)
		if _, global := globalMethods[m.Name]; global || isWrite(m.Name) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// mergeArgs joins the values of each type, dropping repeats (both
// fixtures share their times).
func mergeArgs(sets ...map[reflect.Type][]any) map[reflect.Type][]any {
	out := map[reflect.Type][]any{}
	for _, set := range sets {
		for typ, vals := range set {
			for _, v := range vals {
				if !slices.ContainsFunc(out[typ], func(w any) bool { return reflect.DeepEqual(v, w) }) {
					out[typ] = append(out[typ], v)
				}
			}
		}
	}
	return out
}

// aggregateCall is one call of a read and what it answered before A's data
// was written.
type aggregateCall struct {
	args   []any
	before string
}

func testReadsCountNothingOfAnotherTenant(t *testing.T, db *store.DB) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := planIsolationFixture("b", now)
	ctxB := b.write(t, db)
	a := planIsolationFixture("a", now)
	args := mergeArgs(isolationArgs(a), isolationArgs(b))

	reads := tenantReads()
	calls := map[string][]aggregateCall{}
	for _, m := range reads {
		cands, err := argCandidates(m, args)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, combo := range product(cands) {
			calls[m.Name] = append(calls[m.Name], aggregateCall{args: combo, before: answer(db, m, ctxB, combo)})
		}
	}

	a.write(t, db)

	for _, m := range reads {
		t.Run(m.Name, func(t *testing.T) {
			cs, ok := calls[m.Name]
			if !ok {
				t.Fatalf("%s was not called: see the error above", m.Name)
			}
			answered := false
			for _, c := range cs {
				after := answer(db, m, ctxB, c.args)
				if after != c.before {
					t.Errorf("%s%s under tenant B answers differently once tenant A has data:\nbefore: %s\nafter:  %s",
						m.Name, describe(c.args), c.before, after)
				}
				answered = answered || !strings.HasPrefix(after, "error")

				// The same inside a transaction that has just read A: on
				// PostgreSQL the call must run under B's app.tenant_id.
				var inTx string
				err := db.InTx(ctxB, func(ctx context.Context) error {
					if _, err := db.Tenant(store.WithTenant(ctx, a.tenant.ID)); err != nil {
						return fmt.Errorf("reading tenant A at the start of the transaction: %w", err)
					}
					inTx = answer(db, m, ctx, c.args)
					return nil
				})
				if err != nil {
					t.Fatalf("%s in a transaction: %v", m.Name, err)
				}
				if inTx != c.before {
					t.Errorf("%s%s under tenant B, in a transaction that read tenant A, answers differently once tenant A has data:\nbefore: %s\nafter:  %s",
						m.Name, describe(c.args), c.before, inTx)
				}
			}
			// A read that fails on every call compares errors only and
			// proves nothing of what it counts.
			if !answered {
				t.Errorf("%s under tenant B failed on every argument: give isolationArgs values of B's that it answers", m.Name)
			}
		})
	}
}

// answer calls read m under ctx with args and renders its results (what a
// func parameter receives, then what it returns), or its error alone.
func answer(db *store.DB, m reflect.Method, ctx context.Context, args []any) string {
	var b strings.Builder
	fn := reflect.ValueOf(db).MethodByName(m.Name)
	out := callWith(fn, m.Type, ctx, args, func(v reflect.Value) {
		b.WriteString("fn(")
		render(&b, v)
		b.WriteString(") ")
	})
	if err := lastErr(out); err != nil {
		return "error: " + err.Error()
	}
	for _, v := range out[:len(out)-errCount(m.Type)] {
		render(&b, v)
		b.WriteByte(' ')
	}
	return b.String()
}

// render writes v in full: through pointers (not their addresses), maps in
// key order, times in UTC, and an empty slice or map as a nil one.
func render(b *strings.Builder, v reflect.Value) {
	switch v.Kind() {
	case reflect.Invalid:
		b.WriteString("<invalid>")
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		render(b, v.Elem())
	case reflect.Struct:
		if v.CanInterface() {
			if t, ok := v.Interface().(time.Time); ok {
				b.WriteString(t.UTC().Format(time.RFC3339Nano))
				return
			}
		}
		b.WriteString(v.Type().Name() + "{")
		for i := range v.NumField() {
			b.WriteString(v.Type().Field(i).Name + ":")
			render(b, v.Field(i))
			b.WriteByte(' ')
		}
		b.WriteByte('}')
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			b.WriteString(strconv.Quote(string(v.Bytes())))
			return
		}
		b.WriteByte('[')
		for i := range v.Len() {
			render(b, v.Index(i))
			b.WriteByte(' ')
		}
		b.WriteByte(']')
	case reflect.Map:
		entries := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			var e strings.Builder
			render(&e, k)
			e.WriteByte(':')
			render(&e, v.MapIndex(k))
			entries = append(entries, e.String())
		}
		sort.Strings(entries)
		b.WriteString("map[" + strings.Join(entries, " ") + "]")
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		b.WriteString(v.Kind().String())
	default:
		// Numbers and booleans; unexported fields are read this way too.
		fmt.Fprint(b, v)
	}
}
