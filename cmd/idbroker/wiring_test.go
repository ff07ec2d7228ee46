package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
)

func TestOpenKeyringFromFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := loadConfig(configSource{getenv: mapEnv(map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(dir, "idbroker.db")),
	})})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// First use generates the key, loudly; the second reads the same key.
	kr1, err := openKeyring(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "GENERATED A NEW MASTER KEY") {
		t.Errorf("no warning that a master key was generated:\n%s", logs.String())
	}
	sealed, err := kr1.Seal([]byte("secret"), []byte("row"))
	if err != nil {
		t.Fatal(err)
	}
	kr2, err := openKeyring(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr2.Open(sealed, []byte("row")); err != nil || string(got) != "secret" {
		t.Errorf("second start cannot open what the first sealed: %q, %v", got, err)
	}
	b, err := os.ReadFile(cfg.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), strings.TrimSpace(string(b))) {
		t.Errorf("the log shows the master key")
	}
}

func TestWarnStaleKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fileKey, _, err := secrets.LoadOrCreateMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey := secrets.GenerateMasterKey()
	env := func(k secrets.MasterKey, previous string) map[string]string {
		e := map[string]string{
			envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(dir, "idbroker.db")),
			envMasterKey:   secrets.EncodeMasterKey(k),
		}
		if previous != "" {
			e[envMasterKeyPrevious] = previous
		}
		return e
	}
	for _, tt := range []struct {
		name     string
		key      secrets.MasterKey
		previous string
		wantWarn bool
	}{
		{"same key", fileKey, "", false},
		{"different key", otherKey, "", true},
		// operations.md's rotation on SQLite: the new key in the
		// variable, the file's in IDBROKER_MASTER_KEY_PREVIOUS.
		{"rotating from the file's key", otherKey, secrets.EncodeMasterKey(fileKey), false},
		{"a previous key that is not the file's", otherKey, secrets.EncodeMasterKey(secrets.GenerateMasterKey()), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(configSource{getenv: mapEnv(env(tt.key, tt.previous))})
			if err != nil {
				t.Fatal(err)
			}
			var logs strings.Builder
			if _, err := openKeyring(cfg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(logs.String(), "differs from the key in the master.key file"); got != tt.wantWarn {
				t.Errorf("warned = %v, want %v:\n%s", got, tt.wantWarn, logs.String())
			}
			for _, k := range []secrets.MasterKey{fileKey, otherKey} {
				if strings.Contains(logs.String(), secrets.EncodeMasterKey(k)) {
					t.Errorf("the log shows a master key")
				}
			}
		})
	}
}
