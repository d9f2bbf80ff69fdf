package commands_test

// Hostile user references through the whole CLI: quotes, SQL fragments,
// LIKE wildcards, unicode, terminal escapes, oversized and invalid text.
// A reference names a user exactly or nobody: exit 0, 3 (not found or not
// enrolled) or 2 (invalid), never 5 (which would mean the database choked
// on it), one stderr line per failure, and nothing written.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

// userRefLogins exist in the users table besides alice, bob and carol.
var userRefLogins = []string{
	"o'brien", `say "hi"`, "Zoë", "用户名", "🔐 emoji", "semi;colon", "per%cent_under",
	`back\slash`, "trailing ", "evil\x1b[2J\x1b]0;pwned\a",
	"help", // cli's help command: a login, not a request for help
}

// userRefAbsent are valid references that match nobody.
var userRefAbsent = []string{
	`alice' OR '1'='1`, `alice" OR "1"="1`, `'; DROP TABLE users; --`, `"`, `'`, `\`,
	"%", "_", "alic_", "alice%", "*", "ALICE", "alice ", " alice", "аlice", // Cyrillic а
	"o''brien", `say \"hi\"`, "Zoe\u0308", // decomposed ë
	"h", // the alias of cli's help command
	strings.Repeat("a", 1024), strings.Repeat("é", 512), "\x1b[31mred\x1b[0m", "line\nbreak", "\u202egnp.exe",
	"id:0", "id:abc", "id:1 OR 1=1", "id:99999999999999999999999", "id:-1", "id:'1'", "id:%",
}

// userRefCollated match alice under a case-insensitive, space-padding
// collation (MySQL's default): there, like the application's own login
// query, totpadm finds alice.
var userRefCollated = map[string]bool{"ALICE": true, "alice ": true}

// userRefInvalid are references refused before any lookup (exit 2).
var userRefInvalid = []string{
	strings.Repeat("a", 1025), strings.Repeat("x", 5000), strings.Repeat("é", 513), "\xff\xfe", "ab\xc3",
	"nul\x00byte", "", "   ", "\t", "id:",
}

func userRefInsert(t *testing.T, db *testutil.DB) {
	t.Helper()
	for _, login := range userRefLogins {
		db.Exec(t, "INSERT INTO users (username, email) VALUES (?, ?)", login, "x@example.com")
	}
}

// userRefStderr checks stderr for a run that exited with code: nothing on
// success, else exactly one "totpadm:" line.
func userRefStderr(t *testing.T, what string, code int, stderr string) {
	t.Helper()
	if code == 0 {
		if stderr != "" {
			t.Errorf("%s: exit 0 with stderr %q", what, stderr)
		}
		return
	}
	if !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "totpadm: ") {
		t.Errorf("%s: want one \"totpadm:\" line on stderr, got %q", what, stderr)
	}
}

// userRefControl reports the first control character in s, other than a
// final newline: a login must not reach the terminal as an escape
// sequence, on stdout or stderr.
func userRefControl(s string) (rune, bool) {
	for _, r := range strings.TrimSuffix(s, "\n") {
		if r != '\n' && unicode.IsControl(r) {
			return r, true
		}
	}
	return 0, false
}

// userRefArgs is pre, then ref, then post; a ref starting with "-" would be
// taken for a flag, so "--" ends the flags before it.
func userRefArgs(pre []string, ref string, post ...string) []string {
	args := append([]string(nil), pre...)
	if strings.HasPrefix(ref, "-") {
		args = append(args, "--")
	}
	return append(append(args, ref), post...)
}

func TestUserRefHostileLogins(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		userRefInsert(t, db)
		before := db.Dump(t)
		type refCase struct {
			ref            string
			status, verify int
			binary         bool // also through the built binary (argv cannot hold NUL)
		}
		var cases []refCase
		for _, l := range append([]string{"alice", "id:1"}, userRefLogins...) {
			cases = append(cases, refCase{ref: l, status: 0, verify: 3, binary: true})
		}
		collated := db.Backend == "mysql"
		for _, l := range userRefAbsent {
			if collated && userRefCollated[l] {
				continue
			}
			cases = append(cases, refCase{ref: l, status: 3, verify: 3, binary: true})
		}
		for _, l := range userRefInvalid {
			cases = append(cases, refCase{ref: l, status: 2, verify: 2, binary: !strings.Contains(l, "\x00")})
		}
		for _, tc := range cases {
			for _, run := range []struct {
				name string
				args []string
				want int
			}{
				{"status", userRefArgs([]string{"status"}, tc.ref), tc.status},
				{"status -o json", userRefArgs([]string{"-o", "json", "status"}, tc.ref), tc.status},
				{"verify", userRefArgs([]string{"verify"}, tc.ref, "123456"), tc.verify},
			} {
				what := run.name + " " + truncateRef(tc.ref)
				res := testutil.Run(t, testutil.Options{}, db.Args(run.args...)...)
				if res.Code != run.want {
					t.Errorf("%s: exit %d, want %d; stderr %q", what, res.Code, run.want, res.Stderr)
				}
				userRefStderr(t, what, res.Code, res.Stderr)
				if run.name == "status" {
					if r, bad := userRefControl(res.Stdout); bad {
						t.Errorf("%s: table output carries control character %U: %q", what, r, res.Stdout)
					}
				}
				if run.name == "status -o json" && res.Code == 0 && !strings.HasPrefix(tc.ref, "id:") {
					var row struct{ Login string }
					if err := json.Unmarshal([]byte(res.Stdout), &row); err != nil || row.Login != tc.ref {
						t.Errorf("%s: JSON login %q, %v; want %q", what, row.Login, err, tc.ref)
					}
				}
				if tc.binary && run.name != "status -o json" {
					bin := testutil.Exec(t, db.Dir, "", nil, db.Args(run.args...)...)
					if bin.Code != res.Code || bin.Stderr != res.Stderr {
						t.Errorf("%s: binary exit %d stderr %q, in-process exit %d stderr %q", what, bin.Code, bin.Stderr, res.Code, res.Stderr)
					}
				}
			}
		}

		// The same references from a file: one line each, results in order.
		var lines []string
		for _, l := range append(append([]string(nil), userRefLogins...), userRefAbsent...) {
			if l == strings.TrimSpace(l) && !strings.ContainsAny(l, "\n\r") && !strings.HasPrefix(l, "#") && !(collated && userRefCollated[l]) {
				lines = append(lines, l)
			}
		}
		file := filepath.Join(db.Dir, "refs.txt")
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		res := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "status", "--from-file", file)...)
		if res.Code != 3 {
			t.Errorf("status --from-file: exit %d, want 3: %s", res.Code, res.Stderr)
		}
		var found []string
		sc := bufio.NewScanner(strings.NewReader(res.Stdout))
		for sc.Scan() {
			var row struct{ Login string }
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				t.Fatalf("status --from-file output %q: %v", sc.Text(), err)
			}
			found = append(found, row.Login)
		}
		var want []string
		for _, l := range lines {
			for _, e := range userRefLogins {
				if l == e {
					want = append(want, l)
				}
			}
		}
		if strings.Join(found, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("status --from-file found %q, want %q", found, want)
		}
		if n := strings.Count(res.Stderr, "\n"); n != len(lines)-len(want) {
			t.Errorf("status --from-file: %d stderr lines for %d unknown users", n, len(lines)-len(want))
		}

		if after := db.Dump(t); after != before {
			t.Errorf("hostile user references changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// TestUserRefErrorLinesEscapeControlCharacters: a reference with terminal
// escape sequences (pasted from a ticket, or crafted) must not reach the
// support engineer's terminal raw through an error line — as table output
// already guarantees for logins (README, "No leaks").
func TestUserRefErrorLinesEscapeControlCharacters(t *testing.T) {
	db := testutil.NewSQLite(t)
	userRefInsert(t, db)
	for _, ref := range []string{"\x1b[31mred\x1b[0m", "\x1b]0;pwned\a", "evil\x1b[2J\x1b]0;pwned\a", "bell\a", "id:\x1b[2J"} {
		for _, args := range [][]string{
			{"status", ref},
			{"verify", ref, "123456"},
			{"enroll", "--no-confirm", "--dry-run", ref},
			{"unlock", ref},
			{"disable", "--yes", "--reason", "test", ref},
		} {
			res := testutil.Run(t, testutil.Options{}, db.Args(args...)...)
			if r, bad := userRefControl(res.Stderr); bad {
				t.Errorf("%s %q: exit %d, stderr carries control character %U: %q", args[0], ref, res.Code, r, res.Stderr)
			}
			if r, bad := userRefControl(res.Stdout); bad {
				t.Errorf("%s %q: exit %d, stdout carries control character %U: %q", args[0], ref, res.Code, r, res.Stdout)
			}
		}
	}
}

func truncateRef(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "?") + "…"
	}
	return s
}

// userRefFuzzDB is a migrated SQLite database built for a whole fuzz run
// (testutil.NewSQLite takes a *testing.T, and one per input would be slow).
func userRefFuzzDB(f *testing.F) *testutil.DB {
	f.Helper()
	dir := f.TempDir()
	path := filepath.Join(dir, "app.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	gdb, err := config.Open(ctx, config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { config.Close(gdb) })
	if err := gdb.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT)`).Error; err != nil {
		f.Fatal(err)
	}
	for _, login := range append(append([]string(nil), testutil.Users...), userRefLogins...) {
		if err := gdb.Exec("INSERT INTO users (username, email) VALUES (?, ?)", login, "x@example.com").Error; err != nil {
			f.Fatal(err)
		}
	}
	tables, _ := models.TablesWithPrefix(models.DefaultTablePrefix)
	if _, err := models.Migrate(ctx, gdb, tables, false); err != nil {
		f.Fatal(err)
	}
	key, err := models.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	keyFile := filepath.Join(dir, "totpadm.key")
	if err := keyfile.Write(keyFile, key); err != nil {
		f.Fatal(err)
	}
	return &testutil.DB{Backend: "sqlite", Spec: path, KeyFile: keyFile, Dir: dir, Gorm: gdb}
}

// FuzzUserRefCLI runs `status REF` and `verify REF 123456` in-process for
// arbitrary REF: exit 0 exactly for an existing login, 3 for any other
// valid reference, 2 for an invalid one; never 5; one stderr line per
// failure; the database unchanged.
func FuzzUserRefCLI(f *testing.F) {
	for _, s := range append(append(append([]string{"alice", "id:1", "id:01", "bob'--"}, userRefLogins...), userRefAbsent...), userRefInvalid...) {
		f.Add(s)
	}
	db := userRefFuzzDB(f)
	existing := map[string]bool{}
	for _, l := range append(append([]string(nil), testutil.Users...), userRefLogins...) {
		existing[l] = true
	}
	var before string
	f.Fuzz(func(t *testing.T, ref string) {
		if before == "" {
			before = db.Dump(t)
		}
		valid := strings.TrimSpace(ref) != "" && len(ref) <= 1024 && utf8.ValidString(ref) && !strings.ContainsRune(ref, 0) && ref != "id:"
		status := testutil.Run(t, testutil.Options{}, db.Args(userRefArgs([]string{"status"}, ref)...)...)
		verify := testutil.Run(t, testutil.Options{}, db.Args(userRefArgs([]string{"verify"}, ref, "123456")...)...)
		for _, r := range []struct {
			name string
			res  testutil.Result
		}{{"status", status}, {"verify", verify}} {
			what := r.name + " " + truncateRef(ref)
			switch {
			case r.res.Code == 5:
				t.Fatalf("%s: exit 5 (environment) for a user reference: %q", what, r.res.Stderr)
			case !valid && r.res.Code != 2:
				t.Fatalf("%s: invalid reference, exit %d: %q", what, r.res.Code, r.res.Stderr)
			case valid && r.res.Code == 2:
				t.Fatalf("%s: valid reference refused: %q", what, r.res.Stderr)
			}
			userRefStderr(t, what, r.res.Code, r.res.Stderr)
		}
		if valid && !strings.HasPrefix(ref, "id:") {
			want := 3
			if existing[ref] {
				want = 0
			}
			if status.Code != want {
				t.Fatalf("status %q: exit %d, want %d: %q", ref, status.Code, want, status.Stderr)
			}
		}
		if valid && verify.Code != 3 {
			t.Fatalf("verify %q (nobody is enrolled): exit %d, want 3: %q", ref, verify.Code, verify.Stderr)
		}
		if after := db.Dump(t); after != before {
			t.Fatalf("%q changed the database", ref)
		}
	})
}
