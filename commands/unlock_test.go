package commands_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// unlockStatus returns state and failures of one user at time at.
func unlockStatus(t *testing.T, db *testutil.DB, login string, at time.Time) (state, failures string) {
	t.Helper()
	res := statusRunAt(t, at, db.Args("-o", "json", "status", login)...)
	rows := statusJSONLines(t, res.Stdout)
	if res.Code != 0 || len(rows) != 1 {
		t.Fatalf("status %s: exit %d, %q, %q", login, res.Code, res.Stdout, res.Stderr)
	}
	return statusText(rows[0]["state"]), statusText(rows[0]["failures"])
}

func TestUnlockAfterLockout(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := statusEnrollAt(t, db, "alice", statusT0)
		statusActivate(t, db, "alice", alice.Secret, statusT0.Add(time.Minute))
		statusLockOut(t, db, "alice", alice.Secret, statusT0.Add(2*time.Minute))

		// Locked: even the right code is refused.
		t3 := statusT0.Add(3 * time.Minute)
		if res := statusVerifyAt(t, db, "alice", testutil.Code(t, alice.Secret, t3), t3); res.Code != 1 {
			t.Fatalf("verify while locked: exit %d, want 1 (stderr %q)", res.Code, res.Stderr)
		}
		if st, f := unlockStatus(t, db, "alice", t3); st != "locked" || f != "5" {
			t.Fatalf("before unlock: state %s failures %s, want locked 5", st, f)
		}

		res := statusRunAt(t, t3, db.Args("unlock", "alice")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("unlock: exit %d, stderr %q", res.Code, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "alice: unlocked") {
			t.Errorf("unlock output %q lacks \"alice: unlocked\"", res.Stdout)
		}
		if st, f := unlockStatus(t, db, "alice", t3); st != "enabled" || f != "0" {
			t.Errorf("after unlock: state %s failures %s, want enabled 0", st, f)
		}
		n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ? AND user_login = ? AND outcome = ? AND actor = ? AND host = ?",
			"unlock", "1", "alice", "unlocked", "tester", "testhost")
		if n != 1 {
			t.Errorf("unlock audit rows = %d, want 1", n)
		}

		// The failure count starts afresh: one wrong code does not re-lock.
		t4 := statusT0.Add(4 * time.Minute)
		if r := statusVerifyAt(t, db, "alice", statusWrongCode(t, alice.Secret, t4), t4); r.Code != 1 {
			t.Errorf("wrong code after unlock: exit %d, want 1", r.Code)
		}
		if st, f := unlockStatus(t, db, "alice", t4); st != "enabled" || f != "1" {
			t.Errorf("after one wrong code: state %s failures %s, want enabled 1", st, f)
		}
		// A fresh correct code is accepted.
		t5 := statusT0.Add(5 * time.Minute)
		if r := statusVerifyAt(t, db, "alice", testutil.Code(t, alice.Secret, t5), t5); r.Code != 0 {
			t.Errorf("verify after unlock: exit %d, want 0 (stderr %q)", r.Code, r.Stderr)
		}
	})
}

func TestUnlockOutcomes(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := statusEnrollAt(t, db, "alice", statusT0)
		statusEnrollAt(t, db, "bob", statusT0)
		statusLockOut(t, db, "alice", alice.Secret, statusT0)
		now := statusT0.Add(time.Minute)

		res := statusRunAt(t, now, db.Args("-o", "json", "unlock", "alice", "id:2", "carol", "nobody")...)
		if res.Code != 3 {
			t.Errorf("exit %d, want 3 (stderr %q)", res.Code, res.Stderr)
		}
		if strings.Count(res.Stderr, "\n") != 2 || strings.Count(res.Stderr, "totpadm: ") != 2 ||
			!strings.Contains(res.Stderr, "carol") || !strings.Contains(res.Stderr, "nobody") {
			t.Errorf("stderr should be one line for carol and one for nobody: %q", res.Stderr)
		}
		var got [][]string
		for _, r := range statusJSONLines(t, res.Stdout) {
			got = append(got, []string{statusText(r["user"]), statusText(r["login"]), statusText(r["outcome"])})
		}
		want := [][]string{{"alice", "alice", "unlocked"}, {"id:2", "bob", "not locked"}, {"carol", "carol", "not enrolled"}, {"nobody", "", "not found"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("results %v, want %v", got, want)
		}
		if st, _ := unlockStatus(t, db, "alice", now); st != "pending" {
			t.Errorf("alice after unlock: %s, want pending (not locked)", st)
		}
		// Unlocking an unlocked user changes nothing but is audited.
		if n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ? AND outcome = ? AND actor = ?", "unlock", "2", "not locked", "tester"); n != 1 {
			t.Errorf("audit rows for unlocking bob = %d, want 1", n)
		}
		if n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ?", "unlock", "3"); n != 0 {
			t.Errorf("audit rows for unlocking carol (not enrolled) = %d, want 0", n)
		}
	})
}

func TestUnlockFromStdin(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := statusEnrollAt(t, db, "alice", statusT0)
		bob := statusEnrollAt(t, db, "bob", statusT0)
		statusLockOut(t, db, "alice", alice.Secret, statusT0)
		statusLockOut(t, db, "bob", bob.Secret, statusT0)
		now := statusT0.Add(time.Minute)
		// The pipeline from the command's help: logins from status CSV.
		res := testutil.Run(t, testutil.Options{Stdin: "# locked users\nalice\n\nid:2\n", Now: func() time.Time { return now }},
			db.Args("unlock", "--from-file", "-")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
		for _, login := range []string{"alice", "bob"} {
			if st, f := unlockStatus(t, db, login, now); st != "pending" || f != "0" {
				t.Errorf("%s: state %s failures %s, want pending 0", login, st, f)
			}
		}
	})
}

func TestUnlockFailures(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := statusEnrollAt(t, db, "alice", statusT0)
		statusLockOut(t, db, "alice", alice.Secret, statusT0)
		for _, tc := range []struct {
			name     string
			args     []string
			wantCode int
			stderr   string
		}{
			{"not enrolled", []string{"unlock", "carol"}, 3, "carol"},
			{"not enrolled by id", []string{"unlock", "id:2"}, 3, "not enrolled"},
			{"unknown user", []string{"unlock", "nobody"}, 3, "nobody"},
			{"no user", []string{"unlock"}, 2, "USER"},
			{"invalid reference stops everything", []string{"unlock", "alice", "id:"}, 2, "id:"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := db.Dump(t)
				res := statusRunAt(t, statusT0.Add(time.Minute), db.Args(tc.args...)...)
				if res.Code != tc.wantCode {
					t.Errorf("exit %d, want %d (stderr %q)", res.Code, tc.wantCode, res.Stderr)
				}
				statusOneErrorLine(t, res.Stderr)
				if !strings.Contains(res.Stderr, tc.stderr) {
					t.Errorf("stderr %q lacks %q", res.Stderr, tc.stderr)
				}
				if res.Stdout != "" {
					t.Errorf("stdout %q, want nothing", res.Stdout)
				}
				if after := db.Dump(t); after != before {
					t.Errorf("database changed:\n%s\n---\n%s", before, after)
				}
			})
		}
	})
}
