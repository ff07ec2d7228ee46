package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/signing"
)

const apikeyHelp = `
Manage operator API keys, the credentials of the operator API (/api/v1).

	apikey create [--name NAME]   create a key and print it, once, on stdout

Only a hash of the key is stored: copy it now, it cannot be shown again.`

func runAPIKey(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "apikey create [flags]", apikeyHelp, args, "create")
	if sub == "" {
		return err
	}
	var df databaseFlags
	fs := newFlagSet(c, "apikey create [flags]", apikeyHelp)
	name := fs.String("name", "cli", "a name that tells this key apart from the others")
	df.register(fs)
	st, log, err := df.open(ctx, c, fs, rest)
	if err != nil {
		return err
	}
	defer st.Close()
	key, _, err := adminportal.CreateAPIKey(ctx, st, *name)
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	// The key alone on stdout, so that scripts can capture it.
	fmt.Fprintln(c.stdout, key)
	log.Info("created operator API key; it is shown once", "name", *name)
	return nil
}

const keysHelp = `
Manage the broker's token-signing keys.

	keys rotate [--overlap DURATION]   create new active keys (RS256 and ES256)

The keys they replace stop signing at once but stay published in the JWKS for
the overlap, so that tokens they signed keep verifying; running brokers pick
the new keys up within a minute.`

func runKeys(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "keys rotate [flags]", keysHelp, args, "rotate")
	if sub == "" {
		return err
	}
	var df databaseFlags
	fs := newFlagSet(c, "keys rotate [flags]", keysHelp)
	overlap := fs.Duration("overlap", signing.DefaultOverlap, "how long replaced keys stay in the JWKS; must outlive the longest token lifetime")
	df.register(fs)
	if err := parseFlags(c, fs, rest); err != nil {
		return err
	}
	if *overlap < 0 {
		fmt.Fprintf(c.stderr, "--overlap must not be negative\n\n")
		fs.Usage()
		return errUsage
	}
	cfg, err := df.config(c, fs)
	if err != nil {
		return err
	}
	log := newLogger(c.stderr, cfg)
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := signing.NewManager(st, signing.Options{Logger: log})
	if err != nil {
		return err
	}
	keys, err := m.Rotate(ctx, *overlap)
	if err != nil {
		return fmt.Errorf("rotate signing keys: %w", err)
	}
	for _, k := range keys {
		log.Info("new signing key", "id", k.ID, "alg", k.Alg)
	}
	fmt.Fprintf(c.stdout, "signing keys rotated; the old ones stay in the JWKS until %s\n",
		time.Now().Add(*overlap).UTC().Format(time.RFC3339))
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
	fmt.Fprintf(c.stderr, "unknown %s command %q\n\n", group, args[0])
	fs.Usage()
	return "", nil, errUsage
}
