package commands_test

import (
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// With two rows that match one login — duplicate logins without a unique
// index, or "Alice" and "alice" under a case-insensitive collation —
// every command that names a user refuses with exit 2, lists the
// candidate ids, says to use id:N, and changes nothing; id:N then acts on
// exactly that row.
func TestAmbiguousLoginRefusedEverywhere(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		collate := map[string]string{"sqlite": "COLLATE NOCASE", "postgres": "", "mysql": "COLLATE utf8mb4_general_ci"}[db.Backend]
		loginType := map[string]string{"sqlite": "TEXT", "postgres": "TEXT", "mysql": "VARCHAR(64)"}[db.Backend]
		db.Exec(t, "CREATE TABLE people (id INTEGER PRIMARY KEY, login "+loginType+" "+collate+", email TEXT)")
		// 10 and 11 are the same login twice; 12 and 13 differ in case,
		// which PostgreSQL's default collation tells apart.
		for _, row := range [][2]any{{10, "sam"}, {11, "sam"}, {12, "Kim"}, {13, "kim"}} {
			db.Exec(t, "INSERT INTO people (id, login) VALUES (?, ?)", row[0], row[1])
		}
		mapped := func(args ...string) []string {
			return db.Args(append([]string{"--users-table", "people", "--user-login-column", "login"}, args...)...)
		}
		if r := testutil.Run(t, testutil.Options{}, mapped("enroll", "--no-confirm", "id:10", "id:11")...); r.Code != 0 {
			t.Fatalf("enroll by id: exit %d: %s", r.Code, r.Stderr)
		}
		ambiguous := []struct {
			login string
			ids   []string
		}{{"sam", []string{"10", "11"}}}
		if db.Backend != "postgres" {
			ambiguous = append(ambiguous, struct {
				login string
				ids   []string
			}{"kim", []string{"12", "13"}})
		}
		for _, a := range ambiguous {
			for _, args := range [][]string{
				{"enroll", "--no-confirm", a.login},
				{"enroll", "--force", "--no-confirm", a.login},
				{"verify", a.login, "123456"},
				{"verify", "--diagnose", a.login, "123456"},
				{"status", a.login},
				{"backup-codes", a.login},
				{"unlock", a.login},
				{"disable", "--yes", "--reason", "ticket 1", a.login},
				{"disable", "--dry-run", "--reason", "ticket 1", a.login},
				{"audit", a.login},
				{"export", "--yes", a.login},
				{"-o", "json", "disable", "--yes", "--reason", "ticket 1", a.login},
			} {
				before := db.Dump(t)
				r := testutil.Run(t, testutil.Options{}, mapped(args...)...)
				cmd := strings.Join(args, " ")
				if r.Code != 2 {
					t.Errorf("%s: exit %d, want 2 (ambiguous)\nstdout: %s\nstderr: %s", cmd, r.Code, r.Stdout, r.Stderr)
				}
				lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
				last := lines[len(lines)-1]
				if !strings.HasPrefix(last, "totpadm: ") || !strings.Contains(last, "id:N") {
					t.Errorf("%s: stderr %q, want one totpadm: line that says to use id:N", cmd, r.Stderr)
				}
				for _, id := range a.ids {
					if !strings.Contains(last, id) {
						t.Errorf("%s: %q does not list candidate id %s", cmd, last, id)
					}
				}
				if after := db.Dump(t); after != before {
					t.Errorf("%s changed the database although the user was ambiguous", cmd)
				}
			}
		}
		// id:N names one row exactly.
		r := testutil.Run(t, testutil.Options{}, mapped("disable", "--yes", "--reason", "ticket 2", "id:11")...)
		if r.Code != 0 || db.Count(t, "totp_credentials", "user_id = '10'") != 1 || db.Count(t, "totp_credentials", "user_id = '11'") != 0 {
			t.Errorf("disable id:11: exit %d %s; want only user 11 disabled", r.Code, r.Stderr)
		}
	})
}
