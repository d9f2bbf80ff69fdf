package commands_test

import (
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// An interactive enrollment that never gets a right code — wrong codes, or
// no code at all — leaves the credential tables as they were but writes an
// audit row: a secret was on the screen.
func TestEnrollAbandonedIsAudited(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, tc := range []struct{ name, stdin string }{
			{"three wrong codes", "000000\n000000\n000000\n"},
			{"no code before the end of input", ""},
		} {
			before := db.Count(t, "totp_credentials", "1 = 1")
			res := testutil.Run(t, testutil.Options{Interactive: true, Stdin: tc.stdin, Now: enrollHelperAt(enrollHelperT0)}, db.Args("enroll", "bob")...)
			if res.Code == 0 {
				t.Fatalf("%s: exit 0, want a failure: %s", tc.name, res.Stderr)
			}
			if n := db.Count(t, "totp_credentials", "1 = 1"); n != before {
				t.Errorf("%s: %d credentials after, %d before", tc.name, n, before)
			}
			if strings.Contains(res.Stderr, "audit row") {
				t.Errorf("%s: the audit row failed: %s", tc.name, res.Stderr)
			}
		}
		if n := db.Count(t, "totp_audit_log", "action = 'enroll' AND outcome = 'abandoned' AND user_login = 'bob'"); n != 2 {
			t.Errorf("%d abandoned-enrollment audit rows for bob, want 2", n)
		}
	})
}
