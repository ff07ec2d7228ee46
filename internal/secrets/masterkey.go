package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MasterKeySize is the size of a master key: an AES-256 key.
const MasterKeySize = 32

// maxKeyFileSize bounds what LoadOrCreateMasterKeyFile reads; a key file is
// 44 bytes of base64 and a newline.
const maxKeyFileSize = 1 << 10

// MasterKey is the key that wraps every data key. It formats and logs as its
// id only, so that printing a config struct never leaks it.
type MasterKey [MasterKeySize]byte

// ID identifies the key without revealing it: the first 4 bytes of a
// domain-separated SHA-256 of the key. Sealed values carry it so Open knows
// which key of a Keyring to use, and operators can tell keys apart in logs.
func (k MasterKey) ID() [4]byte {
	h := sha256.New()
	h.Write([]byte("idbroker secrets master key id v1\x00"))
	h.Write(k[:])
	var id [4]byte
	copy(id[:], h.Sum(nil))
	return id
}

// String returns the key id in hex, never the key.
func (k MasterKey) String() string {
	id := k.ID()
	return "MasterKey(" + hex.EncodeToString(id[:]) + ")"
}

// Format makes every fmt verb (%v, %x, %d, %#v, …) print String, not the
// key bytes.
func (k MasterKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue keeps the key out of structured logs.
func (k MasterKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// ParseMasterKey decodes a master key given as base64, in the standard or
// URL-safe alphabet, padded or not, surrounding whitespace ignored (so a key
// file may end in a newline). It must decode to exactly 32 bytes. Errors
// describe what is wrong without repeating the value.
func ParseMasterKey(b64 string) (MasterKey, error) {
	var k MasterKey
	s := strings.TrimSpace(b64)
	if s == "" {
		return k, errors.New("secrets: master key is empty")
	}
	// Padding carries no information; dropping it lets one strict decoder
	// per alphabet accept both forms.
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	raw, err := enc.Strict().DecodeString(s)
	if err != nil {
		var cie base64.CorruptInputError
		if errors.As(err, &cie) {
			return k, fmt.Errorf("secrets: master key is not valid base64: bad character or length at offset %d", int64(cie))
		}
		return k, errors.New("secrets: master key is not valid base64")
	}
	if len(raw) != MasterKeySize {
		return k, fmt.Errorf("secrets: master key decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", len(raw), MasterKeySize)
	}
	copy(k[:], raw)
	clear(raw)
	if k == (MasterKey{}) {
		return k, errors.New("secrets: master key is all zero bytes")
	}
	return k, nil
}

// GenerateMasterKey returns a new random master key.
func GenerateMasterKey() MasterKey {
	var k MasterKey
	rand.Read(k[:]) // never fails; crashes the program if the OS RNG does
	return k
}

// EncodeMasterKey returns k as padded standard base64, the form
// ParseMasterKey and the key file use.
func EncodeMasterKey(k MasterKey) string { return base64.StdEncoding.EncodeToString(k[:]) }

// LoadOrCreateMasterKeyFile reads the master key of the embedded default
// deployment from path, creating it on first start.
//
// When path does not exist, a random key is written there as base64 with mode
// 0600 (its directory is created 0700 if missing), and created is true. The
// file appears atomically and is never overwritten: if another process
// creates it first, that process's key is loaded instead, so two instances
// started together cannot end up sealing under different keys.
//
// An existing file is refused when group or others have any access to it,
// since anyone who can read it can open every sealed secret.
func LoadOrCreateMasterKeyFile(path string) (key MasterKey, created bool, err error) {
	k, err := readKeyFile(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	k = GenerateMasterKey()
	switch err := createKeyFile(path, k); {
	case err == nil:
		return k, true, nil
	case errors.Is(err, fs.ErrExist):
		// Lost the race to another process: its key is the key.
		k, err := readKeyFile(path)
		return k, false, err
	default:
		return MasterKey{}, false, err
	}
}

func readKeyFile(path string) (MasterKey, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return MasterKey{}, err
		}
		return MasterKey{}, fmt.Errorf("secrets: open master key file: %w", err)
	}
	defer f.Close()
	// Check the mode of the file actually opened, not of whatever the path
	// named a moment earlier.
	fi, err := f.Stat()
	if err != nil {
		return MasterKey{}, fmt.Errorf("secrets: stat master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return MasterKey{}, fmt.Errorf("secrets: master key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits; its ACLs are the operator's job.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return MasterKey{}, fmt.Errorf("secrets: master key file %s has mode %#o, so group or others can access it; anyone who reads it can decrypt every stored secret: run `chmod 600 %s` (and check who could have read it)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return MasterKey{}, fmt.Errorf("secrets: read master key file: %w", err)
	}
	defer clear(b)
	if len(b) > maxKeyFileSize {
		return MasterKey{}, fmt.Errorf("secrets: master key file %s is larger than %d bytes; it should hold one base64 key", path, maxKeyFileSize)
	}
	k, err := ParseMasterKey(string(b))
	if err != nil {
		return MasterKey{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// createKeyFile writes k to a temporary file in path's directory, syncs it,
// and links it into place. A hard link, unlike rename, fails when path
// already exists, which is what makes creation exclusive; on file systems
// without hard links it falls back to rename.
func createKeyFile(path string, k MasterKey) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secrets: create master key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return fmt.Errorf("secrets: create master key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	// CreateTemp already uses 0600; Chmod makes it independent of that detail.
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("secrets: create master key file: %w", err)
	}
	if _, err := tmp.WriteString(EncodeMasterKey(k) + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: write master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: write master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("secrets: write master key file: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if _, statErr := os.Lstat(path); statErr == nil {
			return fs.ErrExist
		}
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("secrets: install master key file: %w", err)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes the new directory entry durable, so a crash right after
// first start cannot lose the key that has just sealed the first secrets.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every OS or file system supports it
		d.Close()
	}
}
