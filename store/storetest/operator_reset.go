package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testOperatorReset: ResetOperator sends an active operator back to
// pending with a new enrolment token, dropping the password, TOTP secret
// and step, recovery codes, lockout and sessions, of that operator only;
// a pending or disabled operator is ErrConflict, an unknown one ErrNotFound.
func testOperatorReset(t *testing.T, db *store.DB) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	enrolled := func(email string) store.Operator {
		t.Helper()
		tok := sha256.Sum256([]byte("enrol " + email))
		o := must(db.CreateOperator(ctx, store.Operator{Email: email, EnrolTokenHash: tok[:], EnrolExpiresAt: &exp}))
		if err := db.SetOperatorTOTPSecret(ctx, o.ID, "JBSWY3DPEHPK3PXP"); err != nil {
			t.Fatal(err)
		}
		if err := db.CompleteEnrolment(ctx, o.ID, "$argon2id$x", 100, [][]byte{{1}, {2}}); err != nil {
			t.Fatal(err)
		}
		must(db.CreateOperatorSession(ctx, store.OperatorSession{OperatorID: o.ID, TokenHash: tok[:], CSRFToken: "c",
			ExpiresAt: exp}))
		return o
	}
	a, b := enrolled("a@reset.example"), enrolled("b@reset.example")
	newTok := sha256.Sum256([]byte("reset link"))
	if err := db.ResetOperator(ctx, a.ID, newTok[:], exp); err != nil {
		t.Fatal(err)
	}
	got := must(db.OperatorByEnrolToken(ctx, newTok[:]))
	if got.ID != a.ID || got.Status != store.OperatorPending || got.TOTPSecret != "" || got.TOTPLastStep != 0 || got.PasswordHash != "" {
		t.Fatalf("after reset: %+v", got)
	}
	if n := must(db.RecoveryCodesLeft(ctx, a.ID)); n != 0 {
		t.Fatalf("%d recovery codes left after reset", n)
	}
	aTok, bTok := sha256.Sum256([]byte("enrol a@reset.example")), sha256.Sum256([]byte("enrol b@reset.example"))
	if _, _, err := db.OperatorSession(ctx, aTok[:]); err == nil {
		t.Fatal("the reset operator's session survived")
	}
	if _, _, err := db.OperatorSession(ctx, bTok[:]); err != nil {
		t.Fatalf("another operator's session ended: %v", err)
	}
	if n := must(db.RecoveryCodesLeft(ctx, b.ID)); n != 2 {
		t.Fatalf("another operator's recovery codes: %d", n)
	}
	wantErr(t, db.ResetOperator(ctx, a.ID, newTok[:], exp), store.ErrConflict)
	if err := db.DisableOperator(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256([]byte("other link"))
	wantErr(t, db.ResetOperator(ctx, b.ID, other[:], exp), store.ErrConflict)
	wantErr(t, db.ResetOperator(ctx, "opr_01M96Z3SRJAP2X0SG834F02X19", other[:], exp), store.ErrNotFound)
}
