package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// newLogger returns the process logger: structured, to w (stderr), in the
// configured format and level.
func newLogger(w io.Writer, cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openKeyring returns the Cipher that seals secrets at rest: the master key
// from IDBROKER_MASTER_KEY or, on the embedded default, from the key file
// beside the database, generated on first use.
func openKeyring(cfg Config, log *slog.Logger) (*secrets.Keyring, error) {
	return openKeyringFor(cfg, log, false)
}

// openKeyringFor is openKeyring; oneShot leaves out the reminder that the
// key was read from the file beside the database, which serve logs at
// every start but which, on every admin command, was a warning on the
// stderr of each script (the command names the file in its own line).
// A generated key and a key file at odds with IDBROKER_MASTER_KEY are
// warned of whoever opens them.
func openKeyringFor(cfg Config, log *slog.Logger, oneShot bool) (*secrets.Keyring, error) {
	key := cfg.MasterKey
	if key != nil && cfg.Driver == driverSQLite {
		warnStaleKeyFile(cfg, *key, log)
	}
	if key == nil {
		k, created, err := secrets.LoadOrCreateMasterKeyFile(cfg.MasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		key = &k
		if created {
			log.Warn("GENERATED A NEW MASTER KEY: every stored secret (signing keys, IdP client secrets) is encrypted with it. "+
				"Back this file up together with the database: without it those secrets are lost. "+
				"In production set "+envMasterKey+" to its content instead.",
				"file", cfg.MasterKeyFile, "key_id", k)
		} else if !oneShot {
			log.Warn("master key read from a file beside the database; back it up with the database, "+
				"or set "+envMasterKey+" to its content in production",
				"file", cfg.MasterKeyFile, "key_id", k)
		}
	}
	// Older keys open what they sealed until `keys rewrap` has moved it
	// all under the primary one.
	kr, err := secrets.NewKeyring(*key, cfg.PreviousMasterKeys...)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return kr, nil
}

// warnStaleKeyFile warns when IDBROKER_MASTER_KEY is set but a different
// key sits in the master.key file beside the SQLite database: the usual
// mistake after following the advice to move the generated key into the
// environment, which would leave every secret sealed so far unopenable.
func warnStaleKeyFile(cfg Config, key secrets.MasterKey, log *slog.Logger) {
	path := filepath.Join(filepath.Dir(cfg.SQLitePath), masterKeyFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	fileKey, err := secrets.ParseMasterKey(string(b))
	clear(b)
	if err != nil || fileKey == key {
		return
	}
	if slices.Contains(cfg.PreviousMasterKeys, fileKey) {
		// The rotation operations.md describes on SQLite: the file's key
		// is the old one, still opening what it sealed.
		log.Info("the master.key file beside the database holds a key of "+envMasterKeyPrevious+", as during a master-key rotation; "+
			"once \"idbroker keys rewrap\" has finished, keep "+envMasterKey+" set or write its value into the file",
			"file", path, "env_key_id", key, "file_key_id", fileKey)
		return
	}
	log.Warn(envMasterKey+" differs from the key in the master.key file beside the database; "+
		"secrets sealed under the file's key will not open: set "+envMasterKey+" to the file's content",
		"file", path, "env_key_id", key, "file_key_id", fileKey)
}

// openStore opens the configured database. It does not migrate.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (*store.DB, error) {
	kr, err := openKeyring(cfg, log)
	if err != nil {
		return nil, err
	}
	return openStoreWith(ctx, cfg, kr, log)
}

// openStoreWith opens the configured database with the keyring kr; log
// hears of a revocation that could not be kept outside the database.
func openStoreWith(ctx context.Context, cfg Config, kr *secrets.Keyring, log *slog.Logger) (*store.DB, error) {
	if cfg.Driver == driverSQLite {
		// The data directory holds the database and its master key: no one
		// else needs to list it.
		if err := os.MkdirAll(filepath.Dir(cfg.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, kr)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactURL(cfg.DatabaseURL), err)
	}
	if cfg.RedisURL != "" {
		// Revocations that live in the database alone are kept in Redis
		// too, where a restore of the database does not reach
		// (store/tombstones.go); every command that can revoke (serve,
		// apikey, operator) opens the store here.
		l, err := sessions.OpenRedisLedger(cfg.RedisURL)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("open the tombstone ledger: %w", err)
		}
		st.SetLedger(l, func(err error) {
			log.Error("a revocation was not kept outside the database: restoring a backup taken before it would undo it "+
				"(see \"Restoring from a backup\" in the operations guide)", "err", err)
		})
	}
	return st, nil
}

// databaseName is how messages name the configured database: the SQLite
// file's absolute path, or the URL without its password.
func databaseName(cfg Config) string {
	if cfg.Driver == driverSQLite {
		return cfg.SQLitePath
	}
	return redactURL(cfg.DatabaseURL)
}

// opMessages are the lines zitadel/oidc's op logs, through the default
// logger, for each OAuth request it refuses.
var opMessages = map[string]bool{
	"request error": true, "auth request": true, "auth request redirect": true, "auth request: not redirecting": true,
}

// opLogHandler lowers op's lines about a refused request to DEBUG unless
// they report a server error. op logs a client's mistake (a wrong client
// secret, a spent refresh token, a bad redirect) at WARN: with the access
// log line (INFO for a client error, ERROR for the broker's own failure,
// which the broker also logs itself) that made two lines a request, one
// of them a warning nobody must act on, and a scanner filled the log
// with warnings.
type opLogHandler struct{ slog.Handler }

func (h opLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError && opMessages[r.Message] {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h opLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return opLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h opLogHandler) WithGroup(name string) slog.Handler {
	return opLogHandler{h.Handler.WithGroup(name)}
}
