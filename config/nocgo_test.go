package config_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A binary built with CGO_ENABLED=0 has no SQLite driver. It must say so in
// totpadm's words, exit 5, and create nothing — the demo path used to
// write ./totpadm.key before the stub driver failed.
func TestNoCgoBinaryRefusesSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds totpadm with CGO_ENABLED=0")
	}
	bin := filepath.Join(t.TempDir(), "totpadm")
	build := exec.Command("go", "build", "-o", bin, "github.com/totpadm/totpadm")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build with CGO_ENABLED=0: %v\n%s", err, out)
	}

	run := func(t *testing.T, dir string, args ...string) (stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatal(err)
		}
		if out.Len() > 0 {
			t.Errorf("stdout: %q", out.String())
		}
		return errOut.String(), code
	}
	entries := func(t *testing.T, dir string) []string {
		t.Helper()
		list, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range list {
			names = append(names, e.Name())
		}
		return names
	}
	check := func(t *testing.T, stderr string, code int, why string) {
		t.Helper()
		if code != 5 {
			t.Errorf("exit %d, want 5", code)
		}
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "totpadm: ") {
			t.Fatalf("want one line prefixed totpadm:, got %q", stderr)
		}
		for _, want := range []string{why, "SQLite support is not compiled into this totpadm", "CGO_ENABLED=0", "apt-get install gcc", "postgres://"} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("message lacks %q: %q", want, lines[0])
			}
		}
		if strings.Contains(lines[0], "go-sqlite3") || strings.Contains(lines[0], "stub") {
			t.Errorf("message is the driver's, not totpadm's: %q", lines[0])
		}
	}

	t.Run("demo default", func(t *testing.T) {
		dir := t.TempDir()
		for _, args := range [][]string{{"status"}, {"enroll", "--no-confirm", "alice"}} {
			stderr, code := run(t, dir, args...)
			check(t, stderr, code, "SQLite demo database")
			if names := entries(t, dir); len(names) > 0 {
				t.Errorf("%v left files behind: %v", args, names)
			}
		}
	})
	t.Run("--db file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "app.db"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		stderr, code := run(t, dir, "--db", "app.db", "status")
		check(t, stderr, code, "app.db is a SQLite database")
		if names := entries(t, dir); len(names) != 1 {
			t.Errorf("files after the run: %v, want only app.db", names)
		}
	})
	t.Run("postgres still works", func(t *testing.T) {
		pg := os.Getenv("TOTPADM_TEST_POSTGRES")
		if pg == "" {
			t.Skip("set TOTPADM_TEST_POSTGRES to check that a cgo-less binary reaches PostgreSQL")
		}
		cmd := exec.Command(bin, "--db", pg, "migrate", "--dry-run")
		cmd.Dir = t.TempDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("migrate --dry-run on PostgreSQL: %v\n%s", err, out)
		}
	})
}
