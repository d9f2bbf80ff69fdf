package config_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

// A key file must be a small regular file only its owner can read; what
// is checked is what is read (one descriptor), and nothing that is not a
// regular file is read at all (a FIFO would block the command forever).
func TestLoadKeyRefusesWhatIsNotAKeyFile(t *testing.T) {
	key, err := models.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	subdir := filepath.Join(dir, "dir.key")
	if err := os.Mkdir(subdir, 0o700); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.key")
	if err := os.WriteFile(big, []byte(key+"\n"+strings.Repeat("#", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.key")
	if err := os.WriteFile(good, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"fifo", fifo, "not a regular file"},
		{"directory", subdir, "not a regular file"},
		{"oversized", big, "larger than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := config.LoadKey(c.path, "")
			if k != nil || !errors.Is(err, config.ErrKey) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadKey(%s) = %v, %v; want ErrKey mentioning %q", c.name, k, err, c.want)
			}
		})
	}
	// A symlink to a private key file is fine: the file behind it is checked.
	if k, err := config.LoadKey(link, ""); k == nil || err != nil {
		t.Fatalf("LoadKey through a symlink: %v, %v", k, err)
	}
}
