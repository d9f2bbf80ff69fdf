package commands_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// A list file saved by a Windows editor starts with a byte-order mark; the
// first user is still found.
func TestFromFileByteOrderMark(t *testing.T) {
	db := testutil.NewSQLite(t)
	res := testutil.Run(t, testutil.Options{Stdin: "\ufeffalice\nbob\n"}, db.Args("-o", "csv", "status", "--from-file", "-")...)
	if res.Code != 0 || strings.Count(res.Stdout, "\n") != 3 {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
}

// A --from-file line names exactly the login written on it: only the line
// terminator (LF, one CR before it) and a byte-order mark at the start of
// the file are dropped. " alice" is the login " alice", never alice; a
// line that is empty or whitespace only is skipped; a line whose first
// byte is # is a comment, and nothing else is.
func TestFromFileLinesAreExact(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, login := range []string{" alice", "\tbob", "#ops", "carol\r", " #ops"} { // ids 4–8
			db.Exec(t, "INSERT INTO users (username) VALUES (?)", login)
		}
		cases := []struct {
			name, in string
			want     []string // the logins status reports, in order
			code     int
		}{
			{"leading blanks are part of the login", "alice\n alice\n\tbob\n", []string{"alice", " alice", "\tbob"}, 0},
			{"CRLF and a byte-order mark", "\ufeff alice\r\nbob\r\n", []string{" alice", "bob"}, 0},
			{"only one CR is the terminator", "carol\r\r\ncarol\r\n", []string{"carol\r", "carol"}, 0},
			{"no final newline", "bob", []string{"bob"}, 0},
			{"blank and whitespace-only lines are skipped", "\n   \n\t\n\r\n\u00a0\nbob\n", []string{"bob"}, 0},
			{"# first is a comment, anywhere else a login", "#ops\n #ops\nid:6\n", []string{" #ops", "#ops"}, 0},
			{"a byte-order mark elsewhere is kept", "alice\n\ufeffbob\n", []string{"alice"}, 3},
			{"a lone CR at the end is kept", "bob\nalice\r", []string{"bob"}, 3},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				res := testutil.Run(t, testutil.Options{Stdin: c.in}, db.Args("-o", "json", "status", "--from-file", "-")...)
				var got []string
				for _, r := range statusJSONLines(t, res.Stdout) {
					got = append(got, statusText(r["login"]))
				}
				if res.Code != c.code || !reflect.DeepEqual(got, c.want) {
					t.Fatalf("exit %d, logins %q; want exit %d and %q (stderr %q)", res.Code, got, c.code, c.want, res.Stderr)
				}
				if c.code != 0 && strings.Count(res.Stderr, "\n") != 1 {
					t.Errorf("stderr %q, want one line for the unknown login", res.Stderr)
				}
			})
		}
		if db.Backend != "mysql" { // MySQL's PAD SPACE collations compare "alice " equal to alice
			res := testutil.Run(t, testutil.Options{Stdin: "alice \n"}, db.Args("status", "--from-file", "-")...)
			if res.Code != 3 || !strings.Contains(res.Stderr, `username = "alice "`) {
				t.Errorf("a trailing space: exit %d, stderr %q; want not found, the login quoted", res.Code, res.Stderr)
			}
		}
	})
}
