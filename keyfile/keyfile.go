// Package keyfile loads and writes totpadm's encryption key: from a key
// file that only its owner can read, as ssh demands of a private key, or
// from the base64 text of TOTPADM_KEY. Unlike package config it links no
// SQLite driver (and so needs no cgo): an application's login path loads
// the key with it and with models alone.
package keyfile

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

// ErrNoKey: neither a key file nor TOTPADM_KEY is set. It wraps
// models.ErrNoKey, so that it classifies the same wherever it surfaces; a
// caller to whom a key is optional tests for it with errors.Is.
var ErrNoKey = fmt.Errorf("%w", models.ErrNoKey)

// Read reads the key from keyFile when set, else from the base64 text in
// envKey. Neither set is ErrNoKey: never a nil key without an error.
func Read(keyFile, envKey string) (*models.Key, error) {
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
	return nil, ErrNoKey
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

// Write writes a new key to path, mode 0600, refusing to replace an
// existing file: overwriting a key would orphan every secret sealed with it.
func Write(path, key string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		dir := filepath.Dir(path)
		switch {
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("%w: %s already exists; refusing to overwrite a key: %w", ErrKey, path, fs.ErrExist)
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%w: could not create key file %s: the directory %s does not exist (create it first: mkdir -m 700 %s)", ErrKey, path, dir, dir)
		}
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err // the path is named already
		}
		return fmt.Errorf("%w: could not create key file %s: %s", ErrKey, path, err)
	}
	if _, err := fmt.Fprintln(f, key); err != nil {
		f.Close()
		return fmt.Errorf("%w: write %s: %w", ErrKey, path, err)
	}
	return f.Close()
}
