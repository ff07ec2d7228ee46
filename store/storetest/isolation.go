package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// The isolation suite is generated from the store.Store interface: every
// method that reads the tenant from its context is called under tenant B
// with every argument built from tenant A's rows, and must find nothing of
// A, return nothing of A and change nothing of A. A method added to the
// interface is covered by default; the suite fails when it cannot build an
// argument for it (add a factory to isolationArgs) or when the method runs
// without a tenant and is not listed in globalMethods (gate it, or list it
// with the reason it is global). It is what holds the tenant filter on
// SQLite, where there is no row-level security behind the SQL.

// Why a method is global rather than tenant-scoped.
const (
	whyRegistry   = "the tenants registry itself: the operator's view, no tenant to scope it to"
	whyResolve    = "turns a credential or a URL into a tenant: cross-tenant by design, returns only an id"
	whyVendor     = "a vendor-wide record (applications, signing keys, operator keys, webhooks): belongs to no tenant"
	whyOutbox     = "the global event stream and its deliveries, read by the vendor's dispatcher"
	whyQueue      = "a queue drained by the vendor's workers; the tenant is a field of each row, set by the caller"
	whyConsole    = "the operator console: operators are the one cross-tenant role"
	whyOperations = "operating the database, not reading tenant data"
	whyErasures   = "erase reports outlive their tenant, listed for the operator"
	whyRows       = "writes rows of many tenants at once, each row naming its own tenant"
	whySweep      = "maintenance across every tenant, run tenant by tenant under each one's own scope"
)

// globalMethods are the store methods that do not take the tenant from
// their context, each with the reason. Everything else must refuse to run
// without a tenant and is checked by testEveryMethodIsTenantScoped.
var globalMethods = map[string]string{
	"CreateTenant":         whyRegistry,
	"ListTenants":          whyRegistry,
	"ListTenantsByStatus":  whyRegistry,
	"TenantsDeletedBefore": whyRegistry,
	"FindTenants":          whyConsole,
	"TenantErasures":       whyErasures,

	"ResolveDomain":         whyResolve,
	"ResolveConnection":     whyResolve,
	"ResolveDirectory":      whyResolve,
	"ResolveUser":           whyResolve,
	"ResolvePortalLink":     whyResolve,
	"AuthenticateDirectory": whyResolve,

	"CreateApplication":           whyVendor,
	"Application":                 whyVendor,
	"ListApplications":            whyVendor,
	"UpdateApplication":           whyVendor,
	"RotateApplicationSecret":     whyVendor,
	"EndApplicationSecretOverlap": whyVendor,
	"DeleteApplication":           whyVendor,
	"CreateSigningKey":            whyVendor,
	"SigningKeys":                 whyVendor,
	"SetSigningKeyStatus":         whyVendor,
	"CreateAPIKey":                whyVendor,
	"AuthenticateAPIKey":          whyVendor,
	"TouchAPIKey":                 whyVendor,
	"ListAPIKeys":                 whyVendor,
	"RevokeAPIKey":                whyVendor,
	"CreateWebhook":               whyVendor,
	"Webhooks":                    whyVendor,
	"Webhook":                     whyVendor,
	"UpdateWebhook":               whyVendor,
	"DeleteWebhook":               whyVendor,
	"RotateWebhookSecret":         whyVendor,
	"DisableFailingWebhook":       whyVendor,
	"PurgeDeletedWebhooks":        whyVendor,

	"AppendEvent":        whyOutbox,
	"AppendEvents":       whyOutbox,
	"ListEvents":         whyOutbox,
	"ListEventsMatching": whyOutbox,
	"Event":              whyOutbox,
	"ClaimDeliveries":    whyOutbox,
	"RecordDelivery":     whyOutbox,
	"ReleaseDeliveries":  whyOutbox,
	"ListDeliveries":     whyOutbox,
	"RedeliverDelivery":  whyOutbox,
	"Delivery":           whyOutbox,
	"RecoverDeliveries":  whyOutbox,
	"PurgeEvents":        whyOutbox,
	"RecentEvents":       whyConsole,
	"FailedSignIn":       whyConsole,
	"SignInTenants":      whyConsole,

	"RecordRevocation":         whyQueue,
	"DueRevocations":           whyQueue,
	"ClaimRevocations":         whyQueue,
	"FinishRevocation":         whyQueue,
	"RetryRevocation":          whyQueue,
	"PendingRevocations":       whyQueue,
	"KeptRevocations":          whyQueue,
	"KeepRevocation":           whyQueue,
	"PruneKeptRevocations":     whySweep,
	"SessionStoreEpoch":        whyOperations,
	"AdvanceSessionStoreEpoch": whyOperations,
	"ReapplyTombstones":        whySweep,
	"PruneTombstones":          whySweep,
	"SetLedger":                whyOperations,
	"RaiseSessionStoreApplied": whyOperations,
	"EnqueueLogouts":           whyQueue,
	"DueLogouts":               whyQueue,
	"ClaimLogouts":             whyQueue,
	"RecordLogout":             whyQueue,
	"ReleaseLogouts":           whyQueue,
	"ListLogouts":              whyQueue,
	"RedeliverLogout":          whyQueue,
	"UsageTenants":             whyQueue,
	"WriteSLOMinutes":          whyRows,
	"PruneSLOMinutes":          whySweep,

	"CreateOperator":        whyConsole,
	"Operator":              whyConsole,
	"OperatorByEmail":       whyConsole,
	"OperatorByEnrolToken":  whyConsole,
	"ListOperators":         whyConsole,
	"SetOperatorTOTPSecret": whyConsole,
	"CompleteEnrolment":     whyConsole,
	"ReissueEnrolment":      whyConsole,
	"UseTOTPStep":           whyConsole,
	"UseRecoveryCode":       whyConsole,
	"RecoveryCodesLeft":     whyConsole,
	"RecordOperatorFailure": whyConsole,
	"RecordOperatorLogin":   whyConsole,
	"DisableOperator":       whyConsole,
	"ResetOperator":         whyConsole,
	"CreateOperatorSession": whyConsole,
	"OperatorSession":       whyConsole,
	"TouchOperatorSession":  whyConsole,
	"DeleteOperatorSession": whyConsole,
	"AppendOperatorAudit":   whyConsole,
	"AuditKeys":             whyVendor,
	"OperatorAuditHead":     whyConsole,
	"EnsureAuditKey":        whyOperations,
	"RotateAuditKey":        whyOperations,
	"OperatorAudit":         whyConsole,
	"OperatorAuditLog":      whyVendor,
	"WalkOperatorAudit":     whyConsole,

	"Ping":            whyOperations,
	"QueueStats":      whyOperations,
	"Migrate":         whyOperations,
	"MigrationStatus": whyOperations,
	"Close":           whyOperations,
	// InTx takes the tenant of each statement inside it, not its own; the
	// tenant-scoped methods are called inside a transaction below too.
	"InTx":         whyOperations,
	"ReadTogether": whyOperations,
}

// isolationFixture is a tenant with one row of everything, and the values
// a caller under another tenant might know of it. The fixture is planned
// first (planIsolationFixture: every id chosen, nothing written) and then
// written (write), so that a call can name the rows before they exist.
type isolationFixture struct {
	label   string // "a" or "b": the names and secrets of one tenant
	now     time.Time
	subject string // the upstream subject of the SSO user
	tenant  store.Tenant
	domain  store.Domain
	conn    store.Connection
	dir     store.Directory
	scim    store.User // provisioned by the directory
	sso     store.User // created by a login through the connection
	group   store.Group
	link    store.PortalLink
	audit   store.AuditEvent
	// events are a sign-in, a failed sign-in and a directory change: what
	// the sign-in log, connection health and directory activity read.
	events []store.Event
	// hashes are the secrets of the tenant a thief might hold: the
	// directory's token, the portal link's token and its session.
	hashes [][]byte
	// ids are the identifiers of the tenant's rows; none may appear in
	// anything a call under another tenant returns.
	ids []string
}

// newIsolationFixture writes tenant A and returns a context scoped to it.
func newIsolationFixture(t *testing.T, db *store.DB) (context.Context, *isolationFixture) {
	t.Helper()
	f := planIsolationFixture("a", time.Now().UTC().Truncate(time.Millisecond))
	return f.write(t, db), f
}

// planIsolationFixture chooses the ids and values of tenant label's rows
// without writing any.
func planIsolationFixture(label string, now time.Time) *isolationFixture {
	up, host := strings.ToUpper(label), "tenant-"+label+".test"
	dirToken, linkToken, session := sha256.Sum256([]byte("dir-"+label)), sha256.Sum256([]byte("link-"+label)), sha256.Sum256([]byte("session-"+label))
	f := &isolationFixture{label: label, now: now, subject: "sub-of-tenant-" + label}
	f.hashes = [][]byte{dirToken[:], linkToken[:], session[:]}
	f.tenant = store.Tenant{ID: store.NewID(store.PrefixTenant), Name: "Tenant " + up}
	f.domain = store.Domain{ID: store.NewID(store.PrefixDomain), Domain: host, VerificationToken: "tok-" + label}
	f.conn = store.Connection{ID: store.NewID(store.PrefixConnection), Type: "oidc", Name: up + "'s IdP", Status: store.ConnectionActive,
		Config:  json.RawMessage(`{"issuer":"https://idp.` + host + `"}`),
		Secrets: map[string]string{"client_secret": label + "-secret"}}
	f.dir = store.Directory{ID: store.NewID(store.PrefixDirectory), Name: up + "'s directory", TokenHash: dirToken[:]}
	f.scim = store.User{ID: store.NewID(store.PrefixUser), DirectoryID: f.dir.ID, ExternalID: "ext-" + label, UserName: "scim@" + host,
		Email: "scim@" + host, DisplayName: "SCIM " + up, Active: true}
	f.sso = store.User{ID: store.NewID(store.PrefixUser), Email: "sso@" + host, EmailVerified: true, DisplayName: "SSO " + up, Active: true}
	f.group = store.Group{ID: store.NewID(store.PrefixGroup), DirectoryID: f.dir.ID, DisplayName: up + "'s group"}
	f.audit = store.AuditEvent{ID: store.NewID(store.PrefixAudit), Action: "tenant-" + label + ".acted",
		Actor: store.Actor{Type: "operator", ID: "op_" + label}, Resource: store.Resource{Type: "user", ID: f.scim.ID}}
	f.link = store.PortalLink{ID: store.NewID(store.PrefixPortalLink), Intent: store.IntentSSO, TokenHash: linkToken[:], ExpiresAt: now.Add(time.Hour)}
	event := func(typ, data string) store.Event {
		return store.Event{ID: store.NewID(store.PrefixEvent), TenantID: f.tenant.ID, Type: typ, Data: json.RawMessage(data)}
	}
	f.events = []store.Event{
		event(store.SignInSucceeded, fmt.Sprintf(`{"connection_id":%q,"email":%q,"user_id":%q}`, f.conn.ID, f.sso.Email, f.sso.ID)),
		event(store.SignInFailed, fmt.Sprintf(`{"connection_id":%q,"email":%q,"reason":"signature of %s"}`, f.conn.ID, f.sso.Email, up)),
		event("dsync.user.created", fmt.Sprintf(`{"directory_id":%q,"user_id":%q}`, f.dir.ID, f.scim.ID)),
	}
	f.ids = []string{f.tenant.ID, f.domain.ID, f.conn.ID, f.dir.ID, f.scim.ID, f.sso.ID, f.group.ID, f.link.ID, f.audit.ID}
	for _, e := range f.events {
		f.ids = append(f.ids, e.ID)
	}
	return f
}

// write stores the planned rows (and some that only count: usage, SLO
// minutes, a domain check, a test login, a SCIM error), keeps what the
// store answered in f, and returns a context scoped to the tenant.
func (f *isolationFixture) write(t *testing.T, db *store.DB) context.Context {
	t.Helper()
	bg, up := context.Background(), strings.ToUpper(f.label)
	f.tenant = must(db.CreateTenant(bg, f.tenant))
	ctx := store.WithTenant(bg, f.tenant.ID)
	must(db.AddDomain(ctx, f.domain))
	f.domain = must(db.MarkDomainVerified(ctx, f.domain.ID))
	must(0, db.RecordDomainCheck(ctx, f.domain.ID, f.now, ""))
	f.conn = must(db.CreateConnection(ctx, f.conn))
	must(0, db.SaveConnectionTest(ctx, store.ConnectionTest{ConnectionID: f.conn.ID, OK: true, ConnUpdatedAt: f.conn.UpdatedAt, Result: json.RawMessage(`{}`), CreatedAt: f.now}))
	f.dir = must(db.CreateDirectory(ctx, f.dir))
	f.scim = must(db.CreateUser(ctx, f.scim))
	// A user of no directory, linked to the connection by its email at
	// the first login: created here so that its id is the planned one.
	must(db.CreateUser(ctx, f.sso))
	f.sso = must(db.UpsertSSOUser(ctx, f.conn.ID, f.subject, f.sso))
	must(db.CreateGroup(ctx, f.group))
	must(db.AddDirectoryMembers(ctx, f.group.ID, []string{f.scim.ID}))
	f.group = must(db.Group(ctx, f.group.ID))
	f.audit = must(db.AppendAudit(ctx, f.audit))
	must(0, db.RecordSCIMError(ctx, store.SCIMError{DirectoryID: f.dir.ID, Status: 400, Method: "PATCH", Path: "/Users/" + f.scim.ID, Detail: up + "'s error"}))
	must(db.CreatePortalLink(ctx, f.link))
	if _, opened, err := db.OpenPortalLink(ctx, f.hashes[1], f.hashes[2], f.now, f.now.Add(time.Hour)); err != nil || !opened {
		t.Fatalf("open %s's portal link: %v %v", up, opened, err)
	}
	f.link = must(db.PortalSession(ctx, f.link.ID, f.hashes[2], f.now))
	must(db.RecordUsage(ctx, store.UsageRecord{IdempotencyKey: "usage-" + f.label, Meter: store.MeterLogin, Subject: f.sso.ID, Value: 1, At: f.now}))
	must(db.RecordUsage(ctx, store.UsageRecord{IdempotencyKey: "connections-" + f.label, Meter: store.MeterConnections, Value: 1, At: f.now}))
	for i, e := range f.events {
		f.events[i] = must(db.AppendEvent(bg, e))
	}
	m := store.SLOMinute{TenantID: f.tenant.ID, Kind: store.SLOSignIn, Minute: f.now.Truncate(time.Minute), Node: "node-" + f.label,
		SLOCounts: store.SLOCounts{OK: 2, ClientErrors: 1}}
	m.Latency[1] = 3
	must(0, db.WriteSLOMinutes(bg, []store.SLOMinute{m}))
	return ctx
}

// isolationArgs builds, for each parameter type of a store method, the
// values a caller under B could pass that name or carry A's data. A new
// parameter type fails the suite until it has an entry here.
func isolationArgs(f *isolationFixture) map[reflect.Type][]any {
	past, future := f.now.Add(-48*time.Hour), f.now.Add(48*time.Hour)
	noID := func(u store.User) store.User { u.ID, u.DisplayName = "", "written by B"; return u }
	renamed := func(u store.User) store.User { u.DisplayName = "written by B"; return u }
	name := "renamed by B"
	status := store.TenantPaused
	dirUsers := store.SignInDirectoryUsers
	strs := append(append([]string{}, f.ids...), f.domain.Domain, f.scim.Email, f.sso.Email, f.subject, f.scim.ExternalID, "tenant-"+f.label, "")
	return map[reflect.Type][]any{
		typeOf[string]():        toAny(strs),
		typeOf[[]byte]():        toAny(f.hashes),
		typeOf[[]string]():      {[]string{f.scim.ID, f.sso.ID}},
		typeOf[int]():           {100},
		typeOf[int64]():         {0, f.scim.Version},
		typeOf[time.Time]():     {past, f.now, future},
		typeOf[time.Duration](): {time.Duration(0), time.Hour},
		typeOf[store.Page]():    {store.Page{Limit: 100}},
		typeOf[store.Domain](): {
			f.domain,
			store.Domain{Domain: f.domain.Domain, VerificationToken: "tok-b"},
		},
		typeOf[store.Connection](): {
			func() store.Connection { c := f.conn; c.Name = name; return c }(),
		},
		typeOf[store.Directory](): {
			f.dir,
			store.Directory{Name: "B's directory", TokenHash: f.hashes[0]},
		},
		typeOf[store.User](): {renamed(f.scim), noID(f.scim), renamed(f.sso), noID(f.sso)},
		typeOf[store.Group](): {
			func() store.Group { g := f.group; g.DisplayName = name; return g }(),
			store.Group{DirectoryID: f.dir.ID, DisplayName: "B's group in A's directory"},
		},
		typeOf[store.StableSSOKey](): {store.StableSSOKey{Scheme: store.PrefixUser, Previous: f.subject}, store.StableSSOKey{Scheme: "x", Previous: f.subject}},
		typeOf[store.UserQuery]():    {store.UserQuery{}, store.UserQuery{DirectoryID: f.dir.ID}},
		typeOf[store.GroupQuery]():   {store.GroupQuery{}, store.GroupQuery{DirectoryID: f.dir.ID}},
		typeOf[store.TenantUpdate](): {
			store.TenantUpdate{Name: &name, Status: &status},
			store.TenantUpdate{SignInPolicy: &dirUsers},
		},
		typeOf[store.AuditEvent](): {
			store.AuditEvent{Action: "b.acted"},
		},
		typeOf[store.PortalLink](): {
			f.link,
			store.PortalLink{Intent: store.IntentSSO, TokenHash: f.hashes[1], ExpiresAt: future},
		},
		typeOf[store.ConnectionTest](): {
			store.ConnectionTest{ConnectionID: f.conn.ID, OK: false, Result: json.RawMessage(`{}`), CreatedAt: f.now},
		},
		typeOf[store.UsageRecord](): {
			store.UsageRecord{IdempotencyKey: "usage-" + f.label, Meter: store.MeterLogin, Subject: f.sso.ID, Value: 1, At: f.now},
		},
		typeOf[store.Actor](): {store.Actor{Type: "operator", ID: "op_b"}},
		typeOf[store.LogQuery](): {
			store.LogQuery{}, store.LogQuery{Actor: f.sso.Email}, store.LogQuery{Actor: f.audit.Actor.ID, Action: f.audit.Action},
			// One row a page: a row of another tenant counted would show
			// as a cursor to an older page.
			store.LogQuery{Limit: 1},
			// Another tenant's rows as cursors: unknown, not a page.
			store.LogQuery{After: f.events[0].ID}, store.LogQuery{After: f.audit.ID},
		},
		typeOf[store.SCIMError](): {
			store.SCIMError{DirectoryID: f.dir.ID, Status: 409, Method: "POST", Path: "/Users", Detail: "written by B"},
		},
		typeOf[map[string]any](): {map[string]any{"note": "B"}},
	}
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

func toAny[T any](v []T) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}

// acceptedErrors are the errors a tenant-scoped method may answer under B
// with A's arguments: not found, or a refusal of the value itself.
var acceptedErrors = []error{store.ErrNotFound, store.ErrInvalid, store.ErrConflict, store.ErrVersionMismatch}

func testEveryMethodIsTenantScoped(t *testing.T, db *store.DB) {
	ctxA, f := newIsolationFixture(t, db)
	args := isolationArgs(f)
	before := isolationSnapshot(t, db, ctxA, f)
	ctxType := typeOf[context.Context]()

	st := reflect.TypeFor[store.Store]()
	for i := range st.NumMethod() {
		m := st.Method(i)
		if _, ok := globalMethods[m.Name]; ok {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			if m.Type.NumIn() == 0 || m.Type.In(0) != ctxType {
				t.Fatalf("%s does not take a context first; list it in globalMethods with a reason, or fix its signature", m.Name)
			}
			fn := reflect.ValueOf(db).MethodByName(m.Name)
			cands, err := argCandidates(m, args)
			if err != nil {
				t.Fatal(err)
			}

			// Without a tenant the method must refuse before any SQL.
			out := call(fn, m.Type, context.Background(), first(cands), func(string) {})
			if err := lastErr(out); !errors.Is(err, store.ErrNoTenant) {
				t.Fatalf("%s runs without a tenant (err = %v): gate it on the tenant in ctx, or list it in globalMethods with the reason it is global", m.Name, err)
			}

			// Under B (a tenant of its own per method, so that a delete of
			// B's tenant does not hide the calls after it), every
			// combination of A's values, outside and inside a transaction.
			ctxB, _ := newTenant(t, db, "Tenant B "+m.Name)
			combos := product(cands)
			if strings.HasPrefix(m.Name, "Create") {
				// A creation names no existing row: the store assigns the
				// id. (Ids are unique per tenant only, so a caller-chosen
				// id of A's would be B's own row, echoed back.)
				combos = withoutIDs(combos)
			}
			for _, combo := range combos {
				for _, inTx := range []bool{false, true} {
					var leaked []string
					seen := func(s string) {
						for _, id := range f.ids {
							if strings.Contains(s, id) {
								leaked = append(leaked, id)
							}
						}
					}
					var out []reflect.Value
					// Returning the method's error rolls the transaction
					// back: on PostgreSQL a refused statement aborts it.
					run := func(ctx context.Context) error {
						out = call(fn, m.Type, ctx, combo, seen)
						return lastErr(out)
					}
					if inTx {
						// One transaction that reads A first and then calls
						// under B: each statement must run under its own
						// ctx's tenant (on PostgreSQL, app.tenant_id is
						// switched inside the transaction).
						err := db.InTx(ctxB, func(ctx context.Context) error {
							if _, err := db.User(store.WithTenant(ctx, f.tenant.ID), f.scim.ID); err != nil {
								t.Errorf("reading A's user at the start of the transaction: %v", err)
							}
							return run(ctx)
						})
						if err != nil && lastErr(out) == nil {
							t.Fatalf("%s in a transaction: %v", m.Name, err)
						}
					} else {
						_ = run(ctxB)
					}
					err := lastErr(out)
					if err != nil && !isAny(err, acceptedErrors) {
						t.Errorf("%s%s under tenant B: unexpected error %v (expected not found, or a documented refusal)", m.Name, describe(combo), err)
					}
					// What comes with an error is not an answer (some
					// methods hand their argument back with it).
					if err == nil {
						for _, v := range out[:len(out)-errCount(m.Type)] {
							walkStrings(v, seen)
						}
					}
					if len(leaked) > 0 {
						t.Errorf("%s%s under tenant B (in a transaction: %v) returned tenant A's %v", m.Name, describe(combo), inTx, leaked)
					}
				}
			}
			if after := isolationSnapshot(t, db, ctxA, f); after != before {
				t.Errorf("%s under tenant B changed tenant A's data:\nbefore: %s\nafter:  %s", m.Name, before, after)
				before = after // report each method that changes A once
			}
		})
	}
}

// argCandidates lists, for each parameter of m after the context, the
// values args holds for its type; a func parameter gets a placeholder that
// call turns into a function. A type args has no values of is an error.
func argCandidates(m reflect.Method, args map[reflect.Type][]any) ([][]any, error) {
	var cands [][]any
	for j := 1; j < m.Type.NumIn(); j++ {
		pt := m.Type.In(j)
		vals, ok := args[pt]
		if pt.Kind() == reflect.Func {
			vals, ok = []any{nil}, true
		}
		if !ok {
			return nil, fmt.Errorf("%s takes a %v and isolationArgs has no values of that type: add some built from a tenant's rows", m.Name, pt)
		}
		cands = append(cands, vals)
	}
	return cands, nil
}

// withoutIDs clears the ID field of every struct argument.
func withoutIDs(combos [][]any) [][]any {
	for _, combo := range combos {
		for i, a := range combo {
			v := reflect.ValueOf(a)
			if v.Kind() != reflect.Struct {
				continue
			}
			cp := reflect.New(v.Type()).Elem()
			cp.Set(v)
			if f := cp.FieldByName("ID"); f.IsValid() && f.Kind() == reflect.String {
				f.SetString("")
			}
			combo[i] = cp.Interface()
		}
	}
	return combos
}

// call invokes fn with ctx and args; a func parameter gets a function that
// passes every string of each value it receives to seen and returns nil.
func call(fn reflect.Value, mt reflect.Type, ctx context.Context, args []any, seen func(string)) []reflect.Value {
	return callWith(fn, mt, ctx, args, func(v reflect.Value) { walkStrings(v, seen) })
}

// callWith is call with a func parameter that passes each value it
// receives to got.
func callWith(fn reflect.Value, mt reflect.Type, ctx context.Context, args []any, got func(reflect.Value)) []reflect.Value {
	in := []reflect.Value{reflect.ValueOf(ctx)}
	for j, a := range args {
		pt := mt.In(j + 1)
		if pt.Kind() == reflect.Func {
			in = append(in, reflect.MakeFunc(pt, func(vs []reflect.Value) []reflect.Value {
				for _, v := range vs {
					got(v)
				}
				outs := make([]reflect.Value, pt.NumOut())
				for k := range outs {
					outs[k] = reflect.Zero(pt.Out(k))
				}
				return outs
			}))
			continue
		}
		in = append(in, reflect.ValueOf(a).Convert(pt))
	}
	return fn.Call(in)
}

func errCount(mt reflect.Type) int {
	if mt.NumOut() > 0 && mt.Out(mt.NumOut()-1) == typeOf[error]() {
		return 1
	}
	return 0
}

func lastErr(out []reflect.Value) error {
	if len(out) == 0 {
		return nil
	}
	err, _ := out[len(out)-1].Interface().(error)
	return err
}

func isAny(err error, targets []error) bool {
	for _, e := range targets {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func first(cands [][]any) []any {
	out := make([]any, len(cands))
	for i, c := range cands {
		out[i] = c[0]
	}
	return out
}

// product is every combination of one value per parameter.
func product(cands [][]any) [][]any {
	out := [][]any{{}}
	for _, vals := range cands {
		var next [][]any
		for _, prefix := range out {
			for _, v := range vals {
				next = append(next, append(append([]any{}, prefix...), v))
			}
		}
		out = next
	}
	return out
}

func describe(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case []byte:
			parts[i] = fmt.Sprintf("hash:%x", v[:4])
		case time.Time:
			parts[i] = v.Format(time.RFC3339)
		default:
			parts[i] = fmt.Sprintf("%+v", a)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// walkStrings calls fn on every string reachable from v: fields, elements,
// map keys and values, through pointers and interfaces.
func walkStrings(v reflect.Value, fn func(string)) {
	switch v.Kind() {
	case reflect.String:
		fn(v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), fn)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			fn(string(v.Bytes())) // raw JSON and the like
			return
		}
		for i := range v.Len() {
			walkStrings(v.Index(i), fn)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			walkStrings(k, fn)
			walkStrings(v.MapIndex(k), fn)
		}
	}
}

// isolationSnapshot renders what tenant A holds, read under A, so that a
// change made from B shows as a difference.
func isolationSnapshot(t *testing.T, db *store.DB, ctx context.Context, f *isolationFixture) string {
	t.Helper()
	var b strings.Builder
	add := func(name string, v any, err error) {
		fmt.Fprintf(&b, "%s=", name)
		if err != nil {
			fmt.Fprintf(&b, "error(%v) ", err)
			return
		}
		fmt.Fprintf(&b, "%+v ", v)
	}
	tn, err := db.Tenant(ctx)
	add("tenant", []string{tn.Name, string(tn.Status), tn.Tier, tn.UpdatedAt.String()}, err)
	ds, err := db.Domains(ctx)
	for i := range ds {
		add("domain", []string{ds[i].ID, ds[i].Domain, fmt.Sprint(ds[i].Verified)}, nil)
	}
	add("domains", len(ds), err)
	cs, err := db.Connections(ctx)
	add("connections", cs, err)
	dirs, err := db.Directories(ctx)
	add("directories", dirs, err)
	us, n, err := db.FindUsers(ctx, store.UserQuery{Limit: 1000})
	add("users", us, err)
	add("userCount", n, nil)
	gs, n, err := db.FindGroups(ctx, store.GroupQuery{Limit: 1000})
	add("groups", gs, err)
	add("groupCount", n, nil)
	for _, g := range gs {
		ms, _, err := db.GroupMembers(ctx, g.ID, store.Page{Limit: 1000})
		add("members", ms, err)
	}
	ct, err := db.ConnectionTest(ctx, f.conn.ID)
	add("connectionTest", []string{fmt.Sprint(ct.OK), string(ct.Result)}, err)
	checks, err := db.DomainChecks(ctx)
	keys := make([]string, 0, len(checks))
	for k, c := range checks {
		keys = append(keys, k+":"+c.Failure)
	}
	sort.Strings(keys)
	add("domainChecks", keys, err)
	audit, _, err := db.AuditEvents(ctx, "", store.Page{Limit: 1000})
	for _, e := range audit {
		add("audit", e.Hash, nil)
	}
	add("auditCount", len(audit), err)
	link, err := db.PortalSession(ctx, f.link.ID, f.hashes[2], f.now)
	add("portalSession", []string{link.ID, fmt.Sprint(link.SessionExpiresAt != nil && link.SessionExpiresAt.After(f.now))}, err)
	scimErrs, err := db.SCIMErrors(ctx, f.dir.ID)
	add("scimErrors", len(scimErrs), err)
	for _, e := range scimErrs {
		add("scimError", e.ID+" "+e.Detail, nil)
	}
	days, err := db.UsageByDay(ctx, f.now.Add(-48*time.Hour), f.now.Add(48*time.Hour))
	add("usage", fmt.Sprint(days), err)
	return b.String()
}
