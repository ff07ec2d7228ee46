package console

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// EnrolTokenPrefix starts enrolment tokens, so that a leaked one is
// recognisable.
const EnrolTokenPrefix = "idb_enrol"

// EnrolLinkTTL is how long an enrolment link stays valid.
const EnrolLinkTTL = 72 * time.Hour

// CreateOperator makes a pending operator with email and returns the
// one-time enrolment link ({issuer}/console/enrol/…) to hand to them. Only
// the token's hash is stored. via names who asked ("cli"), for the audit.
//
// For an operator who exists and is still pending (the link was lost or
// has expired) it issues a new link in place of the old one: that is what
// the page of a spent or expired link tells people to ask for. An
// enrolled or disabled operator's email is refused.
func CreateOperator(ctx context.Context, st Store, issuer, email, via string) (link string, op store.Operator, err error) {
	email = strings.TrimSpace(email)
	if !validEmail(email) {
		return "", store.Operator{}, fmt.Errorf("console: %q is not an email address", email)
	}
	tok := secrets.NewToken(EnrolTokenPrefix)
	exp := time.Now().Add(EnrolLinkTTL).UTC()
	err = st.InTx(ctx, func(ctx context.Context) error {
		action := "operator.created"
		var err error
		op, err = st.OperatorByEmail(ctx, email)
		switch {
		case err == nil && op.Status != store.OperatorPending:
			return fmt.Errorf("console: an operator with email %s exists already (%s)", email, op.Status)
		case err == nil:
			if err := st.ReissueEnrolment(ctx, op.ID, secrets.HashToken(tok), exp); err != nil {
				return fmt.Errorf("console: new enrolment link for %s: %w", email, err)
			}
			action = "operator.enrolment_reissued"
		case errors.Is(err, store.ErrNotFound):
			op, err = st.CreateOperator(ctx, store.Operator{Email: email, EnrolTokenHash: secrets.HashToken(tok), EnrolExpiresAt: &exp})
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("console: an operator with email %s exists already", email)
			}
			if err != nil {
				return fmt.Errorf("console: create operator: %w", err)
			}
		default:
			return fmt.Errorf("console: find operator %s: %w", email, err)
		}
		_, err = st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
			Actor: store.Actor{Type: via, ID: via}, Action: action, Resource: operatorResource(op),
		})
		return err
	})
	if err != nil {
		return "", store.Operator{}, err
	}
	return strings.TrimRight(issuer, "/") + Path + "/enrol/" + tok, op, nil
}

// DisableOperator disables an operator, by id or email, and ends its
// sessions at once.
func DisableOperator(ctx context.Context, st Store, ref, via string) (store.Operator, error) {
	var (
		op  store.Operator
		err error
	)
	if store.HasPrefix(ref, store.PrefixOperator) {
		op, err = st.Operator(ctx, ref)
	} else {
		op, err = st.OperatorByEmail(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Operator{}, fmt.Errorf("console: no operator %s", ref)
	}
	if err != nil {
		return store.Operator{}, err
	}
	err = st.InTx(ctx, func(ctx context.Context) error {
		if err := st.DisableOperator(ctx, op.ID); err != nil {
			return err
		}
		_, err := st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
			Actor: store.Actor{Type: via, ID: via}, Action: "operator.disabled", Resource: operatorResource(op),
		})
		return err
	})
	if err != nil {
		return store.Operator{}, fmt.Errorf("console: disable operator: %w", err)
	}
	op.Status = store.OperatorDisabled
	return op, nil
}

// ResetOperator sends an enrolled operator, by id or email, back to
// enrolment and returns their new enrolment link: for a lost
// authenticator or password, or a scheduled change of both. Their
// password, authenticator key and recovery codes stop working and their
// console sessions end at once; the link (EnrolLinkTTL, single use) lets
// them choose new ones.
func ResetOperator(ctx context.Context, st Store, issuer, ref, via string) (link string, op store.Operator, err error) {
	if store.HasPrefix(ref, store.PrefixOperator) {
		op, err = st.Operator(ctx, ref)
	} else {
		op, err = st.OperatorByEmail(ctx, strings.TrimSpace(ref))
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", store.Operator{}, fmt.Errorf("console: no operator %s", ref)
	}
	if err != nil {
		return "", store.Operator{}, err
	}
	tok := secrets.NewToken(EnrolTokenPrefix)
	exp := time.Now().Add(EnrolLinkTTL).UTC()
	err = st.InTx(ctx, func(ctx context.Context) error {
		if err := st.ResetOperator(ctx, op.ID, secrets.HashToken(tok), exp); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("console: operator %s is %s: only an enrolled operator can be reset "+
					"(a pending one gets a new link from operator create)", op.Email, op.Status)
			}
			return err
		}
		_, err := st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
			Actor: store.Actor{Type: via, ID: via}, Action: "operator.reset", Resource: operatorResource(op),
		})
		return err
	})
	if err != nil {
		return "", store.Operator{}, fmt.Errorf("console: reset operator: %w", err)
	}
	op.Status = store.OperatorPending
	return strings.TrimRight(issuer, "/") + Path + "/enrol/" + tok, op, nil
}

// DevOperatorEmail is the operator `serve --dev` seeds.
const DevOperatorEmail = "dev@idbroker.localhost"

// DevOperator is a seeded operator's credentials, known only at creation.
type DevOperator struct {
	Email, Password, TOTPSecret string
}

// SeedDevOperator creates, once, an enrolled operator for `serve --dev`
// with a random password and TOTP secret, and returns them; an existing
// one is left alone and created is false (its secrets were printed when it
// was made).
func SeedDevOperator(ctx context.Context, st Store) (dev DevOperator, created bool, err error) {
	if _, err := st.OperatorByEmail(ctx, DevOperatorEmail); err == nil {
		return DevOperator{Email: DevOperatorEmail}, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return DevOperator{}, false, err
	}
	key, err := newTOTPKey(DevOperatorEmail)
	if err != nil {
		return DevOperator{}, false, err
	}
	password := secrets.NewPassword()
	hash, err := hashPassword(password)
	if err != nil {
		return DevOperator{}, false, err
	}
	_, hashes, err := newRecoveryCodes()
	if err != nil {
		return DevOperator{}, false, err
	}
	exp := time.Now().Add(time.Minute)
	err = st.InTx(ctx, func(ctx context.Context) error {
		op, err := st.CreateOperator(ctx, store.Operator{Email: DevOperatorEmail, EnrolExpiresAt: &exp})
		if err != nil {
			return err
		}
		if err := st.SetOperatorTOTPSecret(ctx, op.ID, key.Secret()); err != nil {
			return err
		}
		if err := st.CompleteEnrolment(ctx, op.ID, hash, 0, hashes); err != nil {
			return err
		}
		_, err = st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
			Actor: store.Actor{Type: "system", ID: "dev"}, Action: "operator.created", Resource: operatorResource(op),
		})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		// Another node, started at the same moment, created it first:
		// its credentials are the ones, and it prints them.
		return DevOperator{Email: DevOperatorEmail}, false, nil
	}
	if err != nil {
		return DevOperator{}, false, fmt.Errorf("console: seed dev operator: %w", err)
	}
	return DevOperator{Email: DevOperatorEmail, Password: password, TOTPSecret: key.Secret()}, true, nil
}

func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") &&
		len(s) <= 320 && !strings.ContainsAny(s, " \t\r\n<>\"")
}
