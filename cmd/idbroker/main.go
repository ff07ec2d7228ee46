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
	"context"
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
		{"keys", "manage token-signing keys and the master key (rotate, rewrap)", runKeys},
		{"audit", "check the audit log's hash chains (verify)", runAudit},
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
	for _, cmd := range commands() {
		fmt.Fprintf(&b, "\t%-12s %s\n", cmd.name, cmd.summary)
	}
	b.WriteString(`
Run "idbroker <command> --help" for a command's flags. Configuration comes
from IDBROKER_* environment variables (see "idbroker serve --help"); flags
override them.

Start here:

	idbroker serve --dev
`)
	io.WriteString(w, b.String())
}

// newFlagSet returns a FlagSet for a subcommand whose usage prints synopsis
// and description and then the flags.
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
	}
	return fs
}

// parseFlags parses args into fs. --help prints the usage to stdout and
// returns flag.ErrHelp; a bad flag or a stray argument returns errUsage.
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
	if err := fs.Parse(args); err != nil {
		return errUsage // the FlagSet printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "unexpected argument %q\n\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
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
// exist (requireDatabase); the caller closes it.
func openDatabase(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) (*store.DB, *slog.Logger, error) {
	return openDatabaseTo(ctx, c, fs, args, true)
}

// openDatabaseTo is openDatabase, creating an embedded database (and its
// master key) that is not there yet unless mustExist.
func openDatabaseTo(ctx context.Context, c *cli, fs *flag.FlagSet, args []string, mustExist bool) (*store.DB, *slog.Logger, error) {
	if err := parseFlags(c, fs, args); err != nil {
		return nil, nil, err
	}
	cfg, err := databaseConfig(c, fs)
	if err != nil {
		return nil, nil, err
	}
	if mustExist {
		if err := requireDatabase(cfg); err != nil {
			return nil, nil, err
		}
	}
	log := newLogger(c.stderr, cfg)
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return st, log, nil
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
