package commands_test

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"gorm.io/gorm"

	"github.com/totpadm/totpadm/internal/testutil"
)

// bulkKind is what a line of a bulk input names.
type bulkKind int

const (
	bulkNew      bulkKind = iota // a user without 2FA
	bulkEnrolled                 // a user enrolled (pending) before the run
	bulkUnknown                  // nobody
)

// bulkEntry is one user line of a bulk input.
type bulkEntry struct {
	ref   string // as the output's "user" field shows it (trimmed)
	line  string // as written in the file (maybe padded with blanks)
	login string // "" for an unknown reference
	id    string
	kind  bulkKind
}

// bulkFixture is a database with n bulk users and the --from-file input
// naming them: 3/5 new, 1/5 enrolled, 1/5 unknown, every 7th known user
// by id:N, some lines padded, with comments and blank lines between.
type bulkFixture struct {
	db      *testutil.DB
	entries []bulkEntry
	secrets map[string]string // login → secret of the users enrolled by the setup
}

// bulkInsertUsers adds logins to the users table in one transaction and
// returns login → id of every user.
func bulkInsertUsers(t *testing.T, db *testutil.DB, logins []string) map[string]string {
	t.Helper()
	err := db.Gorm.Transaction(func(tx *gorm.DB) error {
		const chunk = 400
		for lo := 0; lo < len(logins); lo += chunk {
			part := logins[lo:min(lo+chunk, len(logins))]
			var sb strings.Builder
			args := make([]any, 0, 2*len(part))
			sb.WriteString("INSERT INTO users (username, email) VALUES ")
			for i, l := range part {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString("(?, ?)")
				args = append(args, l, l+"@example.com")
			}
			if err := tx.Exec(sb.String(), args...).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert %d users: %v", len(logins), err)
	}
	ids := map[string]string{}
	// Scanning into a string gives the text form of any id type.
	rows, err := db.Gorm.Raw("SELECT id, username FROM users").Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, login string
		if err := rows.Scan(&id, &login); err != nil {
			t.Fatal(err)
		}
		ids[login] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func bulkSetup(t *testing.T, db *testutil.DB, n int) *bulkFixture {
	t.Helper()
	kinds := make([]bulkKind, n)
	var logins, enrolled []string
	for i := range n {
		switch i % 5 {
		case 2:
			kinds[i] = bulkEnrolled
		case 4:
			kinds[i] = bulkUnknown
		}
		if kinds[i] != bulkUnknown {
			logins = append(logins, fmt.Sprintf("bulk-%04d", i))
		}
	}
	ids := bulkInsertUsers(t, db, logins)
	f := &bulkFixture{db: db, secrets: map[string]string{}}
	for i := range n {
		e := bulkEntry{kind: kinds[i]}
		if e.kind == bulkUnknown {
			switch i % 50 {
			case 14:
				e.ref = fmt.Sprintf("id:%d", 900000+i) // an id nobody has
			case 24:
				e.ref = fmt.Sprintf("id:not-a-number-%d", i) // impossible for an integer id
			default:
				e.ref = fmt.Sprintf("ghost-%04d", i)
			}
		} else {
			e.login = fmt.Sprintf("bulk-%04d", i)
			e.id = ids[e.login]
			e.ref = e.login
			if i%7 == 0 {
				e.ref = "id:" + e.id
			}
			if e.kind == bulkEnrolled {
				enrolled = append(enrolled, e.login)
			}
		}
		e.line = e.ref
		if i%11 == 0 {
			e.line = e.ref + "\r" // a CRLF line: the CR is part of the terminator
		}
		f.entries = append(f.entries, e)
	}
	if len(enrolled) > 0 {
		res := testutil.Run(t, testutil.Options{Stdin: strings.Join(enrolled, "\n") + "\n"},
			db.Args("-o", "json", "enroll", "--no-confirm", "--from-file", "-")...)
		if res.Code != 0 {
			t.Fatalf("pre-enroll %d users: exit %d: %s", len(enrolled), res.Code, bulkHead(res.Stderr))
		}
		if got := db.Count(t, "totp_credentials", ""); got != len(enrolled) {
			t.Fatalf("pre-enroll: %d credentials, want %d", got, len(enrolled))
		}
		for _, l := range bulkParseJSON(t, res.Stdout) {
			f.secrets[l.Login] = l.Secret
		}
	}
	return f
}

// bulkInput renders entries as a --from-file input with comments and
// blank lines between the users.
func bulkInput(entries []bulkEntry) string {
	var b strings.Builder
	b.WriteString("# bulk run: new, enrolled and unknown users\n\n")
	for i, e := range entries {
		if i%10 == 0 {
			b.WriteString("\n")
		}
		if i%25 == 0 {
			fmt.Fprintf(&b, "# batch %d\n   \t\n", i/25) // a whitespace-only line is blank
		}
		b.WriteString(e.line + "\n")
	}
	b.WriteString("\n# end\n")
	return b.String()
}

func (f *bulkFixture) input() string { return bulkInput(f.entries) }

func (f *bulkFixture) count(kind bulkKind) int {
	n := 0
	for _, e := range f.entries {
		if e.kind == kind {
			n++
		}
	}
	return n
}

// bulkLine is one JSON object of a multi-user command's output.
type bulkLine struct {
	User        string   `json:"user"`
	Login       string   `json:"login"`
	ID          string   `json:"id"`
	Outcome     string   `json:"outcome"`
	Error       string   `json:"error"`
	State       string   `json:"state"`
	Secret      string   `json:"secret"`
	URI         string   `json:"uri"`
	BackupCodes []string `json:"backup_codes"`
}

func bulkParseJSON(t *testing.T, out string) []bulkLine {
	t.Helper()
	var lines []bulkLine
	if out == "" {
		return nil
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("JSON output does not end with a newline")
	}
	for n, s := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var l bulkLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("JSON line %d %q: %v", n+1, bulkHead(s), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// bulkCheck asserts one result per entry, in input order, with the
// outcome want gives (a failure when fails says so).
func bulkCheck(t *testing.T, entries []bulkEntry, lines []bulkLine, want func(bulkEntry) (outcome string, fails bool)) {
	t.Helper()
	if len(lines) != len(entries) {
		t.Fatalf("%d results for %d users", len(lines), len(entries))
	}
	bad := 0
	for i, e := range entries {
		l := lines[i]
		outcome, fails := want(e)
		var problems []string
		if l.User != e.ref {
			problems = append(problems, fmt.Sprintf("user %q, want %q (out of order?)", l.User, e.ref))
		}
		if l.Outcome != outcome {
			problems = append(problems, fmt.Sprintf("outcome %q, want %q", l.Outcome, outcome))
		}
		if l.Login != e.login || l.ID != e.id {
			problems = append(problems, fmt.Sprintf("login/id %q/%q, want %q/%q", l.Login, l.ID, e.login, e.id))
		}
		if fails != (l.Error != "") {
			problems = append(problems, fmt.Sprintf("error %q, want an error: %v", l.Error, fails))
		}
		if len(problems) > 0 {
			bad++
			if bad <= 10 {
				t.Errorf("line %d (%s): %s", i+1, e.ref, strings.Join(problems, "; "))
			}
		}
	}
	if bad > 10 {
		t.Errorf("… %d wrong results in all", bad)
	}
}

// bulkStderrLines checks that stderr is exactly n "totpadm:" lines.
func bulkStderrLines(t *testing.T, stderr string, n int, contains string) {
	t.Helper()
	var lines []string
	if stderr != "" {
		lines = strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	}
	if len(lines) != n {
		t.Errorf("stderr has %d lines, want %d: %s", len(lines), n, bulkHead(stderr))
		return
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "totpadm: ") || !strings.Contains(l, contains) {
			t.Errorf("stderr line %q: want a \"totpadm:\" line containing %q", l, contains)
			return
		}
	}
}

func bulkHead(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// bulkCredentials snapshots every credential (user id → its row) and the
// number of backup codes of each user.
func bulkCredentials(t *testing.T, db *testutil.DB) (creds map[string]string, codes map[string]int) {
	t.Helper()
	creds, codes = map[string]string{}, map[string]int{}
	rows, err := db.Gorm.Raw("SELECT user_id, secret, key_id, state, created_at, failures FROM totp_credentials").Rows()
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			id, keyID, state string
			secret           []byte
			created          time.Time
			failures         int
		)
		if err := rows.Scan(&id, &secret, &keyID, &state, &created, &failures); err != nil {
			t.Fatal(err)
		}
		creds[id] = fmt.Sprintf("%x|%s|%s|%s|%d", secret, keyID, state, created.UTC().Format(time.RFC3339Nano), failures)
	}
	rows.Close()
	rows, err = db.Gorm.Raw("SELECT user_id, COUNT(*) FROM totp_backup_codes GROUP BY user_id").Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			n  int
		)
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		codes[id] = n
	}
	return creds, codes
}

// bulkCodeHashes returns user id → the sorted hashes of its backup codes.
func bulkCodeHashes(t *testing.T, db *testutil.DB) map[string]string {
	t.Helper()
	rows, err := db.Gorm.Raw("SELECT user_id, hash FROM totp_backup_codes").Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	all := map[string][]string{}
	for rows.Next() {
		var (
			id   string
			hash []byte
		)
		if err := rows.Scan(&id, &hash); err != nil {
			t.Fatal(err)
		}
		all[id] = append(all[id], hex.EncodeToString(hash))
	}
	out := map[string]string{}
	for id, hs := range all {
		sort.Strings(hs)
		out[id] = strings.Join(hs, ",")
	}
	return out
}

// bulkActivate confirms a pending enrollment with a TOTP code.
func bulkActivate(t *testing.T, db *testutil.DB, user, secret string) {
	t.Helper()
	now := time.Now()
	if v := testutil.Run(t, testutil.Options{Now: func() time.Time { return now }}, db.Args("verify", user, testutil.Code(t, secret, now))...); v.Code != 0 {
		t.Fatalf("activate %s: exit %d: %s", user, v.Code, v.Stderr)
	}
}

func bulkRun(t *testing.T, db *testutil.DB, stdin string, args ...string) testutil.Result {
	t.Helper()
	start := time.Now()
	res := testutil.Run(t, testutil.Options{Stdin: stdin}, db.Args(args...)...)
	t.Logf("%s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return res
}

func TestBulkEnrollSkipEnrolled(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		f := bulkSetup(t, db, 1000)
		if f.count(bulkNew) != 600 || f.count(bulkEnrolled) != 200 || f.count(bulkUnknown) != 200 {
			t.Fatalf("fixture: %d new, %d enrolled, %d unknown", f.count(bulkNew), f.count(bulkEnrolled), f.count(bulkUnknown))
		}
		credsBefore, _ := bulkCredentials(t, db)

		t.Run("dry run changes nothing", func(t *testing.T) {
			before := db.Dump(t)
			res := bulkRun(t, db, f.input(), "enroll", "--dry-run", "--no-confirm", "--skip-enrolled", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3 (some users not found)", res.Code)
			}
			bulkCheck(t, f.entries, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
				switch e.kind {
				case bulkNew:
					return "would enroll", false
				case bulkEnrolled:
					return "skipped", false
				}
				return "not found", true
			})
			if after := db.Dump(t); after != before {
				t.Errorf("enroll --dry-run changed the database")
			}
		})

		res := bulkRun(t, db, f.input(), "enroll", "--no-confirm", "--skip-enrolled", "-o", "json", "--from-file", "-")
		if res.Code != 3 {
			t.Errorf("exit %d, want 3: users not found, after processing all", res.Code)
		}
		lines := bulkParseJSON(t, res.Stdout)
		bulkCheck(t, f.entries, lines, func(e bulkEntry) (string, bool) {
			switch e.kind {
			case bulkNew:
				return "enrolled", false
			case bulkEnrolled:
				return "skipped", false
			}
			return "not found", true
		})
		bulkStderrLines(t, res.Stderr, 200, "not found")
		secrets := map[string]bool{}
		for i, l := range lines {
			if i >= len(f.entries) {
				break
			}
			switch f.entries[i].kind {
			case bulkNew:
				if l.State != "pending" || l.Secret == "" || len(l.BackupCodes) != 10 || !strings.HasPrefix(l.URI, "otpauth://totp/") {
					t.Errorf("%s enrolled: state %q, secret %q, %d backup codes, uri %q", l.User, l.State, l.Secret, len(l.BackupCodes), l.URI)
				}
				if secrets[l.Secret] {
					t.Errorf("%s: secret printed twice in one run", l.User)
				}
				secrets[l.Secret] = true
			case bulkEnrolled:
				if l.State != "pending" || l.Secret != "" || len(l.BackupCodes) != 0 || l.URI != "" {
					t.Errorf("%s skipped: state %q and a secret/codes/uri printed: %+v", l.User, l.State, l)
				}
			}
		}
		creds, codes := bulkCredentials(t, db)
		if len(creds) != 800 {
			t.Errorf("%d credentials, want 800", len(creds))
		}
		for _, e := range f.entries {
			switch e.kind {
			case bulkNew:
				if creds[e.id] == "" || codes[e.id] != 10 {
					t.Errorf("new user %s: credential %v, %d backup codes, want one and 10", e.login, creds[e.id] != "", codes[e.id])
				}
			case bulkEnrolled:
				if creds[e.id] != credsBefore[e.id] || codes[e.id] != 10 {
					t.Errorf("enrolled user %s was changed by --skip-enrolled", e.login)
				}
			}
		}
		// A bulk-enrolled user's printed secret works: the first verify
		// activates the enrollment.
		for i, e := range f.entries {
			if e.kind == bulkNew && i < len(lines) {
				now := time.Now()
				v := testutil.Run(t, testutil.Options{Now: func() time.Time { return now }}, db.Args("verify", e.ref, testutil.Code(t, lines[i].Secret, now))...)
				if v.Code != 0 {
					t.Errorf("verify %s with its bulk-enrolled secret: exit %d: %s", e.ref, v.Code, v.Stderr)
				}
				break
			}
		}

		t.Run("re-run changes no credential", func(t *testing.T) {
			creds, codes := bulkCredentials(t, db)
			hashes := bulkCodeHashes(t, db)
			res := bulkRun(t, db, f.input(), "enroll", "--no-confirm", "--skip-enrolled", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			bulkCheck(t, f.entries, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
				if e.kind == bulkUnknown {
					return "not found", true
				}
				return "skipped", false
			})
			creds2, codes2 := bulkCredentials(t, db)
			if !maps.Equal(creds, creds2) || !maps.Equal(codes, codes2) || !maps.Equal(hashes, bulkCodeHashes(t, db)) {
				t.Errorf("re-running enroll --skip-enrolled changed credentials or backup codes")
			}
		})
	})
}

// Without --skip-enrolled an enrolled user is a conflict; the run still
// processes everybody and exits with the code of the first failure in
// input order.
func TestBulkEnrollConflicts(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		f := bulkSetup(t, db, 1000)
		// The first failing line is an enrolled user (line 3).
		if f.entries[0].kind != bulkNew || f.entries[1].kind != bulkNew || f.entries[2].kind != bulkEnrolled {
			t.Fatal("fixture: want the first failure to be an enrolled user")
		}
		credsBefore, _ := bulkCredentials(t, db)

		t.Run("dry run", func(t *testing.T) {
			before := db.Dump(t)
			res := bulkRun(t, db, f.input(), "enroll", "--dry-run", "--no-confirm", "-o", "json", "--from-file", "-")
			if res.Code != 4 {
				t.Errorf("exit %d, want 4 (first failure: already enrolled)", res.Code)
			}
			bulkCheck(t, f.entries, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
				switch e.kind {
				case bulkNew:
					return "would enroll", false
				case bulkEnrolled:
					return "already enrolled", true
				}
				return "not found", true
			})
			if db.Dump(t) != before {
				t.Errorf("enroll --dry-run changed the database")
			}
		})

		res := bulkRun(t, db, f.input(), "enroll", "--no-confirm", "-o", "json", "--from-file", "-")
		if res.Code != 4 {
			t.Errorf("exit %d, want 4: the first failure (line 3) is already enrolled", res.Code)
		}
		lines := bulkParseJSON(t, res.Stdout)
		bulkCheck(t, f.entries, lines, func(e bulkEntry) (string, bool) {
			switch e.kind {
			case bulkNew:
				return "enrolled", false
			case bulkEnrolled:
				return "already enrolled", true
			}
			return "not found", true
		})
		for i, l := range lines {
			if i < len(f.entries) && f.entries[i].kind == bulkEnrolled && !strings.Contains(l.Error, "--force") {
				t.Errorf("%s: error %q does not mention --force", l.User, l.Error)
				break
			}
		}
		bulkStderrLines(t, res.Stderr, 400, "")
		creds, codes := bulkCredentials(t, db)
		if len(creds) != 800 {
			t.Errorf("%d credentials, want 800: the conflicts must not stop the others", len(creds))
		}
		for _, e := range f.entries {
			if e.kind == bulkEnrolled && creds[e.id] != credsBefore[e.id] {
				t.Errorf("%s: existing enrollment replaced without --force", e.login)
			}
			if e.kind == bulkNew && codes[e.id] != 10 {
				t.Errorf("%s: %d backup codes, want 10", e.login, codes[e.id])
			}
		}

		t.Run("first failure unknown user exits 3", func(t *testing.T) {
			reversed := slices.Clone(f.entries)
			slices.Reverse(reversed)
			if reversed[0].kind != bulkUnknown {
				t.Fatal("fixture: want the reversed input to start with an unknown user")
			}
			before := db.Dump(t)
			res := bulkRun(t, db, bulkInput(reversed), "enroll", "--no-confirm", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3: the first failure is a user not found", res.Code)
			}
			bulkCheck(t, reversed, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
				if e.kind == bulkUnknown {
					return "not found", true
				}
				return "already enrolled", true
			})
			if db.Dump(t) != before {
				t.Errorf("a run where every user fails changed the database")
			}
		})
	})
}

func TestBulkDisable(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		f := bulkSetup(t, db, 1000)
		before := db.Dump(t)

		t.Run("off a terminal without --yes", func(t *testing.T) {
			for _, opt := range []testutil.Options{{Stdin: f.input()}, {Stdin: f.input(), Interactive: true}} {
				res := testutil.Run(t, opt, db.Args("disable", "--reason", "r", "--from-file", "-")...)
				if res.Code != 2 || res.Stdout != "" || !strings.Contains(res.Stderr, "--yes") || strings.Count(res.Stderr, "\n") != 1 {
					t.Errorf("interactive=%v: exit %d, stdout %q, stderr %q; want exit 2 and one line naming --yes", opt.Interactive, res.Code, bulkHead(res.Stdout), res.Stderr)
				}
				if db.Dump(t) != before {
					t.Fatalf("disable without --yes changed the database")
				}
			}
		})

		t.Run("dry run", func(t *testing.T) {
			res := bulkRun(t, db, f.input(), "disable", "--dry-run", "--reason", "r", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			bulkCheck(t, f.entries, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
				switch e.kind {
				case bulkNew:
					return "not enrolled", false
				case bulkEnrolled:
					return "would disable", false
				}
				return "not found", true
			})
			if db.Dump(t) != before {
				t.Errorf("disable --dry-run changed the database")
			}
		})

		res := bulkRun(t, db, f.input(), "disable", "--yes", "--reason", "r", "-o", "json", "--from-file", "-")
		if res.Code != 3 {
			t.Errorf("exit %d, want 3 (users not found)", res.Code)
		}
		bulkCheck(t, f.entries, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
			switch e.kind {
			case bulkNew:
				return "not enrolled", false
			case bulkEnrolled:
				return "disabled", false
			}
			return "not found", true
		})
		bulkStderrLines(t, res.Stderr, 200, "not found")
		if n := db.Count(t, "totp_credentials", ""); n != 0 {
			t.Errorf("%d credentials left, want 0", n)
		}
		if n := db.Count(t, "totp_backup_codes", ""); n != 0 {
			t.Errorf("%d backup codes left, want 0", n)
		}
		if n := db.Count(t, "totp_audit_log", "action = ? AND reason = ? AND actor = ?", "disable", "r", "tester"); n != 200 {
			t.Errorf("%d disable audit entries, want 200 (one per disabled user)", n)
		}

		t.Run("re-run", func(t *testing.T) {
			before := db.Dump(t)
			res := bulkRun(t, db, f.input(), "disable", "--yes", "--reason", "r", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			bulkCheck(t, f.entries, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
				if e.kind == bulkUnknown {
					return "not found", true
				}
				return "not enrolled", false
			})
			if db.Dump(t) != before {
				t.Errorf("re-running disable changed the database")
			}
		})
	})
}

// backup-codes, unlock and status over the same mix.
func TestBulkOtherCommands(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		f := bulkSetup(t, db, 1000)
		// Lock every other enrolled user.
		locked := map[string]bool{}
		var lockedIDs []string
		n := 0
		for _, e := range f.entries {
			if e.kind == bulkEnrolled {
				if n%2 == 0 {
					locked[e.id] = true
					lockedIDs = append(lockedIDs, e.id)
				}
				n++
			}
		}
		db.Exec(t, "UPDATE totp_credentials SET failures = 5, locked_until = ? WHERE user_id IN ?", time.Now().Add(time.Hour).UTC(), lockedIDs)

		t.Run("status", func(t *testing.T) {
			res := bulkRun(t, db, f.input(), "--user-email-column", "email", "status", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			bulkStderrLines(t, res.Stderr, 200, "not found")
			var rows []map[string]any
			for _, s := range strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(s), &m); err != nil {
					t.Fatalf("status line %q: %v", s, err)
				}
				rows = append(rows, m)
			}
			var want []bulkEntry
			for _, e := range f.entries {
				if e.kind != bulkUnknown {
					want = append(want, e)
				}
			}
			if len(rows) != len(want) {
				t.Fatalf("%d status rows, want %d", len(rows), len(want))
			}
			for i, e := range want {
				state := "disabled"
				if e.kind == bulkEnrolled {
					state = "pending"
					if locked[e.id] {
						state = "locked"
					}
				}
				if rows[i]["login"] != e.login || rows[i]["id"] != e.id || rows[i]["state"] != state || rows[i]["email"] != e.login+"@example.com" {
					t.Errorf("status row %d: %v, want %s id %s state %s", i, rows[i], e.login, e.id, state)
					break
				}
			}
			res = bulkRun(t, db, f.input(), "status", "--summary", "-o", "json", "--from-file", "-")
			var sum map[string]int
			if err := json.Unmarshal([]byte(res.Stdout), &sum); err != nil {
				t.Fatalf("summary %q: %v", res.Stdout, err)
			}
			if res.Code != 3 || sum["enabled"] != 0 || sum["pending"] != 100 || sum["locked"] != 100 || sum["disabled"] != 600 || sum["total"] != 800 {
				t.Errorf("summary: exit %d, %v; want exit 3, 100 pending, 100 locked, 600 disabled, total 800", res.Code, sum)
			}
		})

		t.Run("unlock", func(t *testing.T) {
			res := bulkRun(t, db, f.input(), "unlock", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			bulkCheck(t, f.entries, bulkParseJSON(t, res.Stdout), func(e bulkEntry) (string, bool) {
				switch {
				case e.kind == bulkUnknown:
					return "not found", true
				case e.kind == bulkNew:
					return "not enrolled", true
				case locked[e.id]:
					return "unlocked", false
				}
				return "not locked", false
			})
			bulkStderrLines(t, res.Stderr, 800, "")
			if n := db.Count(t, "totp_credentials", "failures <> 0 OR locked_until IS NOT NULL"); n != 0 {
				t.Errorf("%d credentials still locked or failing", n)
			}
		})

		t.Run("backup-codes", func(t *testing.T) {
			before := bulkCodeHashes(t, db)
			credsBefore, _ := bulkCredentials(t, db)
			res := bulkRun(t, db, f.input(), "backup-codes", "-o", "json", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			lines := bulkParseJSON(t, res.Stdout)
			bulkCheck(t, f.entries, lines, func(e bulkEntry) (string, bool) {
				switch e.kind {
				case bulkUnknown:
					return "not found", true
				case bulkNew:
					return "not enrolled", true
				}
				return "regenerated", false
			})
			after := bulkCodeHashes(t, db)
			creds, codes := bulkCredentials(t, db)
			if len(creds) != 200 || len(after) != 200 {
				t.Errorf("%d credentials, %d users with codes; want 200 each", len(creds), len(after))
			}
			seen := map[string]bool{}
			var sample, sampleLogin, sampleCode string
			for i, e := range f.entries {
				if e.kind != bulkEnrolled || i >= len(lines) {
					continue
				}
				if after[e.id] == before[e.id] || codes[e.id] != 10 || len(lines[i].BackupCodes) != 10 {
					t.Errorf("%s: codes not replaced by a new set of 10 (%d in the database, %d printed)", e.login, codes[e.id], len(lines[i].BackupCodes))
				}
				if creds[e.id] != credsBefore[e.id] {
					t.Errorf("%s: backup-codes changed the credential", e.login)
				}
				for _, c := range lines[i].BackupCodes {
					if seen[c] {
						t.Errorf("backup code %s printed twice", c)
					}
					seen[c] = true
				}
				if sample == "" {
					sample, sampleLogin, sampleCode = e.ref, e.login, lines[i].BackupCodes[3]
				}
			}
			if sample != "" {
				// Backup codes work once the enrollment is active.
				bulkActivate(t, db, sample, f.secrets[sampleLogin])
				if v := testutil.Run(t, testutil.Options{}, db.Args("verify", sample, sampleCode)...); v.Code != 0 {
					t.Errorf("verify %s with a bulk-regenerated backup code: exit %d: %s", sample, v.Code, v.Stderr)
				}
			}
		})
	})
}

// CSV has a header and the same columns on every row; table output is one
// line per user (successes on stdout, failures on stderr).
func TestBulkFormats(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		f := bulkSetup(t, db, 100)
		found := 0
		for _, e := range f.entries {
			if e.kind != bulkUnknown {
				found++
			}
		}
		readCSV := func(t *testing.T, out string, header []string) [][]string {
			t.Helper()
			r := csv.NewReader(strings.NewReader(out))
			recs, err := r.ReadAll() // fails on a row with a different number of fields
			if err != nil {
				t.Fatalf("CSV: %v\n%s", err, bulkHead(out))
			}
			if len(recs) == 0 || !slices.Equal(recs[0], header) {
				t.Fatalf("CSV header %v, want %v", recs, header)
			}
			if len(recs)-1 != len(f.entries) {
				t.Fatalf("%d CSV rows, want %d", len(recs)-1, len(f.entries))
			}
			return recs[1:]
		}

		res := bulkRun(t, db, f.input(), "enroll", "--no-confirm", "--skip-enrolled", "-o", "csv", "--from-file", "-")
		if res.Code != 3 {
			t.Errorf("enroll -o csv: exit %d, want 3", res.Code)
		}
		rows := readCSV(t, res.Stdout, []string{"user", "login", "id", "outcome", "error", "state", "secret", "uri", "backup_codes"})
		for i, e := range f.entries {
			row := rows[i]
			want := map[bulkKind]string{bulkNew: "enrolled", bulkEnrolled: "skipped", bulkUnknown: "not found"}[e.kind]
			if row[0] != e.ref || row[1] != e.login || row[2] != e.id || row[3] != want {
				t.Errorf("CSV row %d: %q, want %s %s %s %s", i, row, e.ref, e.login, e.id, want)
				continue
			}
			if e.kind == bulkNew && (row[6] == "" || !strings.HasPrefix(row[7], "otpauth://") || len(strings.Fields(row[8])) != 10) {
				t.Errorf("CSV row %d: enrolled without secret, uri or 10 backup codes: %q", i, row)
			}
			if e.kind != bulkNew && (row[6] != "" || row[8] != "") {
				t.Errorf("CSV row %d: secret or codes for a user not enrolled now: %q", i, row)
			}
		}

		tableRun := func(t *testing.T, want func(bulkEntry) string, args ...string) {
			t.Helper()
			res := bulkRun(t, db, f.input(), args...)
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			lines := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
			if len(lines) != found {
				t.Fatalf("%d stdout lines, want one per found user (%d):\n%s", len(lines), found, bulkHead(res.Stdout))
			}
			j := 0
			for _, e := range f.entries {
				if e.kind == bulkUnknown {
					continue
				}
				if w := e.login + ": " + want(e); lines[j] != w {
					t.Errorf("line %d: %q, want %q", j+1, lines[j], w)
				}
				j++
			}
			bulkStderrLines(t, res.Stderr, len(f.entries)-found, "not found")
		}
		t.Run("unlock table", func(t *testing.T) {
			tableRun(t, func(bulkEntry) string { return "not locked" }, "unlock", "--from-file", "-")
		})
		t.Run("status csv", func(t *testing.T) {
			res := bulkRun(t, db, f.input(), "status", "-o", "csv", "--from-file", "-")
			recs, err := csv.NewReader(strings.NewReader(res.Stdout)).ReadAll()
			if err != nil || res.Code != 3 || len(recs) != found+1 || recs[0][0] != "id" {
				t.Errorf("status -o csv: exit %d, %d records, err %v:\n%s", res.Code, len(recs), err, bulkHead(res.Stdout))
			}
		})
		t.Run("disable table", func(t *testing.T) {
			tableRun(t, func(bulkEntry) string { return "disabled" }, "disable", "--yes", "--reason", "r", "--from-file", "-")
		})
		t.Run("disable csv again", func(t *testing.T) {
			res := bulkRun(t, db, f.input(), "disable", "--yes", "--reason", "r", "-o", "csv", "--from-file", "-")
			if res.Code != 3 {
				t.Errorf("exit %d, want 3", res.Code)
			}
			rows := readCSV(t, res.Stdout, []string{"user", "login", "id", "outcome", "error"})
			for i, e := range f.entries {
				want := "not enrolled"
				if e.kind == bulkUnknown {
					want = "not found"
				}
				if rows[i][0] != e.ref || rows[i][3] != want || (rows[i][4] != "") != (e.kind == bulkUnknown) {
					t.Errorf("CSV row %d: %q, want %s %s", i, rows[i], e.ref, want)
				}
			}
		})
	})
}

// A user named twice in one run is handled once and reported twice: the
// second mention sees the first's result.
func TestBulkDuplicates(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		// alice at the start, again after more than one batch of users,
		// and by id right after; bob twice in a row.
		var logins []string
		for i := range 520 {
			logins = append(logins, fmt.Sprintf("dup-%04d", i))
		}
		bulkInsertUsers(t, db, logins)
		input := "alice\nbob\nbob\n" + strings.Join(logins, "\n") + "\nalice\nid:1\n"
		want := func(first, again string) []string {
			out := []string{first, first, again}
			for range logins {
				out = append(out, first)
			}
			return append(out, again, again)
		}
		check := func(t *testing.T, res testutil.Result, wantCode int, outcomes []string) {
			t.Helper()
			if res.Code != wantCode {
				t.Errorf("exit %d, want %d; stderr %s", res.Code, wantCode, bulkHead(res.Stderr))
			}
			lines := bulkParseJSON(t, res.Stdout)
			if len(lines) != len(outcomes) {
				t.Fatalf("%d results, want %d", len(lines), len(outcomes))
			}
			for i, l := range lines {
				if l.Outcome != outcomes[i] {
					t.Errorf("result %d (%s): %q, want %q", i+1, l.User, l.Outcome, outcomes[i])
				}
			}
			if lines[0].Login != "alice" || lines[len(lines)-1].Login != "alice" || lines[len(lines)-1].User != "id:1" {
				t.Errorf("first/last results: %+v / %+v", lines[0], lines[len(lines)-1])
			}
		}
		checkRows := func(t *testing.T, enrolled bool) {
			t.Helper()
			for _, id := range []string{"1", "2"} {
				creds, codes := db.Count(t, "totp_credentials", "user_id = ?", id), db.Count(t, "totp_backup_codes", "user_id = ?", id)
				if enrolled && (creds != 1 || codes != 10) || !enrolled && (creds != 0 || codes != 0) {
					t.Errorf("user %s: %d credentials, %d backup codes", id, creds, codes)
				}
			}
		}

		var aliceSecret string
		t.Run("enroll --skip-enrolled", func(t *testing.T) {
			res := bulkRun(t, db, input, "enroll", "--no-confirm", "--skip-enrolled", "-o", "json", "--from-file", "-")
			check(t, res, 0, want("enrolled", "skipped"))
			aliceSecret = bulkParseJSON(t, res.Stdout)[0].Secret
			checkRows(t, true)
			if n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ?", "enroll", "1"); n != 1 {
				t.Errorf("%d enroll audit entries for alice, want 1", n)
			}
		})
		t.Run("enroll again without --skip-enrolled", func(t *testing.T) {
			before := db.Dump(t)
			res := bulkRun(t, db, input, "enroll", "--no-confirm", "-o", "json", "--from-file", "-")
			check(t, res, 4, want("already enrolled", "already enrolled"))
			if db.Dump(t) != before {
				t.Errorf("conflicting enrollments changed the database")
			}
		})
		t.Run("backup-codes", func(t *testing.T) {
			res := bulkRun(t, db, input, "backup-codes", "-o", "json", "--from-file", "-")
			check(t, res, 0, want("regenerated", "regenerated"))
			checkRows(t, true)
			// Whatever a repeated user was shown last works.
			lines := bulkParseJSON(t, res.Stdout)
			bulkActivate(t, db, "alice", aliceSecret)
			if v := testutil.Run(t, testutil.Options{}, db.Args("verify", "alice", lines[len(lines)-1].BackupCodes[0])...); v.Code != 0 {
				t.Errorf("the last backup codes printed for alice do not work: exit %d: %s", v.Code, v.Stderr)
			}
		})
		t.Run("disable", func(t *testing.T) {
			res := bulkRun(t, db, input, "disable", "--yes", "--reason", "r", "-o", "json", "--from-file", "-")
			check(t, res, 0, want("disabled", "not enrolled"))
			checkRows(t, false)
		})
		t.Run("enroll without --skip-enrolled on fresh users", func(t *testing.T) {
			res := bulkRun(t, db, "alice\nalice\nid:1\n", "enroll", "--no-confirm", "-o", "json", "--from-file", "-")
			if res.Code != 4 {
				t.Errorf("exit %d, want 4", res.Code)
			}
			lines := bulkParseJSON(t, res.Stdout)
			var outcomes []string
			for _, l := range lines {
				outcomes = append(outcomes, l.Outcome)
			}
			if !slices.Equal(outcomes, []string{"enrolled", "already enrolled", "already enrolled"}) {
				t.Errorf("outcomes %q", outcomes)
			}
			if c := db.Count(t, "totp_credentials", "user_id = ?", "1"); c != 1 {
				t.Errorf("alice: %d credentials", c)
			}
		})
	})
}

// enroll --qr-png DIR writes one PNG per enrolled user, mode 0600, named
// after the login and never outside DIR whatever the login holds.
func TestBulkEnrollQRPNG(t *testing.T) {
	help := testutil.Run(t, testutil.Options{}, "enroll", "--help")
	if !strings.Contains(help.Stdout+help.Stderr, "qr-png") {
		t.Skip("enroll --qr-png not implemented")
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		tricky := []string{"../x", "a/b", "a_b", ".hidden", "..", "/etc/passwd-x", `c\d`, "e f", "..\\y"}
		for _, l := range tricky {
			db.Exec(t, "INSERT INTO users (username, email) VALUES (?, ?)", l, "t@example.com")
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "qr")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		// A symlink planted where bob's file goes must not redirect the write.
		outside := filepath.Join(parent, "outside")
		if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(dir, "bob.png")); err != nil {
			t.Fatal(err)
		}
		input := "alice\nid:2\n" + strings.Join(tricky, "\n") + "\n"
		res := testutil.Run(t, testutil.Options{Stdin: input}, db.Args("enroll", "--no-confirm", "-o", "json", "--qr-png", dir, "--from-file", "-")...)
		if res.Code != 0 {
			t.Errorf("exit %d: %s", res.Code, res.Stderr)
		}
		var lines []map[string]string
		for _, s := range strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				t.Fatalf("JSON line %q: %v", bulkHead(s), err)
			}
			l := map[string]string{}
			for k, v := range m {
				if s, ok := v.(string); ok {
					l[k] = s
				}
			}
			lines = append(lines, l)
		}
		if len(lines) != 2+len(tricky) {
			t.Fatalf("%d results, want %d", len(lines), 2+len(tricky))
		}
		uriOf := map[string]string{} // file name → the URI printed for its user
		for _, l := range lines {
			name := l["qr_png"]
			if l["outcome"] != "enrolled" || name == "" {
				t.Errorf("%q: outcome %q, qr_png %q", l["login"], l["outcome"], name)
				continue
			}
			if name != filepath.Base(name) || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".png") {
				t.Errorf("%q: unsafe file name %q", l["login"], name)
			}
			if _, dup := uriOf[name]; dup {
				t.Errorf("two users share %s", name)
			}
			uriOf[name] = l["uri"]
		}
		if uriOf["alice.png"] == "" || uriOf["bob.png"] == "" {
			t.Errorf("files %v: want alice.png and bob.png (named by login)", slices.Collect(maps.Keys(uriOf)))
		}
		// Nothing escaped DIR.
		if entries, _ := os.ReadDir(parent); len(entries) != 2 {
			t.Errorf("files outside DIR: %v", entries)
		}
		if data, _ := os.ReadFile(outside); string(data) != "keep" {
			t.Errorf("the file behind a planted symlink was overwritten: %q", data)
		}
		for _, p := range []string{"/etc/passwd-x.png", filepath.Join(parent, "x.png"), filepath.Join(parent, "y.png")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("a login wrote %s", p)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(uriOf) {
			t.Errorf("%d files in DIR for %d users: %v", len(entries), len(uriOf), entries)
		}
		for _, d := range entries {
			info, err := os.Lstat(filepath.Join(dir, d.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want a regular file with mode 0600", d.Name(), info.Mode())
			}
			want, ok := uriOf[d.Name()]
			if !ok {
				t.Errorf("unexpected file %s in DIR", d.Name())
				continue
			}
			fh, err := os.Open(filepath.Join(dir, d.Name()))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(fh)
			fh.Close()
			if err != nil {
				t.Errorf("%s: not a PNG: %v", d.Name(), err)
				continue
			}
			bmp, err := gozxing.NewBinaryBitmapFromImage(img)
			if err != nil {
				t.Fatal(err)
			}
			qr, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true})
			if err != nil || qr.GetText() != want {
				t.Errorf("%s: QR decodes to %v (err %v), want its user's URI", d.Name(), qr, err)
			}
		}
	})
}
