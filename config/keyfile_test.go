package config_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

// A key file must be a small regular file or pipe only its owner can read;
// what is checked is what is read (one descriptor); a device or directory
// is not read at all, and a pipe nobody writes to does not hang the
// command.
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
		{"fifo without a writer", fifo, "decodes to 0 bytes"},
		{"directory", subdir, "not a regular file or a pipe"},
		{"device", os.DevNull, "not a regular file or a pipe"},
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
	// A pipe with the key in it, as --key-file <(vault read …) gives.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.WriteString(key + "\n")
		w.Close()
	}()
	defer r.Close()
	piped := fmt.Sprintf("/dev/fd/%d", r.Fd())
	if k, err := config.LoadKey(piped, ""); k == nil || err != nil {
		t.Fatalf("LoadKey from a pipe: %v, %v", k, err)
	}
}
