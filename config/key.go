package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/totpadm/totpadm/models"
)

// ErrKey marks a key that is configured but unusable.
var ErrKey = errors.New("encryption key")

// LoadKey reads the key from keyFile when set, else from the base64 text
// in envKey. Neither set returns nil: commands that touch no secret work
// without a key, and those that do fail with models.ErrNoKey.
func LoadKey(keyFile, envKey string) (*models.Key, error) {
	if keyFile != "" {
		info, err := os.Stat(keyFile)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: key file %s does not exist (create it with `totpadm keygen --out %s`)", ErrKey, keyFile, keyFile)
			}
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		// Like ssh with a private key: a key others can read is not secret.
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("%w: key file %s is accessible by group or others (mode %04o): run `chmod 600 %s`", ErrKey, keyFile, perm, keyFile)
		}
		text, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
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
	return nil, nil
}

// WriteKeyFile writes a new key to path, mode 0600, refusing to replace an
// existing file: overwriting a key would orphan every secret sealed with it.
func WriteKeyFile(path, key string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s already exists; refusing to overwrite a key: %w", ErrKey, path, fs.ErrExist)
		}
		return fmt.Errorf("%w: %w", ErrKey, err)
	}
	if _, err := fmt.Fprintln(f, key); err != nil {
		f.Close()
		return fmt.Errorf("%w: write %s: %w", ErrKey, path, err)
	}
	return f.Close()
}
