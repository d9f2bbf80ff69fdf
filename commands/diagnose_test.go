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
