package commands_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// verify --diagnose reports the phone's clock offset and changes nothing
// but the audit log: no step consumed, no failure counted, not even while
// locked out; one audit row says who diagnosed and what was found.
func TestVerifyDiagnose(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		now := time.Date(2026, 11, 23, 9, 0, 10, 0, time.UTC)
		clock := func() time.Time { return now }
		e := testutil.Enroll(t, db, "alice")
		cases := []struct {
			name       string
			phone      time.Time
			wantCode   int
			wantOffset int64
			wantText   string
		}{
			{"right on time", now, 0, 0, "would be accepted now; the phone's clock is right"},
			{"one step fast, inside the window", now.Add(30 * time.Second), 0, 1, "about 30 s fast (1 step of 30 s)"},
			{"three steps slow", now.Add(-95 * time.Second), 1, -3, "about 90 s slow (3 steps of 30 s)"},
			{"nine minutes fast", now.Add(9 * time.Minute), 1, 18, "about 540 s fast"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := db.DumpState(t)
				audits := db.Count(t, "totp_audit_log", "action = ?", "diagnose")
				code := testutil.Code(t, e.Secret, c.phone)
				res := testutil.Run(t, testutil.Options{Now: clock}, db.Args("verify", "--diagnose", "alice", code)...)
				if res.Code != c.wantCode || !strings.Contains(res.Stdout, c.wantText) {
					t.Fatalf("exit %d, stdout %q; want exit %d and %q (stderr %q)", res.Code, res.Stdout, c.wantCode, c.wantText, res.Stderr)
				}
				res = testutil.Run(t, testutil.Options{Now: clock}, db.Args("-o", "json", "verify", "--diagnose", "alice", code)...)
				var got struct {
					Found       bool  `json:"found"`
					OffsetSteps int64 `json:"offset_steps"`
				}
				if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || !got.Found || got.OffsetSteps != c.wantOffset {
					t.Fatalf("json %q (%v): want found with offset %d", res.Stdout, err, c.wantOffset)
				}
				if after := db.DumpState(t); after != before {
					t.Fatalf("--diagnose changed the database")
				}
				if n := db.Count(t, "totp_audit_log", "action = ?", "diagnose"); n != audits+2 {
					t.Fatalf("two diagnoses wrote %d audit rows, want 2", n-audits)
				}
			})
		}
		t.Run("no match within ten minutes", func(t *testing.T) {
			before := db.DumpState(t)
			code := testutil.Code(t, e.Secret, now.Add(11*time.Minute))
			res := testutil.Run(t, testutil.Options{Now: clock}, db.Args("verify", "--diagnose", "alice", code)...)
			if res.Code != 1 || !strings.Contains(res.Stdout, "no code within ±10 minutes") {
				t.Fatalf("exit %d, stdout %q", res.Code, res.Stdout)
			}
			if db.DumpState(t) != before {
				t.Fatalf("--diagnose changed the database")
			}
			if n := db.Count(t, "totp_audit_log", "action = ? AND outcome = ?", "diagnose", "no match within ±10 minutes"); n != 1 {
				t.Fatalf("%d audit rows for the failed diagnosis, want 1", n)
			}
		})
		t.Run("a used step is reported as used", func(t *testing.T) {
			code := testutil.Code(t, e.Secret, now)
			if res := testutil.Run(t, testutil.Options{Now: clock}, db.Args("verify", "alice", code)...); res.Code != 0 {
				t.Fatalf("verify: %d %s", res.Code, res.Stderr)
			}
			res := testutil.Run(t, testutil.Options{Now: clock}, db.Args("verify", "--diagnose", "alice", code)...)
			if res.Code != 1 || !strings.Contains(res.Stdout, "already used") {
				t.Fatalf("exit %d, stdout %q", res.Code, res.Stdout)
			}
		})
		t.Run("backup codes and bad input", func(t *testing.T) {
			for _, args := range [][]string{{"alice", e.BackupCodes[0]}, {"alice", "12x456"}} {
				res := testutil.Run(t, testutil.Options{Now: clock}, db.Args(append([]string{"verify", "--diagnose"}, args...)...)...)
				if res.Code != 2 || strings.Count(res.Stderr, "\n") != 1 {
					t.Fatalf("%v: exit %d, stderr %q", args, res.Code, res.Stderr)
				}
			}
			if res := testutil.Run(t, testutil.Options{Now: clock}, db.Args("verify", "--diagnose", "bob", "123456")...); res.Code != 3 {
				t.Fatalf("not enrolled: exit %d", res.Code)
			}
		})
	})
}

// A locked-out user's code is never "accepted now": Verify refuses every
// code until the lockout ends, so the diagnosis says so and exits 1, as
// verify does. And a code whose step an earlier login already used, from
// a phone minutes slow, is not cured by waiting for the next code — the
// phone's next codes are outside the window too: the verdict says to fix
// the clock first.
func TestVerifyDiagnoseLockedAndUsedSteps(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		now := time.Date(2026, 11, 23, 9, 0, 10, 0, time.UTC)
		clock := testutil.Options{Now: func() time.Time { return now }}
		type verdict struct {
			Found       bool   `json:"found"`
			AcceptedNow bool   `json:"accepted_now"`
			AlreadyUsed bool   `json:"already_used"`
			Locked      bool   `json:"locked"`
			LockedUntil string `json:"locked_until"`
			Verdict     string `json:"verdict"`
		}
		diagnose := func(t *testing.T, login, code string) (testutil.Result, verdict) {
			t.Helper()
			table := testutil.Run(t, clock, db.Args("verify", "--diagnose", login, code)...)
			js := testutil.Run(t, clock, db.Args("-o", "json", "verify", "--diagnose", login, code)...)
			var v verdict
			if err := json.Unmarshal([]byte(js.Stdout), &v); err != nil || js.Code != table.Code {
				t.Fatalf("json %q (%v), exit %d; table exit %d", js.Stdout, err, js.Code, table.Code)
			}
			return table, v
		}

		t.Run("locked", func(t *testing.T) {
			e := testutil.Enroll(t, db, "alice")
			wrong := statusWrongCode(t, e.Secret, now)
			for i := 0; i < 5; i++ {
				testutil.Run(t, clock, db.Args("verify", "alice", wrong)...)
			}
			good := testutil.Code(t, e.Secret, now)
			if r := testutil.Run(t, clock, db.Args("verify", "alice", good)...); r.Code != 1 || !strings.Contains(r.Stderr, "locked") {
				t.Fatalf("verify while locked: exit %d %q", r.Code, r.Stderr)
			}
			res, v := diagnose(t, "alice", good)
			until := now.Add(15 * time.Minute).Format(time.RFC3339)
			if res.Code != 1 || strings.Contains(res.Stdout, "would be accepted now") ||
				!strings.Contains(res.Stdout, "but 2FA is locked until "+until+" after too many failed codes, so it would be refused now") ||
				!strings.Contains(res.Stdout, "`totpadm unlock alice` ends the lockout") {
				t.Fatalf("exit %d, stdout %q", res.Code, res.Stdout)
			}
			if !v.Found || v.AcceptedNow || !v.Locked || v.LockedUntil != until {
				t.Fatalf("json %+v", v)
			}
			if n := db.Count(t, "totp_audit_log", "action = ? AND outcome = ?", "diagnose", "match at +0 steps, within the window, locked"); n != 2 {
				t.Errorf("%d audit rows saying the diagnosis found a lockout, want 2", n)
			}
			// Once unlocked, the same code is diagnosed as acceptable.
			if r := testutil.Run(t, clock, db.Args("unlock", "alice")...); r.Code != 0 {
				t.Fatalf("unlock: %d %s", r.Code, r.Stderr)
			}
			if res, v := diagnose(t, "alice", good); res.Code != 0 || !v.AcceptedNow || v.Locked || !strings.Contains(res.Stdout, "would be accepted now") {
				t.Fatalf("after unlock: exit %d, %q, %+v", res.Code, res.Stdout, v)
			}
		})

		t.Run("used step, phone minutes slow", func(t *testing.T) {
			e := testutil.Enroll(t, db, "carol")
			if r := testutil.Run(t, clock, db.Args("verify", "carol", testutil.Code(t, e.Secret, now))...); r.Code != 0 {
				t.Fatalf("verify: %d %s", r.Code, r.Stderr)
			}
			slow := testutil.Code(t, e.Secret, now.Add(-3*time.Minute))
			res, v := diagnose(t, "carol", slow)
			if res.Code != 1 || !v.AlreadyUsed || v.AcceptedNow || strings.Contains(res.Stdout, "Wait for the next code") ||
				!strings.Contains(res.Stdout, "the phone's clock is about 180 s slow (6 steps of 30 s), outside the accepted window") ||
				!strings.Contains(res.Stdout, "fix the phone's clock (set the time automatically), then use the next code") {
				t.Fatalf("exit %d, stdout %q, %+v", res.Code, res.Stdout, v)
			}
			// The step just used, from a phone that is right: waiting helps.
			res, _ = diagnose(t, "carol", testutil.Code(t, e.Secret, now))
			if res.Code != 1 || !strings.Contains(res.Stdout, "already used") || !strings.Contains(res.Stdout, "Wait for the next code.") {
				t.Fatalf("exit %d, stdout %q", res.Code, res.Stdout)
			}
		})
	})
}
