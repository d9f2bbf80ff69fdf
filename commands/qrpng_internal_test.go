package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPNGNameStaysInsideTheDirectory(t *testing.T) {
	cases := []struct {
		login string
		plain bool // the file is exactly login.png
	}{
		{"alice", true},
		{"alice@example.com", true},
		{"a.b-c_d+e", true},
		{"../etc/passwd", false},
		{"a/b", false},
		{"a_b", true},
		{".hidden", false},
		{"..", false},
		{"C:\\x", false},
		{"ünïcode", false},
		{"", false},
		{strings.Repeat("x", 300), false},
	}
	seen := map[string]string{}
	for _, c := range cases {
		name := pngName(c.login)
		if name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
			t.Errorf("pngName(%q) = %q escapes or hides", c.login, name)
		}
		if !strings.HasSuffix(name, ".png") || len(name) > 120 {
			t.Errorf("pngName(%q) = %q: want a short .png name", c.login, name)
		}
		if got := name == c.login+".png"; got != c.plain {
			t.Errorf("pngName(%q) = %q: plain=%v, want %v", c.login, name, got, c.plain)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("logins %q and %q share the file %q", other, c.login, name)
		}
		seen[name] = c.login
	}
}

// createTemp makes a new, private file under a fresh unpredictable name
// each time, never reusing one that exists.
func TestQRPNGCreateTempIsExclusive(t *testing.T) {
	dir := t.TempDir()
	q, err := openQRDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	seen := map[string]bool{}
	for range 20 {
		f, name, err := q.createTemp()
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if seen[name] || name != filepath.Base(name) || !strings.HasPrefix(name, ".") || len(name) < 20 {
			t.Errorf("temporary name %q: want a fresh, hidden, long random name", name)
		}
		seen[name] = true
		info, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want a regular file with mode 0600", name, info.Mode(), err)
		}
	}
}

// A failed write leaves no temporary file behind.
func TestQRPNGWriteFailureRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	q, err := openQRDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	// A non-empty directory where alice.png goes: the rename fails.
	if err := os.MkdirAll(filepath.Join(dir, "alice.png", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := q.write("alice", "otpauth://totp/x:alice?secret=JBSWY3DPEHPK3PXP"); err == nil {
		t.Fatal("write over a directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "alice.png" {
		t.Errorf("directory holds %v after a failed write, want only alice.png", entries)
	}
}

// openQRDir creates a missing directory 0700 and refuses one that group
// or others may write to.
func TestOpenQRDirModes(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "b")
	q, err := openQRDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	q.close()
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("created %s: mode %v (%v), want 0700", dir, info.Mode(), err)
	}
	for _, mode := range []os.FileMode{0o700, 0o750, 0o755, 0o500} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		q, err := openQRDir(dir)
		if err != nil {
			t.Errorf("mode %v refused: %v", mode, err)
			continue
		}
		q.close()
	}
	for _, mode := range []os.FileMode{0o720, 0o702, 0o777, os.ModeSticky | 0o777} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		q, err := openQRDir(dir)
		if err == nil {
			q.close()
			t.Errorf("mode %v accepted", mode)
			continue
		}
		if ExitCode(err) != ExitEnvironment || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Errorf("mode %v: exit %d, %q; want %d and a chmod 700 hint", mode, ExitCode(err), err, ExitEnvironment)
		}
	}
	os.Chmod(dir, 0o700)
}
