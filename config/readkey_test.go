package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

// No key configured is an error a caller can test for, not a nil key it
// might pass on.
func TestReadKeyNoneConfigured(t *testing.T) {
	key, err := config.ReadKey("", "")
	if key != nil || !errors.Is(err, config.ErrNoKeyConfigured) || !errors.Is(err, models.ErrNoKey) {
		t.Fatalf("ReadKey(\"\", \"\") = %v, %v; want ErrNoKeyConfigured", key, err)
	}
	if !strings.Contains(err.Error(), "totpadm keygen") {
		t.Errorf("error does not say how to make a key: %v", err)
	}
	// LoadKey keeps its contract for the callers that rely on it.
	if key, err := config.LoadKey("", ""); key != nil || err != nil {
		t.Errorf("LoadKey(\"\", \"\") = %v, %v; want nil, nil", key, err)
	}
	// A configured but broken key is never mistaken for no key.
	if _, err := config.ReadKey("", "not base64!"); err == nil || errors.Is(err, config.ErrNoKeyConfigured) {
		t.Errorf("bad TOTPADM_KEY: %v", err)
	}
	if _, err := config.ReadKey(filepath.Join(t.TempDir(), "missing"), ""); err == nil || errors.Is(err, config.ErrNoKeyConfigured) {
		t.Errorf("missing key file: %v", err)
	}
}

func TestWriteKeyFileMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "totpadm")
	err := config.WriteKeyFile(filepath.Join(dir, "key"), "x")
	if err == nil || !strings.Contains(err.Error(), "could not create key file") || !strings.Contains(err.Error(), "the directory "+dir+" does not exist") {
		t.Fatalf("err = %v", err)
	}
	if _, statErr := os.Stat(dir); statErr == nil {
		t.Errorf("%s was created", dir)
	}
}
