package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
)

const apikeyHelp = `
Manage operator API keys, the credentials of the operator API (/api/v1).

	apikey create [--name NAME]   create a key and print it, once, on stdout
	apikey list                   list keys: id, name, prefix, created, last used, revoked
	apikey revoke ID              stop a key from authenticating, at once

Only a hash of the key is stored: copy it now, it cannot be shown again.`

func runAPIKey(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "apikey create|list|revoke [flags]", apikeyHelp, args, "create", "list", "revoke")
	if sub == "" {
		return err
	}
	var id string // apikey revoke ID [flags]
	if sub == "revoke" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	fs := newFlagSet(c, "apikey "+sub+" [flags]", apikeyHelp)
	name := fs.String("name", "cli", "a name that tells this key apart from the others (create)")
	var asJSON, yes *bool
	switch sub {
	case "create", "list":
		asJSON = addJSONFlag(fs)
	case "revoke":
		yes = addYesFlag(fs)
	}
	addDatabaseFlag(fs)
	if err := parseFlags(c, fs, rest); err != nil {
		return err
	}
	if sub == "revoke" && id == "" {
		// Said before the database is opened: a command line that names
		// no key needs no database to be wrong.
		return usageError(c, fs, "takes the id of the key to revoke (ak_…; see apikey list)")
	}
	cfg, err := databaseConfig(c, fs)
	if err != nil {
		return err
	}
	st, _, log, err := openAdminStore(ctx, c, cfg, dbMigrated)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "list":
		keys, err := st.ListAPIKeys(ctx)
		if err != nil {
			return fmt.Errorf("list API keys: %w", err)
		}
		if *asJSON {
			type apiKey struct {
				ID         string     `json:"id"`
				Name       string     `json:"name"`
				Prefix     string     `json:"prefix"`
				CreatedAt  *time.Time `json:"created_at"`
				LastUsedAt *time.Time `json:"last_used_at"` // null: never
				RevokedAt  *time.Time `json:"revoked_at"`   // null: valid
			}
			out := make([]apiKey, 0, len(keys))
			for _, k := range keys {
				out = append(out, apiKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix,
					CreatedAt: utc(&k.CreatedAt), LastUsedAt: utc(k.LastUsedAt), RevokedAt: utc(k.RevokedAt)})
			}
			return writeJSON(c.stdout, out)
		}
		tb := newTable("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED")
		for _, k := range keys {
			tb.add(k.ID, k.Name, k.Prefix+"…", timeOr(&k.CreatedAt, ""), timeOr(k.LastUsedAt, "never"), timeOr(k.RevokedAt, "-"))
		}
		return tb.write(c.stdout)
	case "revoke":
		if err := confirm(c, *yes, fmt.Sprintf("Revoke API key %s? Whatever uses it is refused at once.", id)); err != nil {
			return err
		}
		// Who can call the operator API is in the operators' trail, with
		// the change itself.
		err := st.InTx(ctx, func(ctx context.Context) error {
			if err := st.RevokeAPIKey(ctx, id); err != nil {
				return err
			}
			return cliAudit(ctx, st, "api_key.revoked", "api_key", map[string]any{"id": id})
		})
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no unrevoked API key %s", id)
			}
			return fmt.Errorf("revoke API key: %w", err)
		}
		log.Info("revoked operator API key", "id", id)
		fmt.Fprintf(c.stdout, "revoked %s\n", id)
		return nil
	}
	var (
		key string
		k   store.APIKey
	)
	err = st.InTx(ctx, func(ctx context.Context) error {
		var err error
		if key, k, err = adminportal.CreateAPIKey(ctx, st, *name); err != nil {
			return err
		}
		return cliAudit(ctx, st, "api_key.created", "api_key", map[string]any{"id": k.ID, "name": k.Name})
	})
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	// The key on stdout only (never in the log): alone on its line, so
	// that KEY=$(idbroker apikey create) captures it, or in --json with
	// what tells it apart later (its id, for apikey revoke).
	if *asJSON {
		if err := writeJSON(c.stdout, struct {
			ID        string     `json:"id"`
			Name      string     `json:"name"`
			Prefix    string     `json:"prefix"`
			CreatedAt *time.Time `json:"created_at"`
			Key       string     `json:"key"`
		}{k.ID, k.Name, k.Prefix, utc(&k.CreatedAt), key}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.stdout, key)
	}
	log.Info("created operator API key; it is shown once", "id", k.ID, "name", k.Name)
	return nil
}

const keysHelp = `
Manage the broker's token-signing keys and the master key.

	keys rotate [--overlap DURATION]   create new active keys (RS256 and ES256)
	keys rewrap [--batch N]            re-seal every stored secret under
	                                   IDBROKER_MASTER_KEY
	keys rotate-audit                  create a new audit key for the
	                                   audit log's macs

rotate: the new keys are published in the JWKS at once and start signing
six minutes later, on every broker together, so that relying parties
caching the JWKS (five minutes, as /.well-known/jwks.json tells them) hold
a new key before any token signed with it. The keys they replace sign until
then and stay published for the overlap, so that tokens they signed keep
verifying. A replaced key whose overlap ends within a day (a short
--overlap) stops signing at once instead.

rewrap: after a master-key rotation (the new key in IDBROKER_MASTER_KEY, the
old ones in IDBROKER_MASTER_KEY_PREVIOUS, on every node), moves every sealed
secret under the new key, row by row, while the brokers keep serving. It can
be interrupted and run again; it ends by checking that every secret opens
under the new key alone. Then IDBROKER_MASTER_KEY_PREVIOUS can be dropped.

rotate-audit: audit rows written from now on get their mac under a new
audit key (on every broker within a minute); the older keys stay, so every
row keeps verifying. Do it, with rotate and a new master key, after the
master key may have leaked together with the database: rows written after
it cannot be vouched for by whoever held them.`

func runKeys(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "keys rotate|rewrap|rotate-audit [flags]", keysHelp, args, "rotate", "rewrap", "rotate-audit")
	if sub == "" {
		return err
	}
	switch sub {
	case "rewrap":
		return runRewrap(ctx, c, rest)
	case "rotate-audit":
		return runRotateAudit(ctx, c, rest)
	}
	fs := newFlagSet(c, "keys rotate [flags]", keysHelp)
	overlap := fs.Duration("overlap", signing.DefaultOverlap, "how long replaced keys stay in the JWKS; must outlive the longest token lifetime")
	yes := addYesFlag(fs)
	addDatabaseFlag(fs)
	if err := parseFlags(c, fs, rest); err != nil {
		return err
	}
	if *overlap < 0 {
		return usageError(c, fs, "--overlap must not be negative")
	}
	cfg, err := databaseConfig(c, fs)
	if err != nil {
		return err
	}
	st, _, log, err := openAdminStore(ctx, c, cfg, dbMigrated)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := confirm(c, *yes, fmt.Sprintf("Rotate the signing keys of %s? The current ones stop signing in six minutes.", databaseName(cfg))); err != nil {
		return err
	}
	m, err := signing.NewManager(st, signing.Options{Logger: log})
	if err != nil {
		return err
	}
	keys, err := m.Rotate(ctx, *overlap)
	if err != nil {
		return fmt.Errorf("rotate signing keys: %w", err)
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		log.Info("new signing key", "id", k.ID, "alg", k.Alg)
		ids = append(ids, k.ID)
	}
	if err := cliAudit(ctx, st, "signing_keys.rotated", "signing_key", map[string]any{"new_keys": ids, "overlap": overlap.String()}); err != nil {
		return err
	}
	from := "now"
	for _, k := range keys {
		if s, err := m.Signer(k.Alg); err == nil && s.ID() != k.ID {
			from = k.CreatedAt.Add(signing.DefaultPublishLead).UTC().Format(time.RFC3339)
		}
	}
	fmt.Fprintf(c.stdout, "signing keys rotated; the new ones are published now and sign from %s; the old ones stay in the JWKS until %s\n",
		from, time.Now().Add(*overlap).UTC().Format(time.RFC3339))
	return nil
}

// runRotateAudit is `keys rotate-audit`: see keysHelp.
func runRotateAudit(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet(c, "keys rotate-audit [flags]", keysHelp)
	yes := addYesFlag(fs)
	addDatabaseFlag(fs)
	if err := parseFlags(c, fs, args); err != nil {
		return err
	}
	cfg, err := databaseConfig(c, fs)
	if err != nil {
		return err
	}
	st, _, log, err := openAdminStore(ctx, c, cfg, dbMigrated)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := confirm(c, *yes, fmt.Sprintf("Create a new audit key for %s? New audit rows are vouched for by it; the old keys stay for the rows they vouch for.", databaseName(cfg))); err != nil {
		return err
	}
	// The first key is made by the first append when there is none: make
	// it, so that a rotation always leaves a newer key than the rows have.
	if err := st.EnsureAuditKey(ctx); err != nil {
		return err
	}
	version, err := st.RotateAuditKey(ctx)
	if err != nil {
		return fmt.Errorf("rotate the audit key: %w", err)
	}
	log.Info("new audit key", "version", version)
	// Its row is the first with a mac under the new key.
	if err := cliAudit(ctx, st, "audit_key.rotated", "audit_key", map[string]any{"version": version}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "audit key rotated: new rows get their mac under version %d (every broker within %s); the older versions stay, so every row keeps verifying\n",
		version, store.AuditKeyRecheck)
	return nil
}

// runRewrap is `keys rewrap`: see keysHelp.
func runRewrap(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet(c, "keys rewrap [flags]", keysHelp)
	batch := fs.Int("batch", 100, "rows read per batch; each row is rewritten in a transaction of its own")
	yes := addYesFlag(fs)
	addDatabaseFlag(fs)
	if err := parseFlags(c, fs, args); err != nil {
		return err
	}
	if *batch < 1 {
		return usageError(c, fs, "--batch must be at least 1")
	}
	cfg, err := databaseConfig(c, fs)
	if err != nil {
		return err
	}
	// Like the other commands, it refuses a database that is not there
	// (it would create one, and a master key, wherever it was run).
	st, kr, log, err := openAdminStore(ctx, c, cfg, dbMigrated)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := confirm(c, *yes, fmt.Sprintf("Re-seal every secret of %s under master key %s?", databaseName(cfg), kr.PrimaryID())); err != nil {
		return err
	}
	stats, err := st.RewrapSecrets(ctx, *batch, kr.SealedWithPrimary, kr.Rewrap)
	printRewrap(c, stats)
	if err != nil {
		return fmt.Errorf("rewrap: %w (run it again to finish: rows done stay done)", err)
	}
	// The proof: a second pass finds nothing left under an older key.
	again, err := st.RewrapSecrets(ctx, *batch, kr.SealedWithPrimary, func([]byte) ([]byte, error) {
		return nil, errors.New("a secret is still sealed under an older master key")
	})
	if err != nil {
		return fmt.Errorf("rewrap check: %w", err)
	}
	total := 0
	for _, n := range again.Current {
		total += n
	}
	if err := cliAudit(ctx, st, "master_key.rewrapped", "master_key", map[string]any{
		"key_id": kr.PrimaryID(), "rewrapped": stats.Rewrapped, "changed_meanwhile": stats.Raced, "secrets": total,
	}); err != nil {
		return err
	}
	log.Info("every stored secret is sealed under the primary master key; IDBROKER_MASTER_KEY_PREVIOUS may be removed",
		"key_id", kr.PrimaryID(), "secrets", total)
	fmt.Fprintf(c.stdout, "all %d secrets are sealed under the primary master key\n", total)
	return nil
}

func printRewrap(c *cli, s store.RewrapStats) {
	tb := newTable("COLUMN", "REWRAPPED", "ALREADY CURRENT", "CHANGED MEANWHILE")
	for _, col := range s.Columns() {
		tb.add(col, s.Rewrapped[col], s.Current[col], s.Raced[col])
	}
	tb.write(c.stdout) //nolint:errcheck // a summary on the terminal
}

// cliAudit appends a row to the vendor's own audit trail (the one the
// console shows) for a change made from the command line.
func cliAudit(ctx context.Context, st *store.DB, action, resource string, details map[string]any) error {
	b, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	if _, err := st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
		Actor: store.Actor{Type: "system", ID: "idbroker-cli"}, Action: action,
		Resource: store.Resource{Type: resource}, Context: b,
	}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// subcommand splits "<group> <sub> [flags]" for command groups such as
// apikey and keys. It returns sub == "" when there is nothing more to do:
// err is then flag.ErrHelp (help was printed) or errUsage.
func subcommand(c *cli, synopsis, help string, args []string, subs ...string) (sub string, rest []string, err error) {
	fs := newFlagSet(c, synopsis, help)
	if len(args) == 0 {
		fs.Usage()
		return "", nil, errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fs.SetOutput(c.stdout)
		fs.Usage()
		return "", nil, flag.ErrHelp
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	group, _, _ := strings.Cut(synopsis, " ")
	fmt.Fprintf(c.stderr, "idbroker %s: unknown %s command %q\nRun \"idbroker %s --help\" for usage.\n", group, group, args[0], group)
	return "", nil, errUsage
}
