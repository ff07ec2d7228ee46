package console_test

import (
	"html"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store/storetest"
)

// answer is what a signed-out browser learns from one failed sign-in.
type answer struct {
	status     int
	retryAfter string
	locked     bool
}

func (h *harness) failSignIn(t *testing.T, email string) answer {
	t.Helper()
	resp, body := h.signInAs(t, email, "not the password!", "123456")
	if opensSession(resp) {
		t.Fatalf("sign-in of %s with a wrong password opened a session", email)
	}
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), strings.Contains(html.UnescapeString(body), "locked")}
}

// sameAnswers compares two sequences of answers. A Retry-After counts
// down in real time between the attempts, which take a varying while on a
// loaded machine (an operator's failure writes and audits more), so two
// values a few seconds apart are the same answer.
func sameAnswers(a, b []answer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.status != y.status || x.locked != y.locked || (x.retryAfter == "") != (y.retryAfter == "") {
			return false
		}
		if x.retryAfter != "" {
			nx, err1 := strconv.Atoi(x.retryAfter)
			ny, err2 := strconv.Atoi(y.retryAfter)
			if err1 != nil || err2 != nil || nx-ny > 5 || ny-nx > 5 {
				return false
			}
		}
	}
	return true
}

// TestLockoutTellsNoOneWhichEmailsAreOperators: the console's lockout
// answers an email that is no operator's (never was, or a disabled one's)
// exactly as it answers an operator's: the same statuses after the same
// number of failures, the 429 carrying the same Retry-After, the lock
// ending and growing at the same times. Before, only an operator's email
// could earn a 429, so five wrong passwords told anyone whether an email
// was an operator's; and no 429 said when to try again.
func TestLockoutTellsNoOneWhichEmailsAreOperators(t *testing.T) {
	h := start(t, "")
	h.enrol(t, "ops@vendor.example", "a long enough password")
	disabled := h.enrol(t, "gone@vendor.example", "a long enough password")
	ops, err := h.db.ListOperators(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if o.Email == disabled.email {
			if err := h.db.DisableOperator(t.Context(), o.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each email's life: five failures (the fifth locks for a minute),
	// one while locked, the minute over, a sixth failure (two minutes).
	life := func(email string) []answer {
		var out []answer
		for range 6 {
			out = append(out, h.failSignIn(t, email))
		}
		h.clock.Advance(61 * time.Second)
		out = append(out, h.failSignIn(t, email))
		h.clock.Advance(-61 * time.Second)
		return out
	}
	want := life("ops@vendor.example")
	if w := want[4]; w.status != http.StatusTooManyRequests || w.retryAfter != "60" || !w.locked {
		t.Fatalf("an operator's fifth failure = %+v, want 429 with Retry-After 60", w)
	}
	if w := want[6]; w.status != http.StatusTooManyRequests || w.retryAfter != "120" {
		t.Fatalf("an operator's failure after the lock = %+v, want 429 with Retry-After 120", w)
	}
	for _, email := range []string{"nobody@vendor.example", "NoBody2@Vendor.example", disabled.email} {
		if got := life(email); !sameAnswers(got, want) {
			t.Errorf("%s's answers = %v\nan operator's   = %v", email, got, want)
		}
	}
	// The count goes by the email, whatever its case.
	for range 4 {
		h.failSignIn(t, "mixed@vendor.example")
	}
	if a := h.failSignIn(t, "MIXED@vendor.example"); a.status != http.StatusTooManyRequests {
		t.Errorf("fifth failure, in capitals = %+v, want 429", a)
	}
}

// TestUnknownEmailLockoutSharedByNodes: behind a load balancer, failures
// of an unknown email counted on one node count on the others (through
// Redis), as an operator's do (through the database).
func TestUnknownEmailLockoutSharedByNodes(t *testing.T) {
	db := storetest.Postgres(t)
	redis := sessionstest.NewRedis(t)
	clk := &clock{}
	nodes := []*harness{startNode(t, "", false, db, redis, clk), startNode(t, "", false, db, redis, clk)}
	for i := range 4 {
		if a := nodes[i%2].failSignIn(t, "nobody@vendor.example"); a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d = %+v, want 401", i+1, a)
		}
	}
	if a := nodes[0].failSignIn(t, "nobody@vendor.example"); a.status != http.StatusTooManyRequests || a.retryAfter != "60" {
		t.Fatalf("fifth failure, counted over two nodes = %+v, want 429 with Retry-After 60", a)
	}
	if a := nodes[1].failSignIn(t, "nobody@vendor.example"); a.status != http.StatusTooManyRequests {
		t.Fatalf("the other node, while locked = %+v, want 429", a)
	}
	var _ console.Attempts = redis
}

// TestOperatorFailuresForgottenAfterADay: an operator's failed sign-ins
// are forgotten a day after the last one, as an unknown email's are (the
// cache's expiry), so waiting a day between guesses tells the two apart
// no better than the answers do.
func TestOperatorFailuresForgottenAfterADay(t *testing.T) {
	h := start(t, "")
	h.enrol(t, "ops@vendor.example", "a long enough password")
	for i := range 4 {
		if a := h.failSignIn(t, "ops@vendor.example"); a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d = %+v, want 401", i+1, a)
		}
	}
	h.clock.Advance(25 * time.Hour)
	for i := range 4 {
		if a := h.failSignIn(t, "ops@vendor.example"); a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d a day later = %+v, want 401: the day-old failures still counted", i+1, a)
		}
	}
	if a := h.failSignIn(t, "ops@vendor.example"); a.status != http.StatusTooManyRequests {
		t.Fatalf("fifth failure of the new day = %+v, want 429", a)
	}
}
