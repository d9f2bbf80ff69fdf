package commands_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// protectedDB marks alice as a protected account in a new is_superuser
// column, enrolls and activates alice and bob, and returns the global
// arguments that map the column.
func protectedDB(t *testing.T, db *testutil.DB) (args func(...string) []string, alice testutil.Enrolled) {
	t.Helper()
	db.Exec(t, "ALTER TABLE users ADD COLUMN is_superuser BOOLEAN")
	db.Exec(t, "UPDATE users SET is_superuser = TRUE WHERE username = 'alice'")
	db.Exec(t, "UPDATE users SET is_superuser = FALSE WHERE username = 'bob'")
	alice = statusEnrollAt(t, db, "alice", statusT0)
	statusActivate(t, db, "alice", alice.Secret, statusT0.Add(time.Minute))
	bob := statusEnrollAt(t, db, "bob", statusT0)
	statusActivate(t, db, "bob", bob.Secret, statusT0.Add(time.Minute))
	return func(a ...string) []string {
		return db.Args(append([]string{"--user-protected-column", "is_superuser"}, a...)...)
	}, alice
}

func TestProtectedAccountsRefusedWithoutOverride(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		args, _ := protectedDB(t, db)
		t2 := statusT0.Add(2 * time.Minute)
		for _, cmd := range [][]string{
			{"disable", "--yes", "--reason", "r"},
			{"temp-code", "--reason", "r"},
			{"backup-codes"},
			{"enroll", "--force", "--no-confirm"},
		} {
			before := db.Count(t, "totp_audit_log", "outcome = ? AND action = ?", "refused (protected)", cmd[0])
			res := statusRunAt(t, t2, args(append(cmd, "alice")...)...)
			if res.Code != 4 || !strings.Contains(res.Stderr, "protected account") || strings.Count(res.Stderr, "\n") != 1 {
				t.Errorf("%v alice: exit %d, stderr %q; want exit 4 naming the protected account", cmd, res.Code, res.Stderr)
			}
			if n := db.Count(t, "totp_audit_log", "outcome = ? AND user_login = ? AND action = ?", "refused (protected)", "alice", cmd[0]); n != before+1 {
				t.Errorf("%v: %d refusal audit rows, want %d", cmd, n, before+1)
			}
			if n := db.Count(t, "totp_credentials", "user_id = '1'"); n != 1 {
				t.Fatalf("%v: alice's credential is gone", cmd)
			}
			// JSON names the outcome.
			res = statusRunAt(t, t2, args(append([]string{"-o", "json"}, append(cmd, "alice")...)...)...)
			if rows := statusJSONLines(t, res.Stdout); res.Code != 4 || len(rows) != 1 || statusText(rows[0]["outcome"]) != "protected" {
				t.Errorf("%v -o json: exit %d, %q", cmd, res.Code, res.Stdout)
			}
		}
		// An unprotected user in the same run is done; the run exits 4.
		res := statusRunAt(t, t2, args("backup-codes", "alice", "bob")...)
		if res.Code != 4 || !strings.Contains(res.Stdout, "bob: new backup codes") {
			t.Errorf("backup-codes alice bob: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
		}
		// Without the column mapped, nothing is protected.
		if res := statusRunAt(t, t2, db.Args("backup-codes", "alice")...); res.Code != 0 {
			t.Errorf("backup-codes without the mapping: exit %d, %q", res.Code, res.Stderr)
		}
		// status shows the flag only when mapped.
		res = statusRunAt(t, t2, args("-o", "csv", "status")...)
		if !strings.Contains(res.Stdout, ",temp_code_until,protected\n") || !strings.Contains(res.Stdout, ",true\n") || !strings.Contains(res.Stdout, ",false\n") {
			t.Errorf("status -o csv with the mapping: %q", res.Stdout)
		}
		res = statusRunAt(t, t2, args("-o", "json", "status", "alice")...)
		if rows := statusJSONLines(t, res.Stdout); len(rows) != 1 || rows[0]["protected"] != true {
			t.Errorf("status -o json alice: %q", res.Stdout)
		}
		if res := statusRunAt(t, t2, db.Args("-o", "csv", "status")...); strings.Contains(res.Stdout, "protected") {
			t.Errorf("status without the mapping shows protected: %q", res.Stdout)
		}
	})
}

func TestProtectedAccountsOverride(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		args, _ := protectedDB(t, db)
		t2 := statusT0.Add(2 * time.Minute)

		// On a terminal without --yes the login must be typed.
		opt := testutil.Options{Interactive: true, Stdin: "alicex\n", Now: func() time.Time { return t2 }}
		res := testutil.Run(t, opt, args("temp-code", "--allow-protected", "--reason", "r", "alice")...)
		if res.Code != 4 || !strings.Contains(res.Stderr, "Type its login") {
			t.Errorf("mistyped confirmation: exit %d, %q", res.Code, res.Stderr)
		}
		opt.Stdin = "alice\n"
		res = testutil.Run(t, opt, args("temp-code", "--allow-protected", "--reason", "r", "alice")...)
		if res.Code != 0 || !strings.Contains(res.Stdout, "alice: temporary access code") {
			t.Errorf("confirmed override: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
		}
		opt.Stdin = "alice\n"
		res = testutil.Run(t, opt, args("backup-codes", "--allow-protected", "alice")...)
		if res.Code != 0 {
			t.Errorf("backup-codes, login typed: exit %d, %q", res.Code, res.Stderr)
		}
		// disable on a terminal asks twice: its own y/N, then the login.
		opt.Stdin = "y\nbobby\n"
		res = testutil.Run(t, opt, args("disable", "--allow-protected", "--reason", "r", "alice")...)
		if res.Code != 4 || !strings.Contains(res.Stderr, "[y/N]") || !strings.Contains(res.Stderr, "Type its login") {
			t.Errorf("disable on a terminal, wrong login typed: exit %d, %q", res.Code, res.Stderr)
		}
		// With --yes (or off a terminal) --allow-protected alone suffices.
		opt.Stdin = ""
		res = testutil.Run(t, opt, args("temp-code", "--allow-protected", "--yes", "--reason", "r", "alice")...)
		if res.Code != 0 || strings.Contains(res.Stderr, "Type its login") {
			t.Errorf("temp-code --allow-protected --yes on a terminal: exit %d, %q", res.Code, res.Stderr)
		}
		opt.Stdin = "y\nalice\n"
		res = testutil.Run(t, opt, args("disable", "--allow-protected", "--reason", "left", "alice")...)
		if res.Code != 0 {
			t.Fatalf("disable --allow-protected: exit %d, %q", res.Code, res.Stderr)
		}
		if n := db.Count(t, "totp_credentials", "user_id = '1'"); n != 0 {
			t.Error("alice still enrolled after the override")
		}
		n := db.Count(t, "totp_audit_log", "outcome = ? AND user_login = ? AND reason = ?", "override (protected)", "alice", "left (protected account, override)")
		if n != 1 {
			t.Errorf("%d disable override audit rows, want 1", n)
		}
		if n := db.Count(t, "totp_audit_log", "outcome = ? AND action = ?", "override (protected)", "temp-code"); n != 2 {
			t.Errorf("%d temp-code override audit rows, want 2", n)
		}
		// A first enrollment of a protected user needs no override.
		if res := statusRunAt(t, t2, args("enroll", "--force", "--no-confirm", "alice")...); res.Code != 0 {
			t.Errorf("enroll --force of a protected user without 2FA: exit %d, %q", res.Code, res.Stderr)
		}
	})
}

// TestProtectedAccountsImportForce: import --force over a protected
// account's enrollment is refused (exit 4, audited) unless
// --allow-protected; a protected user without 2FA imports freely.
func TestProtectedAccountsImportForce(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		args, _ := protectedDB(t, db)
		t2 := statusT0.Add(2 * time.Minute)
		r := statusRunAt(t, t2, args("export", "--yes", "alice")...)
		if r.Code != 0 {
			t.Fatalf("export: exit %d, %q", r.Code, r.Stderr)
		}
		file := filepath.Join(t.TempDir(), "exp.txt")
		if err := os.WriteFile(file, []byte(r.Stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		before := db.Dump(t)
		r = statusRunAt(t, t2, args("import", "--force", file)...)
		if r.Code != 4 || !strings.Contains(r.Stderr, "protected account") {
			t.Errorf("import --force over a protected enrollment: exit %d, %q", r.Code, r.Stderr)
		}
		if n := db.Count(t, "totp_audit_log", "action = ? AND outcome = ?", "import", "refused (protected)"); n != 1 {
			t.Errorf("%d import refusal audit rows, want 1", n)
		}
		db.Exec(t, "DELETE FROM totp_audit_log WHERE outcome = 'refused (protected)'")
		if db.Dump(t) != before {
			t.Error("a refused import changed more than the audit log")
		}
		r = statusRunAt(t, t2, args("import", "--force", "--allow-protected", file)...)
		if r.Code != 0 {
			t.Errorf("import --force --allow-protected: exit %d, %q", r.Code, r.Stderr)
		}
		if n := db.Count(t, "totp_audit_log", "action = ? AND outcome = ?", "import", "override (protected)"); n != 1 {
			t.Errorf("%d import override audit rows, want 1", n)
		}
	})
}
