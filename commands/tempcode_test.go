package commands_test

import (
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

func TestTempCodeCommand(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := statusEnrollAt(t, db, "alice", statusT0)
		statusActivate(t, db, "alice", alice.Secret, statusT0.Add(time.Minute))
		statusEnrollAt(t, db, "bob", statusT0) // pending
		t2 := statusT0.Add(2 * time.Minute)

		// Usage errors: one line, exit 2, nothing written.
		before := db.Dump(t)
		for _, args := range [][]string{
			{"temp-code", "alice"},
			{"temp-code", "--reason", "  ", "alice"},
			{"temp-code", "--ttl", "25h", "--reason", "x", "alice"},
			{"temp-code", "--ttl", "0s", "--reason", "x", "alice"},
			{"temp-code", "--ttl", "-1m", "--reason", "x", "alice"},
		} {
			res := statusRunAt(t, t2, db.Args(args...)...)
			if res.Code != 2 || strings.Count(res.Stderr, "\n") != 1 || !strings.HasPrefix(res.Stderr, "totpadm: ") {
				t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line", args, res.Code, res.Stderr)
			}
		}
		if db.Dump(t) != before {
			t.Error("a refused temp-code changed the database")
		}

		// Table: one clear line with the code and its expiry.
		res := statusRunAt(t, t2, db.Args("temp-code", "--ttl", "30m", "--reason", "ticket 7", "alice")...)
		until := t2.Add(30 * time.Minute).UTC().Format(time.RFC3339)
		if res.Code != 0 || !strings.Contains(res.Stdout, "alice: temporary access code ") || !strings.Contains(res.Stdout, until) {
			t.Fatalf("temp-code: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
		}
		if n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ? AND actor = ? AND reason = ?", "temp-code", "1", "tester", "ticket 7"); n != 1 {
			t.Errorf("%d temp-code audit rows with actor and reason, want 1", n)
		}

		// JSON: a code field and expires_at; it replaces the earlier code.
		res = statusRunAt(t, t2, db.Args("-o", "json", "temp-code", "--reason", "ticket 8", "alice")...)
		rows := statusJSONLines(t, res.Stdout)
		if res.Code != 0 || len(rows) != 1 {
			t.Fatalf("temp-code -o json: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
		}
		code := statusText(rows[0]["code"])
		until = t2.Add(time.Hour).UTC().Format(time.RFC3339)
		if len(code) != 14 || statusText(rows[0]["expires_at"]) != until || statusText(rows[0]["outcome"]) != "issued" {
			t.Fatalf("temp-code -o json: %v", rows[0])
		}
		if n := db.Count(t, "totp_temp_codes", "user_id = ?", "1"); n != 1 {
			t.Errorf("%d temp codes for alice, want 1", n)
		}

		// status shows it, in every format.
		res = statusRunAt(t, t2, db.Args("-o", "json", "status", "alice")...)
		if st := statusJSONLines(t, res.Stdout); len(st) != 1 || statusText(st[0]["temp_code_until"]) != until {
			t.Errorf("status -o json: %q", res.Stdout)
		}
		res = statusRunAt(t, t2, db.Args("-o", "csv", "status")...)
		if !strings.Contains(res.Stdout, ",temp_code_until\n") || !strings.Contains(res.Stdout, ","+until+"\n") {
			t.Errorf("status -o csv: %q", res.Stdout)
		}

		// Pending and not-enrolled users get none: exit 3.
		res = statusRunAt(t, t2, db.Args("temp-code", "--reason", "x", "bob")...)
		if res.Code != 3 || !strings.Contains(res.Stderr, "pending") {
			t.Errorf("temp-code for a pending user: exit %d, %q", res.Code, res.Stderr)
		}
		res = statusRunAt(t, t2, db.Args("temp-code", "--reason", "x", "carol")...)
		if res.Code != 3 {
			t.Errorf("temp-code for a user without 2FA: exit %d, %q", res.Code, res.Stderr)
		}

		// Locked out: the temp code still lets alice in once, and clears it.
		statusLockOut(t, db, "alice", alice.Secret, t2)
		t3 := t2.Add(time.Minute)
		res = statusVerifyAt(t, db, "alice", strings.ToUpper(code), t3)
		if res.Code != 0 || !strings.Contains(res.Stdout, "temporary access code accepted") {
			t.Fatalf("verify with the temp code while locked out: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
		}
		if st, f := unlockStatus(t, db, "alice", t3); st != "enabled" || f != "0" {
			t.Errorf("after the temp code: state %s failures %s, want enabled 0", st, f)
		}
		if res = statusVerifyAt(t, db, "alice", code, t3); res.Code != 1 {
			t.Errorf("temp code used twice: exit %d, want 1", res.Code)
		}
		if n := db.Count(t, "totp_audit_log", "action = ? AND outcome = ? AND reason LIKE ?", "verify", "ok (temporary code)", "%ticket 8%"); n != 1 {
			t.Errorf("%d audit rows for the use, want 1", n)
		}

		// Expired codes are refused.
		res = statusRunAt(t, t3, db.Args("-o", "json", "temp-code", "--ttl", "1m", "--reason", "x", "alice")...)
		code = statusText(statusJSONLines(t, res.Stdout)[0]["code"])
		if res = statusVerifyAt(t, db, "alice", code, t3.Add(time.Minute)); res.Code != 1 || !strings.Contains(res.Stderr, "expired") {
			t.Errorf("expired temp code: exit %d, %q", res.Code, res.Stderr)
		}

		// disable deletes it.
		statusRunAt(t, t3, db.Args("temp-code", "--reason", "x", "alice")...)
		if res = statusRunAt(t, t3, db.Args("disable", "--yes", "--reason", "gone", "alice")...); res.Code != 0 {
			t.Fatalf("disable: exit %d, %q", res.Code, res.Stderr)
		}
		if n := db.Count(t, "totp_temp_codes", ""); n != 0 {
			t.Errorf("%d temp codes after disable, want 0", n)
		}
	})
}
