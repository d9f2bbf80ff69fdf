package keyfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

// No key configured is an error a caller can test for, not a nil key it
// might pass on.
func TestReadKeyNoneConfigured(t *testing.T) {
	key, err := keyfile.Read("", "")
	if key != nil || !errors.Is(err, keyfile.ErrNoKey) || !errors.Is(err, models.ErrNoKey) {
		t.Fatalf("Read(\"\", \"\") = %v, %v; want ErrNoKey", key, err)
	}
	// A configured but broken key is never mistaken for no key.
	if _, err := keyfile.Read("", "not base64!"); err == nil || errors.Is(err, keyfile.ErrNoKey) {
		t.Errorf("bad TOTPADM_KEY: %v", err)
	}
	if _, err := keyfile.Read(filepath.Join(t.TempDir(), "missing"), ""); err == nil || errors.Is(err, keyfile.ErrNoKey) {
		t.Errorf("missing key file: %v", err)
	}
}

func TestWriteKeyFileMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "totpadm")
	err := keyfile.Write(filepath.Join(dir, "key"), "x")
	if err == nil || !strings.Contains(err.Error(), "could not create key file") || !strings.Contains(err.Error(), "the directory "+dir+" does not exist") {
		t.Fatalf("err = %v", err)
	}
	if _, statErr := os.Stat(dir); statErr == nil {
		t.Errorf("%s was created", dir)
	}
}
