package commands_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// keygen --out into a directory that does not exist says it could not
// create the file and why; it said "encryption key: open …: no such file
// or directory", which reads as a key that could not be found.
func TestKeygenOutMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	res := testutil.Run(t, testutil.Options{}, "keygen", "--out", filepath.Join(dir, "key"))
	if res.Code != 5 || res.Stdout != "" {
		t.Fatalf("exit %d, stdout %q", res.Code, res.Stdout)
	}
	line := strings.TrimRight(res.Stderr, "\n")
	for _, want := range []string{"totpadm: ", "could not create key file " + filepath.Join(dir, "key"), "the directory " + dir + " does not exist", "mkdir"} {
		if !strings.Contains(line, want) || strings.Contains(line, "\n") {
			t.Errorf("stderr lacks %q: %q", want, res.Stderr)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s was created", dir)
	}
}

// doctor says which email column it uses and why, and points out an
// email column that none is configured for.
func TestDoctorEmailColumn(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		checks := doctorJSON(t, testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "doctor")...))
		if d := checks["users table"].Detail; !strings.Contains(d, "email email (detected: no --user-email-column configured, and the table has a column named email)") {
			t.Errorf("without --user-email-column: %q", d)
		}
		checks = doctorJSON(t, testutil.Run(t, testutil.Options{}, db.Args("--user-email-column", "email", "-o", "json", "doctor")...))
		if d := checks["users table"].Detail; !strings.HasSuffix(d, ", email email") {
			t.Errorf("with --user-email-column email: %q", d)
		}
		db.Exec(t, "CREATE TABLE staff (id INTEGER PRIMARY KEY, username TEXT, user_email TEXT)")
		checks = doctorJSON(t, testutil.Run(t, testutil.Options{}, db.Args("--users-table", "staff", "-o", "json", "doctor")...))
		if d := checks["users table"].Detail; !strings.HasSuffix(d, ", no email column") {
			t.Errorf("a table without a column named email: %q", d)
		}
	})
}
