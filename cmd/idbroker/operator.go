package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/idbroker/idbroker/admin-portal/console"
)

const operatorHelp = `
Manage the people who sign in to the operator console ({issuer}/console).

	operator create --email E   create an operator; prints a one-time enrolment link
	operator list               list operators and their status
	operator disable ID|EMAIL   disable an operator and end their console sessions
	                            (or: operator disable --email E)
	operator reset ID|EMAIL     send an enrolled operator back to enrolment (lost
	                            authenticator or password, or a scheduled change):
	                            prints a new enrolment link; their password,
	                            authenticator and recovery codes stop at once and
	                            their console sessions end

The enrolment link (valid for 72 hours, usable once) lets the operator set a
password and an authenticator app (TOTP) and shows their recovery codes.
Send it to them over a channel you trust. The link starts with the issuer
(IDBROKER_ISSUER or --issuer). For an operator who has not enrolled yet,
create again prints a new link and the old one stops working.`

func runOperator(ctx context.Context, c *cli, args []string) error {
	sub, rest, err := subcommand(c, "operator create|list|disable|reset [flags]", operatorHelp, args, "create", "list", "disable", "reset")
	if sub == "" {
		return err
	}
	var ref string // operator disable|reset ID|EMAIL [flags]
	if (sub == "disable" || sub == "reset") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		ref, rest = rest[0], rest[1:]
	}
	fs := newFlagSet(c, "operator "+sub+" [flags]", operatorHelp)
	email := fs.String("email", "", "the operator's email address (create; or disable and reset, instead of ID|EMAIL)")
	fs.String("issuer", "", "public base URL the enrolment link starts with (overrides "+envIssuer+")")
	addDatabaseFlag(fs)
	if err := parseFlags(c, fs, rest); err != nil {
		return err
	}
	cfg, err := loadConfig(configSource{getenv: c.getenv, flags: givenFlags(fs, map[string]string{
		"database-url": envDatabaseURL,
		"issuer":       envIssuer,
	})})
	if err != nil {
		return err
	}
	if err := requireDatabase(cfg); err != nil {
		return err
	}
	log := newLogger(c.stderr, cfg)
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := requireSchema(ctx, st); err != nil {
		return err
	}

	switch sub {
	case "list":
		ops, err := st.ListOperators(ctx)
		if err != nil {
			return fmt.Errorf("list operators: %w", err)
		}
		tb := newTable("ID", "EMAIL", "STATUS", "CREATED", "LAST SIGN-IN")
		for _, o := range ops {
			tb.add(o.ID, o.Email, o.Status, timeOr(&o.CreatedAt, ""), timeOr(o.LastLoginAt, "-"))
		}
		return tb.write(c.stdout)
	case "disable", "reset":
		// --email as create takes it, for whoever types it the same way.
		switch {
		case ref == "":
			ref = *email
		case *email != "" && !strings.EqualFold(*email, ref):
			fmt.Fprintf(c.stderr, "operator %s got %q and --email %q: name one operator\n\n", sub, ref, *email)
			fs.Usage()
			return errUsage
		}
		if ref == "" {
			fmt.Fprintf(c.stderr, "operator %s takes the operator's id (opr_…) or email\n\n", sub)
			fs.Usage()
			return errUsage
		}
		if sub == "reset" {
			link, op, err := console.ResetOperator(ctx, st, cfg.Issuer, ref, "cli")
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, link)
			log.Info("operator reset; send them the new enrolment link, shown once", "id", op.ID, "email", op.Email,
				"expires", time.Now().Add(console.EnrolLinkTTL).UTC().Format(time.RFC3339))
			return nil
		}
		op, err := console.DisableOperator(ctx, st, ref, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "disabled %s (%s)\n", op.ID, op.Email)
		return nil
	}
	if *email == "" {
		fmt.Fprintf(c.stderr, "operator create needs --email\n\n")
		fs.Usage()
		return errUsage
	}
	link, op, err := console.CreateOperator(ctx, st, cfg.Issuer, *email, "cli")
	if err != nil {
		return err
	}
	// The link alone on stdout, so that scripts can capture it.
	fmt.Fprintln(c.stdout, link)
	log.Info("created operator; send them the enrolment link, shown once", "id", op.ID, "email", op.Email,
		"expires", time.Now().Add(console.EnrolLinkTTL).UTC().Format(time.RFC3339))
	return nil
}
