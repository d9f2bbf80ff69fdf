package keyfile_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/totpadm/totpadm/keyfile"
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
			k, err := keyfile.Read(c.path, "")
			if k != nil || !errors.Is(err, keyfile.ErrKey) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadKey(%s) = %v, %v; want ErrKey mentioning %q", c.name, k, err, c.want)
			}
		})
	}
	// A symlink to a private key file is fine: the file behind it is checked.
	if k, err := keyfile.Read(link, ""); k == nil || err != nil {
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
	if k, err := keyfile.Read(piped, ""); k == nil || err != nil {
		t.Fatalf("LoadKey from a pipe: %v, %v", k, err)
	}
}

func configTestKey(t *testing.T) string {
	t.Helper()
	key, err := models.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// configKeyFile writes key to a file with exactly mode perm.
func configKeyFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "totpadm.key")
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyPermissions(t *testing.T) {
	key := configTestKey(t)
	for _, tc := range []struct {
		perm os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o660, false},
		{0o610, false},
		{0o666, false},
	} {
		t.Run(tc.perm.String(), func(t *testing.T) {
			path := configKeyFile(t, key, tc.perm)
			k, err := keyfile.Read(path, "")
			if tc.ok {
				if err != nil || k == nil {
					t.Fatalf("LoadKey of a %04o file: key %v, error %v", tc.perm, k, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadKey accepted a key file with mode %04o", tc.perm)
			}
			if k != nil {
				t.Errorf("LoadKey returned a key along with the error")
			}
			if !errors.Is(err, keyfile.ErrKey) || !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("error %q should wrap ErrKey and say to chmod 600", err)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestLoadKeySources(t *testing.T) {
	key, other := configTestKey(t), configTestKey(t)
	fromFile, err := keyfile.Read(configKeyFile(t, key, 0o600), "")
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := keyfile.Read("", key)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile == nil || fromEnv == nil || fromFile.ID() != fromEnv.ID() {
		t.Fatalf("the same key read from a file and from TOTPADM_KEY differs")
	}
	both, err := keyfile.Read(configKeyFile(t, key, 0o600), other)
	if err != nil || both.ID() != fromFile.ID() {
		t.Errorf("a key file must take precedence over TOTPADM_KEY (err %v)", err)
	}
	if k, err := keyfile.Read("", ""); k != nil || !errors.Is(err, keyfile.ErrNoKey) {
		t.Errorf("no key configured: %v, %v; want ErrNoKey", k, err)
	}

	for _, tc := range []struct {
		name          string
		file, env     string
		errHas, never string
	}{
		{name: "missing file", file: filepath.Join(t.TempDir(), "none.key"), errHas: "keygen"},
		{name: "garbage file", file: configKeyFile(t, "not a key at all!!", 0o600), errHas: "base64", never: "not a key at all"},
		{name: "short key file", file: configKeyFile(t, "c2hvcnRrZXlzaG9ydGtleQ==", 0o600), errHas: "bytes", never: "c2hvcnRrZXlzaG9ydGtleQ"},
		{name: "garbage TOTPADM_KEY", env: "###not-base64###", errHas: "TOTPADM_KEY", never: "###not-base64###"},
		{name: "truncated TOTPADM_KEY", env: key[:20], errHas: "TOTPADM_KEY", never: key[:20]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := keyfile.Read(tc.file, tc.env)
			if err == nil || k != nil {
				t.Fatalf("LoadKey: key %v, error %v; want an error", k, err)
			}
			if !errors.Is(err, keyfile.ErrKey) || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q should wrap ErrKey and mention %q", err, tc.errHas)
			}
			if tc.never != "" && strings.Contains(err.Error(), tc.never) {
				t.Errorf("error %q shows the key material", err)
			}
		})
	}
}

func TestWriteKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "totpadm.key")
	key := configTestKey(t)
	if err := keyfile.Write(path, key); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	loaded, err := keyfile.Read(path, "")
	if err != nil {
		t.Fatalf("LoadKey of a written key file: %v", err)
	}
	want, _ := keyfile.Read("", key)
	if loaded.ID() != want.ID() {
		t.Errorf("the written key file holds another key")
	}

	// A second write must not replace the key: that would orphan every
	// secret sealed with it.
	err = keyfile.Write(path, configTestKey(t))
	if err == nil {
		t.Fatal("WriteKeyFile overwrote an existing key file")
	}
	if !errors.Is(err, keyfile.ErrKey) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("error %q should wrap ErrKey and say the file exists", err)
	}
	again, err2 := keyfile.Read(path, "")
	if err2 != nil || again.ID() != want.ID() {
		t.Errorf("the refused write changed the key file (err %v)", err2)
	}
	// Callers (EnsureDemo's concurrent first run) tell "someone else
	// created the key" from a real failure with errors.Is(err, fs.ErrExist).
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteKeyFile's refusal does not match fs.ErrExist, so EnsureDemo's race handling (which checks errors.Is(err, fs.ErrExist)) never applies: %v", err)
	}

	// Nor may it write into a directory that does not exist, or follow
	// through an existing path of another kind.
	if err := keyfile.Write(filepath.Join(dir, "no", "such", "dir.key"), key); err == nil || !errors.Is(err, keyfile.ErrKey) {
		t.Errorf("WriteKeyFile into a missing directory: %v", err)
	}
	if err := keyfile.Write(dir, key); err == nil {
		t.Errorf("WriteKeyFile onto a directory succeeded")
	}
}
