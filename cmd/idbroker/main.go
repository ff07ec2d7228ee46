// Command idbroker is the idbroker identity broker: an OpenID Provider for a
// SaaS vendor's applications that routes each user to their company's own
// SAML or OIDC identity provider, and a SCIM 2.0 server for their
// directories.
//
// Usage:
//
//	idbroker <command> [flags]
//
// The commands are:
//
//	serve            run the broker (migrates the database first)
//	migrate up       apply pending database migrations
//	migrate status   list migrations and whether each has run
//	apikey create    create an operator API key and print it once
//	apikey list      list operator API keys
//	apikey revoke    revoke an operator API key
//	operator create  create a console operator and print their enrolment link
//	operator list    list console operators
//	operator disable disable a console operator
//	operator reset   send an enrolled operator back to enrolment
//	keys rotate      make new token-signing keys active
//	keys rewrap      re-seal every stored secret under the master key
//	audit verify     check every tenant's audit hash chain
//	healthcheck      exit 0 when the local broker answers /readyz with 200
//	version          print the version
//
// Configuration comes from IDBROKER_* environment variables, which flags
// override; see README.md or "idbroker serve --help". With no configuration
// at all, serve runs the embedded deployment: a SQLite database and a
// generated master key in ./.idbroker, sessions in process.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed, or the configuration is bad
	exitUsage = 2 // the command line itself is wrong
	// exitUnchecked is audit verify's answer when it could not check the
	// log (database unreachable, unknown tenant, unreadable anchors): a
	// schedule alerts on it differently from a broken chain (exitError).
	exitUnchecked = 3
)

// cli is what a subcommand may touch of the outside world. Tests run
// commands through it in-process.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdin answers confirm's question, asked only when interactive (stdin
	// is a terminal): a script's commands never wait for an answer.
	stdin       io.Reader
	interactive bool
}

// stdinTerminal returns the process's standard input and whether it is a
// terminal (a character device: not a pipe, a file or /dev/null).
var stdinTerminal = func() (io.Reader, bool) {
	fi, err := os.Stdin.Stat()
	return os.Stdin, err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// command is one subcommand. run receives the arguments after its name and
// returns errUsage (after printing why) for a bad command line.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the broker (migrates the database first)", runServe},
		{"migrate", "apply pending migrations (up) or list them (status)", runMigrate},
		{"apikey", "manage operator API keys (create, list, revoke)", runAPIKey},
		{"operator", "manage console operators (create, list, disable, reset)", runOperator},
		{"keys", "manage token-signing keys, the master key and the audit key (rotate, rewrap, rotate-audit)", runKeys},
		{"audit", "check the audit log's hash chains (verify)", runAudit},
		{"restore-check", "after a database restore, apply again the revocations it forgot", runRestoreCheck},
		{"healthcheck", "exit 0 when the local broker's /readyz answers 200", runHealthcheck},
		{"version", "print the version and exit", runVersion},
	}
}

// errUsage reports a command line that could not be understood; the
// usage has been printed already.
var errUsage = errors.New("usage error")

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	c.stdin, c.interactive = stdinTerminal()
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(rest) > 0 && name == "help" {
			// "idbroker help serve" is "idbroker serve --help".
			name, rest = rest[0], []string{"--help"}
			break
		}
		usage(stdout)
		return exitOK
	case "-v", "-version", "--version":
		name = "version"
	}
	for _, cmd := range commands() {
		if cmd.name != name {
			continue
		}
		err := cmd.run(ctx, c, rest)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			return exitUsage
		case errors.Is(err, errAborted):
			fmt.Fprintf(stderr, "idbroker %s: %v\n", name, err)
			return exitError
		case errors.Is(err, errUnchecked):
			fmt.Fprintf(stderr, "idbroker %s: %v\n", name, err)
			return exitUnchecked
		default:
			if ce := (*ConfigError)(nil); errors.As(err, &ce) {
				// One line per bad value, so all of them can be fixed at once.
				msg := strings.ReplaceAll(err.Error(), "\n", "\n\t")
				fmt.Fprintf(stderr, "idbroker %s: invalid configuration:\n\t%s\n", name, msg)
				return exitError
			}
			fmt.Fprintf(stderr, "idbroker %s: %v\n", name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "idbroker: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString(`idbroker is a B2B identity broker: an OpenID Provider for your applications
that routes each user to their company's SAML or OIDC identity provider, and
a SCIM 2.0 server for their directories.

Usage:

	idbroker <command> [flags]

Commands:

`)
	// As wide as the longest name, so that every summary starts in one
	// column ("restore-check" outgrew a fixed width).
	width := 0
	for _, cmd := range commands() {
		width = max(width, len(cmd.name))
	}
	for _, cmd := range commands() {
		fmt.Fprintf(&b, "\t%-*s  %s\n", width, cmd.name, cmd.summary)
	}
	b.WriteString(`
Run "idbroker <command> --help" for a command's flags and examples.
Configuration comes from IDBROKER_* environment variables (see "idbroker
serve --help"); flags override them. Results go to stdout, logs and errors
to stderr; lists and secrets take --json.

Exit status: 0 done, 1 failed, 2 the command line is wrong (audit verify:
3 the log could not be checked).

Start here:

	idbroker serve --dev
`)
	io.WriteString(w, b.String())
}

// examples are the command lines each command's --help ends with, by
// command: what an operator copies, and what a script is built from.
var examples = map[string]string{
	"serve": `idbroker serve --dev                      try it on a laptop: demo tenant, http issuer
	IDBROKER_MASTER_KEY=… idbroker serve --issuer https://id.example.com \
	    --database-url postgres://idbroker@db/idbroker --redis-url redis://cache:6379/0`,
	"migrate": `idbroker migrate up                       before starting a new release with --no-migrate
	idbroker migrate status --json | jq -r '.[] | select(.applied_at == null) | .name'`,
	"apikey": `KEY=$(idbroker apikey create --name ci)   the key alone on stdout
	idbroker apikey create --name ci --json   {"id": …, "name": …, "prefix": …, "key": …}
	idbroker apikey list --json | jq -r '.[] | select(.revoked_at == null) | .id'
	idbroker apikey revoke ak_01H… --yes      no question asked on a terminal`,
	"operator": `idbroker operator create --email ana@vendor.example --issuer https://id.example.com
	idbroker operator list --json | jq -r '.[] | select(.status == "active") | .email'
	idbroker operator disable ana@vendor.example --yes
	idbroker operator reset opr_01H… --json`,
	"keys": `idbroker keys rotate --yes                 new signing keys; the old ones stay published a week
	idbroker keys rotate --overlap 48h --yes   when no token lives longer than two days
	IDBROKER_MASTER_KEY=new IDBROKER_MASTER_KEY_PREVIOUS=old idbroker keys rewrap --yes
	idbroker keys rotate-audit --yes           a new audit key, after the master key may have leaked`,
	"audit": `idbroker audit verify                      exit 0 intact, 1 broken, 3 not checked
	idbroker audit verify --tenant tnt_01H…
	idbroker audit verify --anchors /safe/anchors.json --write-anchors /safe/anchors.json`,
	"healthcheck": `idbroker healthcheck                       HEALTHCHECK in a container, on IDBROKER_LISTEN
	idbroker healthcheck --url http://10.0.0.5:8080/readyz --timeout 2s`,
	"version": `idbroker version
	idbroker --version`,
}

// newFlagSet returns a FlagSet for a subcommand whose usage prints synopsis
// and description, then the flags and the command's examples.
func newFlagSet(c *cli, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(synopsis, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: idbroker %s\n\n%s\n", synopsis, strings.TrimSpace(description))
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
		group, _, _ := strings.Cut(synopsis, " ")
		if ex := examples[group]; ex != "" {
			fmt.Fprintf(w, "\nExamples:\n\n\t%s\n", ex)
		}
		status := "0 done, 1 failed (the reason on stderr), 2 the command line is wrong"
		if group == "audit" {
			status = "0 every chain intact, 1 a chain broken, 2 the command line is wrong, 3 the log could not be checked"
		}
		fmt.Fprintf(w, "\nExit status: %s.\n", status)
	}
	return fs
}

// parseFlags parses args into fs. --help prints the usage to stdout and
// returns flag.ErrHelp; a bad flag or a stray argument returns errUsage
// after one line saying why.
func parseFlags(c *cli, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(c.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	// The FlagSet would print its error and then the whole usage: a page
	// of help in which a script's log hides the one line that matters.
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(c.stderr)
	if err != nil {
		return usageError(c, fs, "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(c, fs, "unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// usageError prints why a command line is wrong, in one line, and where
// to read its usage; it returns errUsage (exit status 2).
func usageError(c *cli, fs *flag.FlagSet, format string, args ...any) error {
	name := strings.TrimSuffix(fs.Name(), " [flags]")
	fmt.Fprintf(c.stderr, "idbroker %s: %s\nRun \"idbroker %s --help\" for usage.\n", name, fmt.Sprintf(format, args...), name)
	return errUsage
}

// errAborted is the answer to a confirmation that was not yes: nothing
// was changed (exit status 1).
var errAborted = errors.New("not confirmed: nothing was changed")

// confirm asks on the terminal before a change that cannot be undone
// (revoke, disable, reset, keys rotate and rewrap) unless yes (--yes) was
// given. When stdin is not a terminal it asks nothing and returns nil: a
// script, a pipe or a cron job never waits for an answer no one gives,
// and runs as it did before the question existed.
func confirm(c *cli, yes bool, question string) error {
	if yes || !c.interactive {
		return nil
	}
	fmt.Fprintf(c.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errAborted
}

// addYesFlag registers --yes, which a destructive command takes instead of
// asking on the terminal.
func addYesFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("yes", false, "do not ask for confirmation on a terminal (without a terminal none is asked)")
}

// addJSONFlag registers --json, which prints the result as JSON instead of
// a table or a bare line.
func addJSONFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print the result as JSON on stdout, for scripts")
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addDatabaseFlag registers --database-url, the one flag of the commands
// that only need the database.
func addDatabaseFlag(fs *flag.FlagSet) {
	fs.String("database-url", "", "database URL (overrides "+envDatabaseURL+")")
}

// databaseConfig loads the configuration for a command that only needs the
// database, with fs's given flags overriding the environment.
func databaseConfig(c *cli, fs *flag.FlagSet) (Config, error) {
	return loadConfig(configSource{getenv: c.getenv, flags: givenFlags(fs, map[string]string{
		"database-url": envDatabaseURL,
	})})
}

// openDatabase parses a database-only command's flags (fs has
// addDatabaseFlag's flag) and opens the store it works on, which must
// exist (requireDatabase) and be migrated; the caller closes it.
func openDatabase(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) (*store.DB, *slog.Logger, error) {
	return openDatabaseTo(ctx, c, fs, args, dbMigrated)
}

// openDatabaseTo is openDatabase for a command that needs less of the
// database (migrate).
func openDatabaseTo(ctx context.Context, c *cli, fs *flag.FlagSet, args []string, need dbNeed) (*store.DB, *slog.Logger, error) {
	if err := parseFlags(c, fs, args); err != nil {
		return nil, nil, err
	}
	cfg, err := databaseConfig(c, fs)
	if err != nil {
		return nil, nil, err
	}
	st, _, log, err := openAdminStore(ctx, c, cfg, need)
	return st, log, err
}

// dbNeed is what a one-shot command needs of the database it opens.
type dbNeed int

const (
	dbMayCreate dbNeed = iota // migrate up: creates an embedded database that is not there
	dbExisting                // migrate status: there, migrated or not
	dbMigrated                // every other command: there and migrated
)

// openAdminStore opens the database of a one-shot command (every command
// but serve and healthcheck) and checks that it answers and has what the
// command needs, so that an unreachable, locked or unmigrated database is
// one clear line naming it, not a query's error naming nothing. It logs
// which database it opened (at INFO, on stderr): beside a file found by a
// relative default, or a URL from the environment, the operator sees
// which one the command changed. The caller closes the store.
func openAdminStore(ctx context.Context, c *cli, cfg Config, need dbNeed) (*store.DB, *secrets.Keyring, *slog.Logger, error) {
	if need != dbMayCreate {
		if err := requireDatabase(cfg); err != nil {
			return nil, nil, nil, err
		}
	}
	log := newLogger(c.stderr, cfg)
	kr, err := openKeyringFor(cfg, log, true)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := openStoreWith(ctx, cfg, kr, log)
	if err != nil {
		return nil, nil, nil, err
	}
	name := databaseName(cfg)
	attrs := []any{"database", name}
	if cfg.MasterKey == nil {
		attrs = append(attrs, "master_key_file", cfg.MasterKeyFile)
	}
	log.Info("using database", attrs...)
	check := func(ctx context.Context) error {
		_, err := st.MigrationStatus(ctx)
		return err
	}
	if need == dbMigrated {
		check = func(ctx context.Context) error { return requireSchema(ctx, st) }
	}
	if err := check(ctx); err != nil {
		st.Close()
		return nil, nil, nil, fmt.Errorf("database %s: %w", name, err)
	}
	return st, kr, log, nil
}

// requireDatabase refuses an embedded database file that is not there,
// for the commands that work on an existing one (apikey, operator, keys,
// audit): opening it would create an empty database and a new master key
// in whatever directory the command was run from, and then fail for want
// of a schema, leaving both behind beside the real ones elsewhere.
func requireDatabase(cfg Config) error {
	if cfg.Driver != driverSQLite {
		return nil
	}
	if _, err := os.Stat(cfg.SQLitePath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no database at %s: run this where \"idbroker serve\" keeps its data, or name it with --database-url or %s", cfg.SQLitePath, envDatabaseURL)
		}
		return fmt.Errorf("database %s: %w", cfg.SQLitePath, err)
	}
	return nil
}

// requireSchema refuses a database no migration has touched, for the
// commands that read and write it without migrating (apikey, operator,
// keys, audit): their first query would fail with "no such table" or
// "relation does not exist", which says nothing of what to do.
func requireSchema(ctx context.Context, st *store.DB) error {
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	for _, m := range states {
		if m.AppliedAt != nil {
			return nil
		}
	}
	return errors.New("the database has no schema yet: run \"idbroker migrate up\" first (\"idbroker serve\" also migrates at start)")
}

// givenFlags returns the flags set on the command line among byFlag (flag
// name → environment variable), keyed by the variable they override.
func givenFlags(fs *flag.FlagSet, byFlag map[string]string) map[string]flagValue {
	out := make(map[string]flagValue)
	fs.Visit(func(f *flag.Flag) {
		if env, ok := byFlag[f.Name]; ok {
			out[env] = flagValue{name: "--" + f.Name, value: f.Value.String()}
		}
	})
	return out
}
