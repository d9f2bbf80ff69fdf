package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/totpadm/totpadm/models"
)

// ErrKey marks a key that is configured but unusable.
var ErrKey = errors.New("encryption key")

// ErrNoKeyConfigured: neither a key file nor TOTPADM_KEY is set. It wraps
// models.ErrNoKey, whose message says how to make a key, so that it reads
// and classifies the same wherever it surfaces.
var ErrNoKeyConfigured = fmt.Errorf("%w", models.ErrNoKey)

// LoadKey is ReadKey for callers to whom no key is no error: it returns
// nil, nil then.
//
// Deprecated: a nil key is easy to pass on unchecked. Use ReadKey and
// test for errors.Is(err, ErrNoKeyConfigured) where a key is optional.
func LoadKey(keyFile, envKey string) (*models.Key, error) {
	key, err := ReadKey(keyFile, envKey)
	if errors.Is(err, ErrNoKeyConfigured) {
		return nil, nil
	}
	return key, err
}

// ReadKey reads the key from keyFile when set, else from the base64 text
// in envKey. Neither set is ErrNoKeyConfigured.
func ReadKey(keyFile, envKey string) (*models.Key, error) {
	if keyFile != "" {
		text, err := readKeyFile(keyFile)
		if err != nil {
			return nil, err
		}
		key, err := models.ParseKey(string(text))
		if err != nil {
			return nil, fmt.Errorf("%w: key file %s: %w", ErrKey, keyFile, err)
		}
		return key, nil
	}
	if envKey != "" {
		key, err := models.ParseKey(envKey)
		if err != nil {
			return nil, fmt.Errorf("%w: TOTPADM_KEY: %w", ErrKey, err)
		}
		return key, nil
	}
	return nil, ErrNoKeyConfigured
}

// maxKeyFileSize bounds what is read from a key file: a key is 44 bytes of
// base64, so anything much larger is the wrong file.
const maxKeyFileSize = 4096

// readKeyFile reads a key file the way ssh reads a private key: refused
// when group or others can access it. The checks and the read go through
// one open descriptor, so the file checked is the file read (a path
// swapped in between cannot slip a readable copy past the check). A
// regular file or a pipe qualifies — `--key-file <(vault read …)` keeps the
// key off the disk; the open does not wait for a writer, and a pipe nobody
// writes to reads as empty — but not a device or a directory.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlocking, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: key file %s does not exist (create it with `totpadm keygen --out %s`)", ErrKey, path, path)
		}
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if !info.Mode().IsRegular() && info.Mode().Type() != fs.ModeNamedPipe {
		return nil, fmt.Errorf("%w: key file %s is not a regular file or a pipe", ErrKey, path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s is accessible by group or others (mode %04o): run `chmod 600 %s`", ErrKey, path, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrKey, path, err)
	}
	if len(text) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: key file %s is larger than %d bytes: not a key file", ErrKey, path, maxKeyFileSize)
	}
	return text, nil
}

// WriteKeyFile writes a new key to path, mode 0600, refusing to replace an
// existing file: overwriting a key would orphan every secret sealed with it.
func WriteKeyFile(path, key string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		dir := filepath.Dir(path)
		switch {
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("%w: %s already exists; refusing to overwrite a key: %w", ErrKey, path, fs.ErrExist)
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%w: could not create key file %s: the directory %s does not exist (create it first: mkdir -m 700 %s)", ErrKey, path, dir, dir)
		}
		return fmt.Errorf("%w: could not create key file %s: %s", ErrKey, path, reason(err))
	}
	if _, err := fmt.Fprintln(f, key); err != nil {
		f.Close()
		return fmt.Errorf("%w: write %s: %w", ErrKey, path, err)
	}
	return f.Close()
}
