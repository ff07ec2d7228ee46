package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/store"
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
	asJSON := addJSONFlag(fs)
	var yes *bool
	if sub == "disable" || sub == "reset" {
		yes = addYesFlag(fs)
	}
	addDatabaseFlag(fs)
	if err := parseFlags(c, fs, rest); err != nil {
		return err
	}
	// A command line that names no operator, or two, needs no database
	// to be wrong: said before one is opened.
	switch sub {
	case "disable", "reset":
		// --email as create takes it, for whoever types it the same way.
		switch {
		case ref == "":
			ref = *email
		case *email != "" && !strings.EqualFold(*email, ref):
			return usageError(c, fs, "got %q and --email %q: name one operator", ref, *email)
		}
		if ref == "" {
			return usageError(c, fs, "takes the operator's id (opr_…) or email")
		}
	case "create":
		if *email == "" {
			return usageError(c, fs, "operator create needs --email")
		}
	}
	cfg, err := loadConfig(configSource{getenv: c.getenv, flags: givenFlags(fs, map[string]string{
		"database-url": envDatabaseURL,
		"issuer":       envIssuer,
	})})
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
		ops, err := st.ListOperators(ctx)
		if err != nil {
			return fmt.Errorf("list operators: %w", err)
		}
		if *asJSON {
			type operator struct {
				ID          string     `json:"id"`
				Email       string     `json:"email"`
				Status      string     `json:"status"`
				CreatedAt   *time.Time `json:"created_at"`
				LastLoginAt *time.Time `json:"last_sign_in_at"` // null: never
			}
			out := make([]operator, 0, len(ops))
			for _, o := range ops {
				out = append(out, operator{ID: o.ID, Email: o.Email, Status: string(o.Status),
					CreatedAt: utc(&o.CreatedAt), LastLoginAt: utc(o.LastLoginAt)})
			}
			return writeJSON(c.stdout, out)
		}
		tb := newTable("ID", "EMAIL", "STATUS", "CREATED", "LAST SIGN-IN")
		for _, o := range ops {
			tb.add(o.ID, o.Email, o.Status, timeOr(&o.CreatedAt, ""), timeOr(o.LastLoginAt, "-"))
		}
		return tb.write(c.stdout)
	case "disable", "reset":
		if sub == "reset" {
			if err := confirm(c, *yes, fmt.Sprintf("Reset operator %s? Their password, authenticator and console sessions stop at once.", ref)); err != nil {
				return err
			}
			link, op, err := console.ResetOperator(ctx, st, cfg.Issuer, ref, "cli")
			if err != nil {
				return err
			}
			log.Info("operator reset; send them the new enrolment link, shown once", "id", op.ID, "email", op.Email,
				"expires", time.Now().Add(console.EnrolLinkTTL).UTC().Format(time.RFC3339))
			return printEnrolLink(c, *asJSON, link, op)
		}
		if err := confirm(c, *yes, fmt.Sprintf("Disable operator %s? Their console sessions end at once.", ref)); err != nil {
			return err
		}
		op, err := console.DisableOperator(ctx, st, ref, "cli")
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, map[string]string{"id": op.ID, "email": op.Email, "status": string(op.Status)})
		}
		fmt.Fprintf(c.stdout, "disabled %s (%s)\n", op.ID, op.Email)
		return nil
	}
	link, op, err := console.CreateOperator(ctx, st, cfg.Issuer, *email, "cli")
	if err != nil {
		return err
	}
	log.Info("created operator; send them the enrolment link, shown once", "id", op.ID, "email", op.Email,
		"expires", time.Now().Add(console.EnrolLinkTTL).UTC().Format(time.RFC3339))
	return printEnrolLink(c, *asJSON, link, op)
}

// printEnrolLink prints an enrolment link on stdout (never in the log): alone
// on its line, so that scripts can capture it, or with the operator it
// enrols as JSON.
func printEnrolLink(c *cli, asJSON bool, link string, op store.Operator) error {
	if !asJSON {
		_, err := fmt.Fprintln(c.stdout, link)
		return err
	}
	return writeJSON(c.stdout, struct {
		ID        string    `json:"id"`
		Email     string    `json:"email"`
		Link      string    `json:"enrolment_link"`
		ExpiresAt time.Time `json:"expires_at"`
	}{op.ID, op.Email, link, time.Now().Add(console.EnrolLinkTTL).UTC().Truncate(time.Second)})
}
