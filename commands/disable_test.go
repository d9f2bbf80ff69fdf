package commands_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// disableSetup enrolls alice (id 1, enabled) and bob (id 2, pending);
// carol (id 3) has no 2FA.
func disableSetup(t *testing.T, db *testutil.DB) {
	t.Helper()
	alice := statusEnrollAt(t, db, "alice", statusT0)
	statusEnrollAt(t, db, "bob", statusT0)
	statusActivate(t, db, "alice", alice.Secret, statusT0.Add(time.Minute))
}

// disableEnrolled reports whether user id still has a credential, and
// checks that credential and backup codes go together.
func disableEnrolled(t *testing.T, db *testutil.DB, id string) bool {
	t.Helper()
	creds := db.Count(t, "totp_credentials", "user_id = ?", id)
	codes := db.Count(t, "totp_backup_codes", "user_id = ?", id)
	switch {
	case creds == 1 && codes == 10:
		return true
	case creds == 0 && codes == 0:
		return false
	}
	t.Errorf("user %s: %d credentials and %d backup codes: half disabled", id, creds, codes)
	return creds > 0
}

func TestDisable(t *testing.T) {
	const reason = "lost phone, ticket 4521"
	type tc struct {
		name         string
		opt          testutil.Options
		args         []string
		fileContent  string // written to a file whose path replaces "@FILE"
		wantCode     int
		wantDisabled []string // user ids whose 2FA is gone afterwards
		stdout       []string // substrings of stdout
		stderr       string   // substring of stderr ("" = stderr must be empty)
		oneLine      bool     // stderr is exactly one "totpadm:" line
	}
	cases := []tc{
		{name: "reason and yes", args: []string{"disable", "--reason", reason, "--yes", "alice"},
			wantDisabled: []string{"1"}, stdout: []string{"alice: disabled"}},
		{name: "short yes flag, pending user by id", args: []string{"disable", "--reason", reason, "-y", "id:2"},
			wantDisabled: []string{"2"}, stdout: []string{"bob: disabled"}},
		{name: "without reason", args: []string{"disable", "--yes", "alice"},
			wantCode: 2, stderr: "--reason", oneLine: true},
		{name: "blank reason", args: []string{"disable", "--yes", "--reason", "   ", "alice"},
			wantCode: 2, stderr: "--reason", oneLine: true},
		{name: "dry run still needs a reason", args: []string{"disable", "--dry-run", "alice"},
			wantCode: 2, stderr: "--reason", oneLine: true},
		{name: "not a terminal and no yes", args: []string{"disable", "--reason", reason, "alice"},
			wantCode: 2, stderr: "--yes", oneLine: true},
		{name: "interactive y", opt: testutil.Options{Interactive: true, Stdin: "y\n"}, args: []string{"disable", "--reason", reason, "alice"},
			wantDisabled: []string{"1"}, stdout: []string{"alice: disabled"}, stderr: "[y/N]"},
		{name: "interactive yes", opt: testutil.Options{Interactive: true, Stdin: "YES\n"}, args: []string{"disable", "--reason", reason, "alice", "bob"},
			wantDisabled: []string{"1", "2"}, stderr: "[y/N]"},
		// The first example of `totpadm disable --help` puts --reason after
		// the user; a person copying it must not be told --reason is missing.
		{name: "flags after the user, as in the help example", opt: testutil.Options{Interactive: true, Stdin: "y\n"}, args: []string{"disable", "alice", "--reason", reason},
			wantDisabled: []string{"1"}, stdout: []string{"alice: disabled"}, stderr: "[y/N]"},
		{name: "interactive n", opt: testutil.Options{Interactive: true, Stdin: "n\n"}, args: []string{"disable", "--reason", reason, "alice"},
			stderr: "Nothing changed"},
		{name: "interactive no answer", opt: testutil.Options{Interactive: true, Stdin: ""}, args: []string{"disable", "--reason", reason, "alice"},
			stderr: "Nothing changed"},
		{name: "interactive anything else", opt: testutil.Options{Interactive: true, Stdin: "sure\n"}, args: []string{"disable", "--reason", reason, "alice"},
			stderr: "Nothing changed"},
		{name: "interactive with users on stdin needs yes", opt: testutil.Options{Interactive: true, Stdin: "alice\n"}, args: []string{"disable", "--reason", reason, "--from-file", "-"},
			wantCode: 2, stderr: "--yes", oneLine: true},
		{name: "dry run", args: []string{"disable", "--dry-run", "--reason", reason, "alice", "carol"},
			stdout: []string{"alice: would disable", "carol: not enrolled"}},
		{name: "dry run flag after the user", args: []string{"disable", "--yes", "--reason", reason, "alice", "--dry-run"},
			stdout: []string{"alice: would disable"}},
		{name: "dry run interactive does not ask", opt: testutil.Options{Interactive: true, Stdin: "y\n"}, args: []string{"disable", "--dry-run", "--reason", reason, "bob"},
			stdout: []string{"bob: would disable"}},
		{name: "not enrolled is done", args: []string{"disable", "--yes", "--reason", reason, "carol"},
			stdout: []string{"carol: not enrolled"}},
		{name: "unknown user among others", args: []string{"disable", "--yes", "--reason", reason, "alice", "nobody", "bob"},
			wantCode: 3, wantDisabled: []string{"1", "2"}, stdout: []string{"alice: disabled", "bob: disabled"}, stderr: "nobody", oneLine: true},
		{name: "invalid reference stops the run before any change", args: []string{"disable", "--yes", "--reason", reason, "alice", "id:"},
			wantCode: 2, stderr: "id:", oneLine: true},
		{name: "no users", args: []string{"disable", "--yes", "--reason", reason},
			wantCode: 2, stderr: "USER", oneLine: true},
		{name: "from file", args: []string{"disable", "--yes", "--reason", reason, "--from-file", "@FILE"},
			fileContent:  "# leavers, ticket 4521\r\n\nalice\r\n# another comment\n \t\nid:2\ncarol\n",
			wantDisabled: []string{"1", "2"}, stdout: []string{"alice: disabled", "bob: disabled", "carol: not enrolled"}},
		{name: "from file with only comments", args: []string{"disable", "--yes", "--reason", reason, "--from-file", "@FILE"},
			fileContent: "# nobody today\n\n", wantCode: 2, stderr: "USER", oneLine: true},
		{name: "from missing file", args: []string{"disable", "--yes", "--reason", reason, "--from-file", "/nonexistent/leavers.txt"},
			wantCode: 2, stderr: "leavers.txt", oneLine: true},
		{name: "from stdin", opt: testutil.Options{Stdin: "# from a pipe\nid:1\n\nbob\n"}, args: []string{"disable", "--yes", "--reason", reason, "--from-file", "-"},
			wantDisabled: []string{"1", "2"}, stdout: []string{"alice: disabled", "bob: disabled"}},
		{name: "from stdin and arguments", opt: testutil.Options{Stdin: "alice\n"}, args: []string{"disable", "--yes", "--reason", reason, "--from-file", "-", "bob"},
			wantDisabled: []string{"1", "2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
				disableSetup(t, db)
				args := append([]string(nil), c.args...)
				for i, a := range args {
					if a == "@FILE" {
						path := filepath.Join(db.Dir, "leavers.txt")
						if err := os.WriteFile(path, []byte(c.fileContent), 0o600); err != nil {
							t.Fatal(err)
						}
						args[i] = path
					}
				}
				before := db.Dump(t)
				opt := c.opt
				opt.Now = func() time.Time { return statusT0.Add(5 * time.Minute) }
				res := testutil.Run(t, opt, db.Args(args...)...)
				if res.Code != c.wantCode {
					t.Errorf("exit %d, want %d (stdout %q, stderr %q)", res.Code, c.wantCode, res.Stdout, res.Stderr)
				}
				for _, s := range c.stdout {
					if !strings.Contains(res.Stdout, s) {
						t.Errorf("stdout %q lacks %q", res.Stdout, s)
					}
				}
				switch {
				case c.oneLine:
					statusOneErrorLine(t, res.Stderr)
					fallthrough
				case c.stderr != "":
					if !strings.Contains(res.Stderr, c.stderr) {
						t.Errorf("stderr %q lacks %q", res.Stderr, c.stderr)
					}
				default:
					if res.Stderr != "" {
						t.Errorf("unexpected stderr %q", res.Stderr)
					}
				}
				if c.wantCode == 0 && strings.Contains(c.name, "dry run") && !strings.Contains(res.Stdout, "dry run") {
					t.Errorf("dry run output does not say so: %q", res.Stdout)
				}

				var got []string
				for _, id := range []string{"1", "2"} {
					if !disableEnrolled(t, db, id) {
						got = append(got, id)
					}
				}
				if !reflect.DeepEqual(got, c.wantDisabled) {
					t.Errorf("users without 2FA afterwards: %v, want %v", got, c.wantDisabled)
				}
				if len(c.wantDisabled) == 0 {
					if after := db.Dump(t); after != before {
						t.Errorf("database changed:\n%s\n---\n%s", before, after)
					}
				}
				// Exactly one audit row per disabled user, with the reason and actor.
				for _, id := range []string{"1", "2", "3"} {
					want := 0
					for _, d := range c.wantDisabled {
						if d == id {
							want = 1
						}
					}
					n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ? AND reason = ? AND actor = ? AND outcome = ? AND host = ?",
						"disable", id, reason, "tester", "disabled", "testhost")
					if n != want {
						t.Errorf("user %s: %d disable audit rows with reason %q and actor tester, want %d", id, n, reason, want)
					}
				}
				if all := db.Count(t, "totp_audit_log", "action = ?", "disable"); all != len(c.wantDisabled) {
					t.Errorf("%d disable audit rows in all, want %d", all, len(c.wantDisabled))
				}
			})
		})
	}
}

func TestDisableJSON(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		disableSetup(t, db)
		for _, step := range []struct {
			name     string
			args     []string
			wantCode int
			want     [][]string // user, login, id, outcome, error non-empty?
		}{
			{"first run", []string{"disable", "--yes", "--reason", "offboarding", "alice", "carol", "nobody"}, 3, [][]string{
				{"alice", "alice", "1", "disabled", ""},
				{"carol", "carol", "3", "not enrolled", ""},
				{"nobody", "", "", "not found", "error"},
			}},
			{"re-run is safe", []string{"disable", "--yes", "--reason", "offboarding", "alice", "id:2"}, 0, [][]string{
				{"alice", "alice", "1", "not enrolled", ""},
				{"id:2", "bob", "2", "disabled", ""},
			}},
			{"dry run", []string{"disable", "--dry-run", "--reason", "offboarding", "alice"}, 0, [][]string{
				{"alice", "alice", "1", "not enrolled", ""},
			}},
		} {
			t.Run(step.name, func(t *testing.T) {
				res := statusRunAt(t, statusT0.Add(5*time.Minute), db.Args(append([]string{"-o", "json"}, step.args...)...)...)
				if res.Code != step.wantCode {
					t.Errorf("exit %d, want %d (stderr %q)", res.Code, step.wantCode, res.Stderr)
				}
				rows := statusJSONLines(t, res.Stdout)
				if len(rows) != len(step.want) {
					t.Fatalf("want %d objects, got %q", len(step.want), res.Stdout)
				}
				for i, w := range step.want {
					r := rows[i]
					got := []string{statusText(r["user"]), statusText(r["login"]), statusText(r["id"]), statusText(r["outcome"]), ""}
					if statusText(r["error"]) != "" {
						got[4] = "error"
					}
					if !reflect.DeepEqual(got, w) {
						t.Errorf("object %d = %v, want %v (raw %v)", i, got, w, r)
					}
				}
			})
		}
		if disableEnrolled(t, db, "1") || disableEnrolled(t, db, "2") {
			t.Errorf("alice and bob should both be disabled")
		}
	})
}

// A locked-out user is exactly whom disable is for: afterwards status
// shows the user without 2FA and the user can be enrolled again.
func TestDisableLockedUser(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := statusEnrollAt(t, db, "alice", statusT0)
		statusLockOut(t, db, "alice", alice.Secret, statusT0)
		now := statusT0.Add(time.Minute)
		res := statusRunAt(t, now, db.Args("disable", "--yes", "--reason", "locked out", "alice")...)
		if res.Code != 0 {
			t.Fatalf("disable: exit %d, %q", res.Code, res.Stderr)
		}
		st := statusRunAt(t, now, db.Args("-o", "json", "status", "alice")...)
		rows := statusJSONLines(t, st.Stdout)
		if len(rows) != 1 || statusText(rows[0]["state"]) != "disabled" || statusText(rows[0]["failures"]) != "0" || statusText(rows[0]["locked_until"]) != "" {
			t.Errorf("status after disable: %q", st.Stdout)
		}
		again := statusEnrollAt(t, db, "alice", now)
		statusActivate(t, db, "alice", again.Secret, now.Add(time.Minute))
	})
}
