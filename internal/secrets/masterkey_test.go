package secrets_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
)

func TestParseMasterKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(0xF0 + i) // bytes whose base64 uses + / - _
	}
	want := secrets.MasterKey(raw)
	for _, tc := range []struct{ name, in string }{
		{"std padded", base64.StdEncoding.EncodeToString(raw)},
		{"std raw", base64.RawStdEncoding.EncodeToString(raw)},
		{"url padded", base64.URLEncoding.EncodeToString(raw)},
		{"url raw", base64.RawURLEncoding.EncodeToString(raw)},
		{"trailing newline", base64.StdEncoding.EncodeToString(raw) + "\n"},
		{"surrounding spaces", "  " + base64.StdEncoding.EncodeToString(raw) + " \r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secrets.ParseMasterKey(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Error("decoded to a different key")
			}
		})
	}
}

func TestParseMasterKeyErrors(t *testing.T) {
	key32 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	for _, tc := range []struct{ name, in, wantErr string }{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"16 bytes", base64.StdEncoding.EncodeToString(make([]byte, 16)), "decodes to 16 bytes, want 32"},
		{"33 bytes", base64.StdEncoding.EncodeToString(make([]byte, 33)), "decodes to 33 bytes, want 32"},
		{"hex", strings.Repeat("ab", 32), "decodes to 48 bytes, want 32"},
		{"not base64", "this is not base64 at all!!", "not valid base64"},
		{"mixed alphabets", "+" + key32[1:len(key32)-2] + "_", "not valid base64"},
		{"all zero", base64.StdEncoding.EncodeToString(make([]byte, 32)), "all zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := secrets.ParseMasterKey(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
			if s := strings.TrimSpace(tc.in); len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Errorf("error %q echoes the value", err)
			}
		})
	}
}

func TestMasterKeyNeverPrints(t *testing.T) {
	k := secrets.GenerateMasterKey()
	enc := secrets.EncodeMasterKey(k)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		out := fmt.Sprintf(verb, k)
		if strings.Contains(out, enc) || strings.Contains(out, fmt.Sprintf("%x", k[:8])) ||
			strings.Contains(out, fmt.Sprint(k[0], " ", k[1], " ", k[2])) {
			t.Errorf("%s prints key material: %s", verb, out)
		}
	}
	if got := fmt.Sprint(struct{ K secrets.MasterKey }{k}); !strings.Contains(got, "MasterKey(") {
		t.Errorf("nested key printed as %s", got)
	}
}

func TestLoadOrCreateMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "master.key")

	k1, created, err := secrets.LoadOrCreateMasterKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file mode %#o, want 0600", perm)
		}
		di, _ := os.Stat(filepath.Dir(path))
		if perm := di.Mode().Perm(); perm != 0o700 {
			t.Errorf("key dir mode %#o, want 0700", perm)
		}
	}
	k2, created, err := secrets.LoadOrCreateMasterKeyFile(path)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if k1 != k2 {
		t.Fatal("second call returned a different key")
	}
	// Nothing but the key file is left in the directory.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
}

// TestLoadOrCreateMasterKeyFileRace starts many "instances" at once: they
// must all end up with the one key that is on disk.
func TestLoadOrCreateMasterKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 16
	keys := make([]secrets.MasterKey, n)
	var created int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, c, err := secrets.LoadOrCreateMasterKeyFile(path)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			keys[i] = k
			if c {
				created++
			}
		})
	}
	wg.Wait()
	onDisk, _, err := secrets.LoadOrCreateMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if k != onDisk {
			t.Errorf("instance %d holds a key that is not on disk", i)
		}
	}
	if created != 1 {
		t.Errorf("%d instances report creating the key, want 1", created)
	}
}

func TestLoadMasterKeyFileRefusesOpenMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if _, _, err := secrets.LoadOrCreateMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := secrets.LoadOrCreateMasterKeyFile(path)
		if err == nil {
			t.Fatalf("mode %#o accepted", mode)
		}
		if !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %#o: error %q does not say how to fix it", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, _, err := secrets.LoadOrCreateMasterKeyFile(path); err != nil {
		t.Errorf("mode 0400 refused: %v", err)
	}
}

func TestLoadMasterKeyFileBadContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, created, err := secrets.LoadOrCreateMasterKeyFile(path)
	if err == nil || created {
		t.Fatalf("bad key file: created=%v err=%v", created, err)
	}
	if !strings.Contains(err.Error(), "want 32") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should name the file and the problem", err)
	}
	// A bad key is never silently replaced: that would orphan every secret.
	if b, _ := os.ReadFile(path); string(b) != "c2hvcnQ=\n" {
		t.Error("bad key file was overwritten")
	}
}
