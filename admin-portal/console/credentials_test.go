package console

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestPasswordHash(t *testing.T) {
	h, err := hashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("not a PHC argon2id string: %s", h)
	}
	if h2, _ := hashPassword("correct horse battery"); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	tests := []struct {
		name, phc, password string
		ok                  bool
		err                 bool
	}{
		{"right", h, "correct horse battery", true, false},
		{"wrong", h, "correct horse battery!", false, false},
		{"empty", h, "", false, false},
		{"not argon2id", strings.Replace(h, "argon2id", "argon2i", 1), "correct horse battery", false, true},
		{"truncated", h[:20], "x", false, true},
		{"absurd memory", strings.Replace(h, "m=19456", "m=99999999", 1), "x", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := checkPassword(tc.phc, tc.password)
			if ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("checkPassword = %v, %v; want %v, error %v", ok, err, tc.ok, tc.err)
			}
		})
	}
}

func TestMatchTOTP(t *testing.T) {
	key, err := newTOTPKey("ops@vendor.example")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_015, 0) // mid-step
	step := now.Unix() / 30
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(key.Secret(), at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		code     string
		wantStep int64
		ok       bool
	}{
		{"now", code(now), step, true},
		{"previous step", code(now.Add(-30 * time.Second)), step - 1, true},
		{"next step", code(now.Add(30 * time.Second)), step + 1, true},
		{"two steps old", code(now.Add(-60 * time.Second)), 0, false},
		{"short", "12345", 0, false},
		{"letters", "abcdef", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := matchTOTP(key.Secret(), tc.code, now)
			// A random code may collide with a neighbouring step's.
			if tc.ok && (!ok || s != tc.wantStep) || !tc.ok && ok && tc.name != "two steps old" {
				t.Fatalf("matchTOTP = %d, %v; want %d, %v", s, ok, tc.wantStep, tc.ok)
			}
		})
	}
	// The key shown at enrolment is the stored one.
	again, err := totpKey("ops@vendor.example", key.Secret())
	if err != nil || again.Secret() != key.Secret() || again.Period() != 30 || again.Digits().Length() != 6 {
		t.Fatalf("rebuilt key %v, %v", again, err)
	}
	if img, err := again.Image(200, 200); err != nil || img.Bounds().Dx() != 200 {
		t.Fatalf("QR image: %v", err)
	}
}

func TestLockFor(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, 0}, {4, 0}, {5, time.Minute}, {6, 2 * time.Minute}, {8, 8 * time.Minute}, {20, time.Hour}, {1000, time.Hour},
	}
	for _, tc := range tests {
		if got := lockFor(tc.failures); got != tc.want {
			t.Errorf("lockFor(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 || len(hashes) != 10 {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 19 || seen[c] {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
		typed := strings.ToUpper(strings.ReplaceAll(c, "-", " "))
		if string(hashRecoveryCode(typed)) != string(hashes[i]) {
			t.Fatalf("code %q typed as %q hashes differently", c, typed)
		}
	}
}

// TestIsDigits: every digit, 0 and 9 included, makes a TOTP code; any
// other character sends the code to the recovery-code check.
func TestIsDigits(t *testing.T) {
	for s, want := range map[string]bool{"0123456789": true, "999999": true, "000000": true, "": false, "12345a": false, "/:": false, "12 456": false} {
		if got := isDigits(s); got != want {
			t.Errorf("isDigits(%q) = %v, want %v", s, got, want)
		}
	}
}
