package commands_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// errorsCase is one bad invocation and what it must produce.
type errorsCase struct {
	name     string
	args     []string
	stdin    string
	wantCode int
	stderr   string   // substring of the one stderr line
	never    []string // must appear nowhere in the output
}

// errorsCheck asserts the contract every failure shares: the exit code,
// exactly one "totpadm: " line on stderr, no stack trace, no leaks.
func errorsCheck(t *testing.T, c errorsCase, res testutil.Result) {
	t.Helper()
	if res.Code != c.wantCode {
		t.Errorf("exit %d, want %d (stderr %q)", res.Code, c.wantCode, res.Stderr)
	}
	statusOneErrorLine(t, res.Stderr)
	if !strings.Contains(res.Stderr, c.stderr) {
		t.Errorf("stderr %q lacks %q", res.Stderr, c.stderr)
	}
	all := res.Stdout + res.Stderr
	for _, bad := range append([]string{"goroutine ", "panic", "runtime error", ".go:"}, c.never...) {
		if strings.Contains(all, bad) {
			t.Errorf("output contains %q:\nstdout %q\nstderr %q", bad, res.Stdout, res.Stderr)
		}
	}
}

func TestErrorsBadInvocations(t *testing.T) {
	cases := []errorsCase{
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, stderr: "frobnicate"},
		{name: "unknown command with arguments", args: []string{"enrol", "alice"}, wantCode: 2, stderr: "enrol"},
		{name: "no command", args: nil, wantCode: 2, stderr: "command"},
		{name: "unknown global flag", args: []string{"--bogus", "status"}, wantCode: 2, stderr: "bogus"},
		{name: "unknown command flag", args: []string{"status", "--bogus"}, wantCode: 2, stderr: "bogus"},
		{name: "flag without its value", args: []string{"status", "--state"}, wantCode: 2, stderr: "state"},
		{name: "verify without arguments", args: []string{"verify"}, wantCode: 2, stderr: "USER CODE"},
		{name: "verify without code", args: []string{"verify", "alice"}, wantCode: 2, stderr: "USER CODE"},
		{name: "verify with too many arguments", args: []string{"verify", "alice", "123456", "654321"}, wantCode: 2, stderr: "USER CODE"},
		{name: "verify with no code on stdin", args: []string{"verify", "alice", "-"}, wantCode: 2, stderr: "stdin"},
		{name: "verify with letters", args: []string{"verify", "alice", "abc"}, wantCode: 2, stderr: "malformed"},
		{name: "verify with 5 digits", args: []string{"verify", "alice", "12345"}, wantCode: 2, stderr: "malformed"},
		{name: "bad -o", args: []string{"-o", "xml", "status"}, wantCode: 2, stderr: "xml"},
		{name: "bad --output", args: []string{"--output", "yaml", "audit"}, wantCode: 2, stderr: "yaml"},
		{name: "empty id in status", args: []string{"status", "id:"}, wantCode: 2, stderr: "id:"},
		{name: "empty id in verify", args: []string{"verify", "id:", "123456"}, wantCode: 2, stderr: "id:"},
		{name: "empty id in disable", args: []string{"disable", "--yes", "--reason", "x", "id:"}, wantCode: 2, stderr: "id:"},
		{name: "empty id in backup-codes", args: []string{"backup-codes", "id:"}, wantCode: 2, stderr: "id:"},
		{name: "empty id in unlock", args: []string{"unlock", "id:"}, wantCode: 2, stderr: "id:"},
		{name: "empty id in audit", args: []string{"audit", "id:"}, wantCode: 2, stderr: "id:"},
		{name: "empty user", args: []string{"status", ""}, wantCode: 2, stderr: "empty"},
		{name: "blank user", args: []string{"unlock", "   "}, wantCode: 2, stderr: "empty"},
		{name: "user with a NUL", args: []string{"status", "al\x00ice"}, wantCode: 2, stderr: "UTF-8"},
		{name: "user reference too long", args: []string{"status", strings.Repeat("a", 5000)}, wantCode: 2, stderr: "longer"},
		{name: "invalid state", args: []string{"status", "--state", "off"}, wantCode: 2, stderr: "off"},
		{name: "max failures 0", args: []string{"--max-failures", "0", "status"}, wantCode: 2, stderr: "max-failures"},
		{name: "skew too large", args: []string{"--skew", "11", "status"}, wantCode: 2, stderr: "skew"},
		{name: "backup code count 0", args: []string{"--backup-codes-count", "0", "status"}, wantCode: 2, stderr: "backup-codes-count"},
		{name: "zero lockout", args: []string{"--lockout-duration", "0s", "status"}, wantCode: 2, stderr: "lockout-duration"},
		{name: "lockout not a duration", args: []string{"--lockout-duration", "soon", "status"}, wantCode: 2, stderr: "soon"},
		{name: "bad table prefix", args: []string{"--table-prefix", "totp-", "status"}, wantCode: 2, stderr: "prefix"},
		{name: "empty issuer", args: []string{"--issuer", "", "enroll", "--no-confirm", "bob"}, wantCode: 2, stderr: "--issuer must not be empty"},
		{name: "empty users table", args: []string{"--users-table", "", "status"}, wantCode: 2, stderr: "--users-table must not be empty"}, // models names the field, the CLI its flag
		{name: "disable without users", args: []string{"disable", "--yes", "--reason", "x"}, wantCode: 2, stderr: "USER"},
		{name: "missing from-file", args: []string{"unlock", "--from-file", "/nonexistent/list.txt"}, wantCode: 2, stderr: "list.txt"},
		{name: "audit bad since", args: []string{"audit", "--since", "last week"}, wantCode: 2, stderr: "since"},
		{name: "keygen with arguments", args: []string{"keygen", "extra"}, wantCode: 2, stderr: "no arguments"},
		{name: "migrate with an argument", args: []string{"migrate", "dry-run"}, wantCode: 2, stderr: `migrate: takes no arguments, got "dry-run"`},
		{name: "doctor with an argument", args: []string{"doctor", "all"}, wantCode: 2, stderr: "no arguments"},
		{name: "man with an argument", args: []string{"man", "enroll"}, wantCode: 2, stderr: "no arguments"},
		{name: "config show with an argument", args: []string{"config", "show", "db"}, wantCode: 2, stderr: "config show: takes no arguments"},
		{name: "config without a subcommand", args: []string{"config"}, wantCode: 2, stderr: "no subcommand"},
		{name: "config with an unknown subcommand", args: []string{"config", "bogus"}, wantCode: 2, stderr: `unknown subcommand "bogus"`},
		{name: "unknown user", args: []string{"verify", "nobody", "123456"}, wantCode: 3, stderr: "nobody"},
		{name: "not enrolled", args: []string{"verify", "carol", "123456"}, wantCode: 3, stderr: "not enrolled"},
		{name: "already enrolled", args: []string{"enroll", "--no-confirm", "alice"}, wantCode: 4, stderr: "already enrolled"},
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusEnrollAt(t, db, "alice", statusT0)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := db.Dump(t)
				res := testutil.Run(t, testutil.Options{Stdin: c.stdin}, db.Args(c.args...)...)
				errorsCheck(t, c, res)
				if after := db.Dump(t); after != before {
					t.Errorf("database changed:\n%s\n---\n%s", before, after)
				}
			})
		}
	})
}

func TestErrorsDatabaseTargets(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	cases := []errorsCase{
		{name: "redis is not supported", args: []string{"--db", "redis://root:hunter2pw@localhost/app", "status"},
			wantCode: 2, stderr: "redis", never: []string{"hunter2pw"}},
		{name: "unknown scheme", args: []string{"--db", "redis://localhost/0", "status"}, wantCode: 2, stderr: "redis"},
		{name: "sqlite URL without a path", args: []string{"--db", "sqlite:", "status"}, wantCode: 2, stderr: "sqlite"},
		{name: "postgres URL without a host", args: []string{"--db", "postgres://admin:hunter2pw@/app", "status"},
			wantCode: 2, stderr: "host", never: []string{"hunter2pw"}},
		{name: "unparseable postgres URL", args: []string{"--db", "postgres://admin:hunter2pw%zz@db.internal/app", "status"},
			wantCode: 2, stderr: "PostgreSQL URL", never: []string{"hunter2pw"}},
		{name: "missing sqlite file", args: []string{"--db", missing, "status"}, wantCode: 5, stderr: "typo.db"},
		{name: "missing sqlite file via sqlite: URL", args: []string{"--db", "sqlite:" + missing, "migrate"}, wantCode: 5, stderr: "typo.db"},
		{name: "directory as database", args: []string{"--db", dir, "status"}, wantCode: 5, stderr: "directory"},
		{name: "unreachable postgres, password in userinfo", args: []string{"--db", "postgres://admin:hunter2pw@127.0.0.1:1/app?sslmode=disable", "status"},
			wantCode: 5, stderr: "127.0.0.1", never: []string{"hunter2pw"}},
		{name: "unreachable postgresql, password parameter", args: []string{"--db", "postgresql://admin@127.0.0.1:1/app?password=hunter2pw&sslmode=disable", "migrate"},
			wantCode: 5, stderr: "127.0.0.1", never: []string{"hunter2pw"}},
		{name: "unreachable postgres, escaped password", args: []string{"--db", "postgres://admin:hunter%40%2F2pw%3F@127.0.0.1:1/app?sslmode=disable", "audit"},
			wantCode: 5, stderr: "127.0.0.1", never: []string{"hunter@/2pw?", "hunter%40%2F2pw%3F", "hunter%40", "hunter@"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := testutil.Run(t, testutil.Options{}, c.args...)
			errorsCheck(t, c, res)
		})
	}
	// A mistyped --db never leaves a file behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("a failed run created %s", e.Name())
	}
}

// A libpq keyword/value connection string is how many admins write a
// PostgreSQL DSN. totpadm may refuse it, but must not echo its password
// (SPEC §2: database passwords are redacted from every message).
func TestErrorsKeywordDSNPasswordRedacted(t *testing.T) {
	for _, dsn := range []string{
		"host=127.0.0.1 port=1 user=admin password=hunter2pw dbname=app",
		"password=hunter2pw host=127.0.0.1",
	} {
		t.Run(dsn, func(t *testing.T) {
			res := testutil.Run(t, testutil.Options{}, "--db", dsn, "status")
			if res.Code != 2 && res.Code != 5 {
				t.Errorf("exit %d, want 2 (unsupported --db) or 5 (cannot connect)", res.Code)
			}
			statusOneErrorLine(t, res.Stderr)
			if strings.Contains(res.Stdout+res.Stderr, "hunter2pw") {
				t.Errorf("the database password is printed: %q", res.Stderr)
			}
		})
	}
}

// The same failures through the real binary: the process exit status and
// its stderr, not only the in-process return value.
func TestErrorsBinary(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []errorsCase{
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, stderr: "frobnicate"},
		{name: "unsupported scheme", args: []string{"--db", "redis://root:hunter2pw@localhost/app", "status"}, wantCode: 2, stderr: "redis", never: []string{"hunter2pw"}},
		{name: "missing database", args: []string{"--db", filepath.Join(dir, "nope.db"), "status"}, wantCode: 5, stderr: "nope.db"},
		{name: "unreachable postgres", args: []string{"--db", "postgres://admin:hunter2pw@127.0.0.1:1/app", "status"}, wantCode: 5, stderr: "127.0.0.1", never: []string{"hunter2pw"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := testutil.Exec(t, dir, "", nil, c.args...)
			errorsCheck(t, c, res)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); err == nil {
		t.Errorf("the binary created the missing --db file")
	}
	// Nor does any error path create the demo database in the working directory.
	if _, err := os.Stat(filepath.Join(dir, "totpadm.db")); err == nil {
		t.Errorf("a run with --db created the demo database")
	}
}

func TestErrorsHelp(t *testing.T) {
	commands := []string{"enroll", "verify", "status", "list", "backup-codes", "disable", "unlock", "audit", "migrate", "keygen"}
	t.Run("top level", func(t *testing.T) {
		for _, flag := range []string{"--help", "-h"} {
			res := testutil.Run(t, testutil.Options{}, flag)
			if res.Code != 0 || res.Stderr != "" {
				t.Errorf("%s: exit %d, stderr %q", flag, res.Code, res.Stderr)
			}
			for _, c := range commands {
				if c == "list" {
					continue
				}
				if !strings.Contains(res.Stdout, c) {
					t.Errorf("%s does not list %s", flag, c)
				}
			}
			if !strings.Contains(res.Stdout, "Exit codes") {
				t.Errorf("%s does not explain exit codes", flag)
			}
		}
	})
	for _, c := range commands {
		t.Run(c, func(t *testing.T) {
			for _, flag := range []string{"--help", "-h"} {
				res := testutil.Run(t, testutil.Options{}, c, flag)
				if res.Code != 0 || res.Stderr != "" {
					t.Errorf("%s %s: exit %d, stderr %q", c, flag, res.Code, res.Stderr)
				}
				if !strings.Contains(res.Stdout, "Examples:") || !strings.Contains(res.Stdout, "totpadm ") {
					t.Errorf("%s %s has no examples:\n%s", c, flag, res.Stdout)
				}
			}
		})
	}
}

// A credential row edited by hand into values no enrollment writes (period
// 0 divided the clock by zero) is an error of one line, exit 5, not a
// panic, and nothing is written.
func TestErrorsCorruptCredential(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		code := testutil.Code(t, e.Secret, time.Now())
		for _, corrupt := range []string{"period = 0", "digits = 0", "algorithm = 'MD5'"} {
			db.Exec(t, "UPDATE totp_credentials SET algorithm = 'SHA1', digits = 6, period = 30")
			db.Exec(t, "UPDATE totp_credentials SET "+corrupt)
			for _, args := range [][]string{
				{"verify", "alice", code},
				{"verify", "--diagnose", "alice", code},
				{"export", "--yes", "alice"},
			} {
				t.Run(corrupt+"/"+strings.Join(args[:len(args)-1], " "), func(t *testing.T) {
					before := db.Dump(t)
					res := testutil.Run(t, testutil.Options{}, db.Args(args...)...)
					errorsCheck(t, errorsCase{wantCode: 5, stderr: "corrupt", never: []string{code, e.Secret}}, res)
					if db.Dump(t) != before {
						t.Errorf("the database changed")
					}
				})
			}
		}
	})
}

// A login with a line break reads the same in an error line as in the
// status table and the audit listing — "ops\nadmin", escaped — never as
// "ops admin", which is another login; and the error is still one line.
func TestErrorsEscapeLoginsLikeTables(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "INSERT INTO users (id, username) VALUES (7, ?)", "ops\nadmin")
		db.Exec(t, "INSERT INTO users (id, username) VALUES (8, ?)", "ops admin")
		db.Exec(t, "INSERT INTO users (id, username) VALUES (9, ?)", "cr\radmin")
		table := statusRunAt(t, statusT0, db.Args("status", "id:7", "id:9")...)
		if table.Code != 0 || !strings.Contains(table.Stdout, `ops\nadmin`) || !strings.Contains(table.Stdout, `cr\radmin`) {
			t.Fatalf("status: exit %d, %q", table.Code, table.Stdout)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"verify", "ops\nadmin", "123456"}, `totpadm: verify ops\nadmin: not enrolled`},
			{[]string{"verify", "cr\radmin", "123456"}, `totpadm: verify cr\radmin: not enrolled`},
			{[]string{"status", "ghost\nadmin"}, `totpadm: status ghost\nadmin: user not found`},
			{[]string{"unlock", "ops\nadmin"}, `ops\nadmin`},
		} {
			res := statusRunAt(t, statusT0, db.Args(c.args...)...)
			errorsCheck(t, errorsCase{wantCode: 3, stderr: c.want, never: []string{"ops admin", "ghost admin", "cr admin"}}, res)
		}
		// The one-space login is still itself.
		if res := statusRunAt(t, statusT0, db.Args("verify", "ops admin", "123456")...); res.Code != 3 || !strings.HasPrefix(res.Stderr, "totpadm: verify ops admin: not enrolled") {
			t.Errorf("verify 'ops admin': exit %d, %q", res.Code, res.Stderr)
		}
	})
}
