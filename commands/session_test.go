package commands_test

import (
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// A mapped users table that is not there is named, with how to map
// another, by every command — not a bare "relation does not exist" — and
// nothing is changed.
func TestMissingUsersTableSaysWhatToMap(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, args := range [][]string{
			{"status"},
			{"status", "alice"},
			{"verify", "alice", "123456"},
			{"enroll", "--no-confirm", "alice"},
			{"disable", "--yes", "--reason", "x", "alice"},
			{"audit"},
		} {
			before := db.Dump(t)
			r := testutil.Run(t, testutil.Options{}, db.Args(append([]string{"--users-table", "accounts"}, args...)...)...)
			cmd := strings.Join(args, " ")
			if r.Code != 5 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, `users table "accounts"`) || !strings.Contains(r.Stderr, "--users-table") {
				t.Errorf("%s on a missing users table: exit %d, stderr %q; want one line naming the table and --users-table, exit 5", cmd, r.Code, r.Stderr)
			}
			if db.Dump(t) != before {
				t.Errorf("%s on a missing users table changed the database", cmd)
			}
		}
	})
}

// A users table with a column named email shows it without
// --user-email-column.
func TestEmailColumnDetected(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		r := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "status", "bob")...)
		if r.Code != 0 || !strings.Contains(r.Stdout, `"email":"bob@example.com"`) {
			t.Errorf("status bob: exit %d, %s %s; want the detected email", r.Code, r.Stdout, r.Stderr)
		}
	})
}
