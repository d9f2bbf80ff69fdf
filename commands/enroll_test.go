package commands_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpadm/totpadm/commands"
	"github.com/totpadm/totpadm/internal/testutil"
)

// enrollHelperT0 is the fixed clock of the in-process runs: the start of a
// 30 s time step, far from any real "now", so a code computed for it can
// only be accepted through the injected clock.
var enrollHelperT0 = time.Date(2031, 3, 14, 15, 9, 0, 0, time.UTC)

func enrollHelperAt(at time.Time) func() time.Time { return func() time.Time { return at } }

var (
	enrollHelperSecretRE = regexp.MustCompile(`^[A-Z2-7]{32}$`)
	// Crockford base32 in lower case: no i, l, o, u.
	enrollHelperBackupRE = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)
	enrollHelperKeyRE    = regexp.MustCompile(`(?m)^  Key:  ((?:[A-Z2-7]{4} ){7}[A-Z2-7]{4})$`)
	enrollHelperURIRE    = regexp.MustCompile(`(?m)^  URI:  (otpauth://\S+)$`)
	enrollHelperCodeRE   = regexp.MustCompile(`(?m)^  ([0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4})(?:    ([0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}))?$`)
)

// enrollHelperLines decodes JSON-lines output, failing on anything else.
func enrollHelperLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		if line == "" {
			t.Fatalf("empty line in JSON output %q", stdout)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("output line %q is not one JSON object: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// enrollHelperState is the stored credential state of a user id, "" when
// there is no credential.
func enrollHelperState(t *testing.T, db *testutil.DB, userID string) string {
	t.Helper()
	var states []string
	if err := db.Gorm.Raw("SELECT state FROM totp_credentials WHERE user_id = ?", userID).Scan(&states).Error; err != nil {
		t.Fatalf("read credential state: %v", err)
	}
	switch len(states) {
	case 0:
		return ""
	case 1:
		return states[0]
	}
	t.Fatalf("user %s has %d credentials", userID, len(states))
	return ""
}

// enrollHelperOneErrorLine asserts that stderr is exactly one line
// starting with "totpadm: " and without a Go stack trace.
func enrollHelperOneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "totpadm: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("stderr is not exactly one \"totpadm: \" line: %q", stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Fatalf("stderr looks like a stack trace (%q): %q", bad, stderr)
		}
	}
}

// enrollHelperTable parses the table-mode output of one enrollment.
type enrollHelperTable struct {
	Key, URI    string
	BackupCodes []string
}

func enrollHelperParseTable(t *testing.T, stdout string) enrollHelperTable {
	t.Helper()
	var p enrollHelperTable
	k := enrollHelperKeyRE.FindAllStringSubmatch(stdout, -1)
	u := enrollHelperURIRE.FindAllStringSubmatch(stdout, -1)
	if len(k) != 1 || len(u) != 1 {
		t.Fatalf("want one Key: and one URI: line, got %d and %d in:\n%s", len(k), len(u), stdout)
	}
	p.Key, p.URI = k[0][1], u[0][1]
	for _, m := range enrollHelperCodeRE.FindAllStringSubmatch(stdout, -1) {
		p.BackupCodes = append(p.BackupCodes, m[1])
		if m[2] != "" {
			p.BackupCodes = append(p.BackupCodes, m[2])
		}
	}
	return p
}

// enrollHelperCheckURI asserts the otpauth URI's label and parameters.
func enrollHelperCheckURI(t *testing.T, uri, issuer, account, secret, alg string, digits int) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("uri %q: %v", uri, err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" {
		t.Errorf("uri %q: want otpauth://totp/…", uri)
	}
	if want := "/" + issuer + ":" + account; u.Path != want {
		t.Errorf("uri label %q, want %q", u.Path, want)
	}
	q := u.Query()
	want := map[string]string{"secret": secret, "issuer": issuer, "algorithm": alg, "digits": strconv.Itoa(digits), "period": "30"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("uri %s=%q, want %q (uri %s)", k, q.Get(k), v, uri)
		}
	}
}

func TestEnrollJSON(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		res := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)},
			db.Args("--issuer", "Example Corp", "-o", "json", "enroll", "--no-confirm", "alice")...)
		if res.Code != 0 {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
		if res.Stderr != "" {
			t.Errorf("stderr not empty: %q", res.Stderr)
		}
		lines := enrollHelperLines(t, res.Stdout)
		if len(lines) != 1 {
			t.Fatalf("want one JSON object, got %d: %s", len(lines), res.Stdout)
		}
		var e testutil.Enrolled
		if err := json.Unmarshal([]byte(res.Stdout), &e); err != nil {
			t.Fatal(err)
		}
		if e.Login != "alice" || e.ID != "1" || e.State != "pending" || e.Outcome != "enrolled" || e.User != "alice" {
			t.Errorf("got user=%q login=%q id=%q state=%q outcome=%q, want alice alice 1 pending enrolled", e.User, e.Login, e.ID, e.State, e.Outcome)
		}
		if lines[0]["error"] != "" {
			t.Errorf("error field %v, want empty", lines[0]["error"])
		}
		if !enrollHelperSecretRE.MatchString(e.Secret) {
			t.Fatalf("secret %q is not 32 base32 characters", e.Secret)
		}
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
		if err != nil || len(raw) != 20 {
			t.Errorf("secret decodes to %d bytes (%v), want 20 (160 bits)", len(raw), err)
		}
		enrollHelperCheckURI(t, e.URI, "Example Corp", "alice", e.Secret, "SHA1", 6)
		if !strings.HasPrefix(e.URI, "otpauth://totp/Example%20Corp:alice?") {
			t.Errorf("uri %q: want prefix otpauth://totp/Example%%20Corp:alice?", e.URI)
		}
		if len(e.BackupCodes) != 10 {
			t.Fatalf("got %d backup codes, want 10", len(e.BackupCodes))
		}
		seen := map[string]bool{}
		for _, c := range e.BackupCodes {
			if !enrollHelperBackupRE.MatchString(c) {
				t.Errorf("backup code %q is not xxxx-xxxx-xxxx in the Crockford alphabet", c)
			}
			if seen[c] {
				t.Errorf("backup code %q repeated", c)
			}
			seen[c] = true
		}
		if got := enrollHelperState(t, db, "1"); got != "pending" {
			t.Errorf("stored state %q, want pending", got)
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ?", "1"); n != 10 {
			t.Errorf("%d backup code rows, want 10", n)
		}
		if n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ? AND actor = ?", "enroll", "1", "tester"); n != 1 {
			t.Errorf("%d enroll audit rows by tester, want 1", n)
		}
		// Two enrollments never share a secret.
		other := testutil.Enroll(t, db, "bob")
		if other.Secret == e.Secret {
			t.Errorf("alice and bob got the same secret")
		}
	})
}

func TestEnrollTableOutput(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		res := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("enroll", "--no-confirm", "alice")...)
		if res.Code != 0 {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
		p := enrollHelperParseTable(t, res.Stdout)
		secret := strings.ReplaceAll(p.Key, " ", "")
		enrollHelperCheckURI(t, p.URI, "totpadm", "alice", secret, "SHA1", 6)
		if len(p.BackupCodes) != 10 {
			t.Errorf("got %d backup codes in the table output, want 10:\n%s", len(p.BackupCodes), res.Stdout)
		}
		if qr := qrHelperBlock(res.Stdout); len(qr) < 10 {
			t.Errorf("no half-block QR code in the output:\n%s", res.Stdout)
		}
		if !strings.Contains(res.Stdout, "pending until the first successful `totpadm verify alice CODE`") {
			t.Errorf("output does not say the enrollment is pending:\n%s", res.Stdout)
		}
		// The printed key is the stored one: its code activates alice.
		v := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)},
			db.Args("verify", "alice", testutil.Code(t, secret, enrollHelperT0))...)
		if v.Code != 0 {
			t.Fatalf("verify with the printed key: exit %d, %q", v.Code, v.Stderr)
		}
		// And a printed backup code works once alice is active.
		v = testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("verify", "alice", p.BackupCodes[9])...)
		if v.Code != 0 {
			t.Fatalf("verify with a printed backup code: exit %d, %q", v.Code, v.Stderr)
		}
	})
}

func TestEnrollInteractiveRejected(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"three wrong codes", "000000\n000000\n000000\n", 1, "3 wrong codes; nothing was saved"},
		{"malformed then wrong", "12ab56\n000000\n1234567\n", 1, "3 wrong codes"},
		{"EOF without a code", "", 2, "no code entered; nothing was saved"},
		{"EOF after a wrong code", "000000\n", 2, "no code entered"},
		{"blank line then EOF", "\n", 2, ""},
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := db.DumpState(t)
				res := testutil.Run(t, testutil.Options{Interactive: true, Stdin: tc.stdin, Now: enrollHelperAt(enrollHelperT0)},
					db.Args("enroll", "alice")...)
				if res.Code != tc.wantCode {
					t.Fatalf("exit %d, want %d; stderr %q", res.Code, tc.wantCode, res.Stderr)
				}
				if !strings.Contains(res.Stderr, "Enter the 6-digit code the app shows for alice: ") {
					t.Errorf("no prompt on stderr: %q", res.Stderr)
				}
				if !strings.Contains(res.Stderr, "totpadm: ") || !strings.Contains(res.Stderr, tc.wantErr) {
					t.Errorf("stderr %q does not report %q", res.Stderr, tc.wantErr)
				}
				// The QR code was shown before the prompt, but no backup
				// codes: nothing was saved.
				if !strings.Contains(res.Stdout, "  Key:  ") {
					t.Errorf("the key was not shown before the prompt:\n%s", res.Stdout)
				}
				if strings.Contains(res.Stdout, "Backup codes") {
					t.Errorf("backup codes printed for an unsaved enrollment:\n%s", res.Stdout)
				}
				// Only the audit row that says a secret was shown and
				// abandoned (TestEnrollAbandonedIsAudited).
				if after := db.DumpState(t); after != before {
					t.Errorf("database changed by a rejected enrollment:\nbefore %s\nafter %s", before, after)
				}
			})
		}
	})
}

// enrollHelperTypist is stdout for an interactive enroll run: when the
// "Key:" line appears it types codes into stdin, as a person reading the
// app would.
type enrollHelperTypist struct {
	t     *testing.T
	mu    sync.Mutex
	buf   bytes.Buffer
	in    *io.PipeWriter
	typed bool
	lines func(secret string) string
}

func (w *enrollHelperTypist) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := enrollHelperKeyRE.FindStringSubmatch(w.buf.String()); m != nil && !w.typed {
		w.typed = true
		text := w.lines(strings.ReplaceAll(m[1], " ", ""))
		go func() {
			io.WriteString(w.in, text)
			w.in.Close()
		}()
	}
	return len(p), nil
}

func (w *enrollHelperTypist) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestEnrollInteractiveConfirmed(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		now := enrollHelperT0.Add(10 * time.Second)
		var code string
		pr, pw := io.Pipe()
		out := &enrollHelperTypist{t: t, in: pw, lines: func(secret string) string {
			code = testutil.Code(t, secret, now)
			// One mistyped code first: the prompt asks again.
			return "000000\n" + code + "\n"
		}}
		var errOut bytes.Buffer
		rc := commands.Run(context.Background(), append([]string{"totpadm"}, db.Args("enroll", "alice")...), commands.Streams{
			In: pr, Out: out, Err: &errOut, Interactive: true, Hostname: "testhost",
			Now: enrollHelperAt(now),
		})
		pr.Close()
		stdout := out.String()
		if rc != 0 {
			t.Fatalf("exit %d, stderr %q", rc, errOut.String())
		}
		if strings.Count(errOut.String(), "Enter the 6-digit code") != 2 || !strings.Contains(errOut.String(), "does not match") {
			t.Errorf("want a retry after the wrong code, stderr %q", errOut.String())
		}
		if !strings.Contains(stdout, "alice: confirmed; 2FA is enabled.") {
			t.Errorf("no confirmation in output:\n%s", stdout)
		}
		p := enrollHelperParseTable(t, stdout)
		if len(p.BackupCodes) != 10 {
			t.Errorf("got %d backup codes after confirmation, want 10", len(p.BackupCodes))
		}
		if got := enrollHelperState(t, db, "1"); got != "active" {
			t.Fatalf("stored state %q, want active", got)
		}
		// The confirming code's time step is consumed.
		v := testutil.Run(t, testutil.Options{Now: enrollHelperAt(now)}, db.Args("verify", "alice", code)...)
		if v.Code != 1 {
			t.Errorf("verify with the confirmation code: exit %d, want 1 (replay); %q", v.Code, v.Stderr)
		}
		secret := strings.ReplaceAll(p.Key, " ", "")
		next := now.Add(30 * time.Second)
		v = testutil.Run(t, testutil.Options{Now: enrollHelperAt(next)}, db.Args("verify", "alice", testutil.Code(t, secret, next))...)
		if v.Code != 0 {
			t.Errorf("verify with the next code: exit %d, %q", v.Code, v.Stderr)
		}
	})
}

func TestEnrollConfirmWithCode(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		opt := testutil.Options{Now: enrollHelperAt(enrollHelperT0)}

		// A wrong code and a backup code do not confirm.
		for _, bad := range []string{"000000", e.BackupCodes[0]} {
			res := testutil.Run(t, opt, db.Args("enroll", "--code", bad, "alice")...)
			if res.Code != 1 {
				t.Errorf("enroll --code %s: exit %d, want 1; %q", bad, res.Code, res.Stderr)
			}
			enrollHelperOneErrorLine(t, res.Stderr)
			if got := enrollHelperState(t, db, "1"); got != "pending" {
				t.Fatalf("state %q after a rejected confirmation, want pending", got)
			}
		}
		// Malformed: usage.
		before := db.Dump(t)
		res := testutil.Run(t, opt, db.Args("enroll", "--code", "12x456", "alice")...)
		if res.Code != 2 {
			t.Errorf("enroll --code 12x456: exit %d, want 2", res.Code)
		}
		if db.Dump(t) != before {
			t.Errorf("a malformed confirmation code changed the database")
		}

		code := testutil.Code(t, e.Secret, enrollHelperT0)
		res = testutil.Run(t, opt, db.Args("enroll", "--code", code, "alice")...)
		if res.Code != 0 {
			t.Fatalf("enroll --code: exit %d, %q", res.Code, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "alice: enrollment confirmed; 2FA is enabled.") {
			t.Errorf("stdout %q", res.Stdout)
		}
		if got := enrollHelperState(t, db, "1"); got != "active" {
			t.Fatalf("state %q, want active", got)
		}
		// The confirmation consumed the code; the secret and backup codes
		// are the ones printed at enrollment.
		if v := testutil.Run(t, opt, db.Args("verify", "alice", code)...); v.Code != 1 {
			t.Errorf("verify with the confirmation code: exit %d, want 1", v.Code)
		}
		if v := testutil.Run(t, opt, db.Args("verify", "alice", e.BackupCodes[0])...); v.Code != 0 {
			t.Errorf("verify with a backup code after confirmation: exit %d, %q", v.Code, v.Stderr)
		}
		// Confirming again: already enabled.
		next := enrollHelperT0.Add(30 * time.Second)
		res = testutil.Run(t, testutil.Options{Now: enrollHelperAt(next)}, db.Args("enroll", "--code", testutil.Code(t, e.Secret, next), "alice")...)
		if res.Code != 4 {
			t.Errorf("enroll --code on an active enrollment: exit %d, want 4; %q", res.Code, res.Stderr)
		}
		// Nothing to confirm for a user without an enrollment.
		res = testutil.Run(t, opt, db.Args("enroll", "--code", code, "bob")...)
		if res.Code != 3 {
			t.Errorf("enroll --code for bob (not enrolled): exit %d, want 3; %q", res.Code, res.Stderr)
		}
	})
}

// A dry run asks nothing, so off a terminal it needs no --no-confirm.
func TestEnrollDryRunOffTerminal(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		before := db.Dump(t)
		res := testutil.Run(t, testutil.Options{Stdin: "alice\nbob\n"}, db.Args("-o", "json", "enroll", "--dry-run", "--from-file", "-")...)
		if res.Code != 0 {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
		if lines := enrollHelperLines(t, res.Stdout); len(lines) != 2 {
			t.Fatalf("%d result lines, want 2: %q", len(lines), res.Stdout)
		}
		if strings.Contains(res.Stdout, "otpauth://") {
			t.Errorf("a dry run printed a secret: %q", res.Stdout)
		}
		if db.Dump(t) != before {
			t.Errorf("a dry run changed the database")
		}
	})
}

func TestEnrollUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  testutil.Options
		args []string
		want string
	}{
		{"off a terminal without --no-confirm or --code", testutil.Options{}, []string{"enroll", "alice"}, "not on a terminal"},
		{"interactive but JSON output", testutil.Options{Interactive: true, Stdin: "123456\n"}, []string{"-o", "json", "enroll", "alice"}, "-o json shows no QR code"},
		{"--no-confirm with --code", testutil.Options{}, []string{"enroll", "--no-confirm", "--code", "123456", "alice"}, "exclude each other"},
		{"--force with --skip-enrolled", testutil.Options{}, []string{"enroll", "--no-confirm", "--force", "--skip-enrolled", "alice"}, "exclude each other"},
		{"--force with --code", testutil.Options{}, []string{"enroll", "--force", "--code", "123456", "alice"}, "--force"},
		{"digits 9", testutil.Options{}, []string{"enroll", "--no-confirm", "--digits", "9", "alice"}, "digits"},
		{"digits 5", testutil.Options{}, []string{"enroll", "--no-confirm", "--digits", "5", "alice"}, "digits"},
		{"algorithm MD5", testutil.Options{}, []string{"enroll", "--no-confirm", "--algorithm", "MD5", "alice"}, "algorithm"},
		{"period 0", testutil.Options{}, []string{"enroll", "--no-confirm", "--period", "0", "alice"}, "period"},
		{"no user", testutil.Options{}, []string{"enroll", "--no-confirm"}, "USER"},
		{"empty id", testutil.Options{}, []string{"enroll", "--no-confirm", "alice", "id:"}, "id"},
		{"unknown flag", testutil.Options{}, []string{"enroll", "--no-confirm", "--bogus", "alice"}, "bogus"},
		{"bad output format", testutil.Options{}, []string{"-o", "xml", "enroll", "--no-confirm", "alice"}, "xml"},
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		before := db.Dump(t)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.opt.Now = enrollHelperAt(enrollHelperT0)
				res := testutil.Run(t, tc.opt, db.Args(tc.args...)...)
				if res.Code != 2 {
					t.Fatalf("exit %d, want 2; stderr %q", res.Code, res.Stderr)
				}
				enrollHelperOneErrorLine(t, res.Stderr)
				if !strings.Contains(res.Stderr, tc.want) {
					t.Errorf("stderr %q does not mention %q", res.Stderr, tc.want)
				}
				if strings.Contains(res.Stdout, "otpauth://") {
					t.Errorf("a secret was printed for a refused enrollment: %q", res.Stdout)
				}
				if after := db.Dump(t); after != before {
					t.Errorf("database changed:\nbefore %s\nafter %s", before, after)
				}
			})
		}
	})
}

func TestEnrollAlreadyEnrolled(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		old := testutil.Enroll(t, db, "alice")
		opt := testutil.Options{Now: enrollHelperAt(enrollHelperT0)}
		// Activate it, so that --force is seen to replace an active one.
		if v := testutil.Run(t, opt, db.Args("verify", "alice", testutil.Code(t, old.Secret, enrollHelperT0))...); v.Code != 0 {
			t.Fatalf("verify: exit %d, %q", v.Code, v.Stderr)
		}

		before := db.Dump(t)
		for _, format := range []string{"table", "json"} {
			res := testutil.Run(t, opt, db.Args("-o", format, "enroll", "--no-confirm", "alice")...)
			if res.Code != 4 {
				t.Errorf("%s: exit %d, want 4; %q", format, res.Code, res.Stderr)
			}
			enrollHelperOneErrorLine(t, res.Stderr)
			if !strings.Contains(res.Stderr, "already enrolled") || !strings.Contains(res.Stderr, "--force") {
				t.Errorf("%s: stderr %q should say already enrolled and suggest --force", format, res.Stderr)
			}
			if strings.Contains(res.Stdout, "otpauth://") {
				t.Errorf("%s: a new secret was printed: %q", format, res.Stdout)
			}
			if format == "json" {
				lines := enrollHelperLines(t, res.Stdout)
				if len(lines) != 1 || lines[0]["outcome"] != "already enrolled" {
					t.Errorf("json output %q, want one object with outcome \"already enrolled\"", res.Stdout)
				}
			}
		}
		if after := db.Dump(t); after != before {
			t.Errorf("database changed:\nbefore %s\nafter %s", before, after)
		}

		// --skip-enrolled: reported as skipped, exit 0, nothing changed.
		res := testutil.Run(t, opt, db.Args("-o", "json", "enroll", "--no-confirm", "--skip-enrolled", "alice", "bob")...)
		if res.Code != 0 {
			t.Fatalf("--skip-enrolled: exit %d, %q", res.Code, res.Stderr)
		}
		lines := enrollHelperLines(t, res.Stdout)
		if len(lines) != 2 || lines[0]["outcome"] != "skipped" || lines[0]["state"] != "enabled" || lines[1]["outcome"] != "enrolled" {
			t.Errorf("--skip-enrolled output %q: want alice skipped (enabled), bob enrolled", res.Stdout)
		}
		if _, ok := lines[0]["secret"]; ok {
			t.Errorf("a skipped user's output has a secret field: %v", lines[0])
		}
		if enrollHelperState(t, db, "1") != "active" || enrollHelperState(t, db, "2") != "pending" {
			t.Errorf("states after --skip-enrolled: alice %q bob %q", enrollHelperState(t, db, "1"), enrollHelperState(t, db, "2"))
		}
		// Re-running is idempotent.
		mid := db.Dump(t)
		res = testutil.Run(t, opt, db.Args("enroll", "--no-confirm", "--skip-enrolled", "alice", "bob")...)
		if res.Code != 0 || !strings.Contains(res.Stdout, "alice: skipped, already enrolled (enabled)") || !strings.Contains(res.Stdout, "bob: skipped, already enrolled (pending)") {
			t.Errorf("re-run of --skip-enrolled: exit %d, stdout %q", res.Code, res.Stdout)
		}
		if db.Dump(t) != mid {
			t.Errorf("re-run of --skip-enrolled changed the database")
		}

		// --force replaces: the old secret and backup codes stop working.
		res = testutil.Run(t, opt, db.Args("-o", "json", "enroll", "--no-confirm", "--force", "alice")...)
		if res.Code != 0 {
			t.Fatalf("--force: exit %d, %q", res.Code, res.Stderr)
		}
		var fresh testutil.Enrolled
		if err := json.Unmarshal([]byte(res.Stdout), &fresh); err != nil {
			t.Fatal(err)
		}
		if fresh.Secret == old.Secret || fresh.State != "pending" {
			t.Fatalf("--force kept the secret or state: %+v", fresh)
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ?", "1"); n != 10 {
			t.Errorf("%d backup code rows after --force, want 10 (old ones deleted)", n)
		}
		next := enrollHelperT0.Add(30 * time.Second)
		optNext := testutil.Options{Now: enrollHelperAt(next)}
		if v := testutil.Run(t, optNext, db.Args("verify", "alice", testutil.Code(t, old.Secret, next))...); v.Code != 1 {
			t.Errorf("old secret's code after --force: exit %d, want 1", v.Code)
		}
		if v := testutil.Run(t, optNext, db.Args("verify", "alice", testutil.Code(t, fresh.Secret, next))...); v.Code != 0 {
			t.Errorf("new secret's code after --force: exit %d, want 0; %q", v.Code, v.Stderr)
		}
		if v := testutil.Run(t, optNext, db.Args("verify", "alice", old.BackupCodes[1])...); v.Code != 1 {
			t.Errorf("old backup code after --force: exit %d, want 1", v.Code)
		}
		if v := testutil.Run(t, optNext, db.Args("verify", "alice", fresh.BackupCodes[1])...); v.Code != 0 {
			t.Errorf("new backup code after --force: exit %d, want 0; %q", v.Code, v.Stderr)
		}
	})
}

func TestEnrollUnknownUsers(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		opt := testutil.Options{Now: enrollHelperAt(enrollHelperT0)}
		before := db.Dump(t)
		for _, who := range []string{"nobody", "id:99"} {
			res := testutil.Run(t, opt, db.Args("enroll", "--no-confirm", who)...)
			if res.Code != 3 {
				t.Errorf("enroll %s: exit %d, want 3; %q", who, res.Code, res.Stderr)
			}
			enrollHelperOneErrorLine(t, res.Stderr)
			if !strings.Contains(res.Stderr, "user not found") {
				t.Errorf("enroll %s: stderr %q", who, res.Stderr)
			}
		}
		if db.Dump(t) != before {
			t.Errorf("enrolling unknown users changed the database")
		}

		// One unknown user among others: the others are enrolled, exit 3.
		res := testutil.Run(t, opt, db.Args("-o", "json", "enroll", "--no-confirm", "alice", "nobody", "id:3")...)
		if res.Code != 3 {
			t.Errorf("exit %d, want 3; %q", res.Code, res.Stderr)
		}
		enrollHelperOneErrorLine(t, res.Stderr)
		if !strings.Contains(res.Stderr, "nobody") {
			t.Errorf("stderr %q does not name the unknown user", res.Stderr)
		}
		lines := enrollHelperLines(t, res.Stdout)
		if len(lines) != 3 {
			t.Fatalf("want one result per user, got %d: %s", len(lines), res.Stdout)
		}
		wantOutcome := []string{"enrolled", "not found", "enrolled"}
		wantLogin := []string{"alice", "", "carol"}
		for i, l := range lines {
			if l["outcome"] != wantOutcome[i] || l["login"] != wantLogin[i] {
				t.Errorf("result %d: outcome %v login %v, want %q %q", i, l["outcome"], l["login"], wantOutcome[i], wantLogin[i])
			}
		}
		if lines[1]["error"] == "" || lines[1]["user"] != "nobody" {
			t.Errorf("result for nobody: %v", lines[1])
		}
		if enrollHelperState(t, db, "1") != "pending" || enrollHelperState(t, db, "3") != "pending" || enrollHelperState(t, db, "2") != "" {
			t.Errorf("states: alice %q bob %q carol %q, want pending, none, pending",
				enrollHelperState(t, db, "1"), enrollHelperState(t, db, "2"), enrollHelperState(t, db, "3"))
		}
	})
}

func TestEnrollNonDefaultParams(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		alg    string
		digits int
		oath   []string // oathtool options for the same parameters
	}{
		{"8 digits", []string{"--digits", "8"}, "SHA1", 8, []string{"--digits=8"}},
		{"SHA256", []string{"--algorithm", "SHA256"}, "SHA256", 6, []string{"--totp=sha256"}},
		{"sha512 lower case, 7 digits", []string{"--algorithm", "sha512", "--digits", "7"}, "SHA512", 7, []string{"--totp=sha512", "--digits=7"}},
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for i, tc := range tests {
			login := testutil.Users[i]
			t.Run(tc.name, func(t *testing.T) {
				args := append(append([]string{"-o", "json", "enroll", "--no-confirm"}, tc.args...), login)
				res := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args(args...)...)
				if res.Code != 0 {
					t.Fatalf("exit %d, %q", res.Code, res.Stderr)
				}
				if !strings.HasPrefix(res.Stderr, "totpadm: warning: ") || !strings.Contains(res.Stderr, "Google and Microsoft Authenticator") {
					t.Errorf("no warning about non-default parameters on stderr: %q", res.Stderr)
				}
				if strings.Contains(res.Stdout, "warning") {
					t.Errorf("the warning went to stdout: %q", res.Stdout)
				}
				var e testutil.Enrolled
				if err := json.Unmarshal([]byte(res.Stdout), &e); err != nil {
					t.Fatal(err)
				}
				enrollHelperCheckURI(t, e.URI, "totpadm", login, e.Secret, tc.alg, tc.digits)
				var stored []struct {
					Algorithm string
					Digits    int
				}
				db.Gorm.Raw("SELECT algorithm, digits FROM totp_credentials WHERE user_id = ?", e.ID).Scan(&stored)
				if len(stored) != 1 || stored[0].Algorithm != tc.alg || stored[0].Digits != tc.digits {
					t.Errorf("stored parameters %+v, want %s/%d", stored, tc.alg, tc.digits)
				}
				// A code from an independent implementation is accepted.
				code := oathHelperCode(t, e.Secret, enrollHelperT0, tc.oath...)
				if len(code) != tc.digits {
					t.Fatalf("oathtool code %q has %d digits, want %d", code, len(code), tc.digits)
				}
				v := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("verify", login, code)...)
				if v.Code != 0 {
					t.Errorf("verify %s %s: exit %d, %q", login, code, v.Code, v.Stderr)
				}
			})
		}
		// The defaults never warn.
		res := testutil.Run(t, testutil.Options{}, db.Args("enroll", "--no-confirm", "--force", "--digits", "6", "--algorithm", "SHA1", "alice")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Errorf("default parameters: exit %d, stderr %q (want no warning)", res.Code, res.Stderr)
		}
	})
}

// TestEnrollFlagAfterUser follows `totpadm enroll --help`, whose example
// reads "totpadm enroll alice --code 123456  # confirm alice's pending
// enrollment": a flag written after the user must act as that flag, never
// be taken for a user name.
func TestEnrollFlagAfterUser(t *testing.T) {
	help := testutil.Run(t, testutil.Options{}, "enroll", "--help")
	if !strings.Contains(help.Stdout, "totpadm enroll alice --code 123456") {
		t.Fatalf("the help no longer shows the example this test follows:\n%s", help.Stdout)
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		code := testutil.Code(t, e.Secret, enrollHelperT0)
		res := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("enroll", "alice", "--code", code)...)
		if res.Code != 0 {
			t.Errorf("documented `enroll alice --code CODE`: exit %d, want 0; stderr %q", res.Code, res.Stderr)
		}
		if got := enrollHelperState(t, db, "1"); got != "active" {
			t.Errorf("after `enroll alice --code CODE` alice is %q, want active", got)
		}
		// On a terminal, `enroll bob --no-confirm` must not prompt for
		// bob's code and then look up a user named "--no-confirm".
		res = testutil.Run(t, testutil.Options{Interactive: true, Stdin: "000000\n000000\n000000\n", Now: enrollHelperAt(enrollHelperT0)},
			db.Args("enroll", "bob", "--no-confirm")...)
		if res.Code != 0 || strings.Contains(res.Stderr, `"--no-confirm"`) {
			t.Errorf("`enroll bob --no-confirm` on a terminal: exit %d, want 0 (bob pending); stderr %q", res.Code, res.Stderr)
		}
	})
}

// enrollHelperNoTerminalControls fails when out carries a byte or rune a
// terminal would act on (ESC, BEL, CR) or that would disguise a login (a
// bidi override, a zero-width character).
func enrollHelperNoTerminalControls(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u202e", "\u200b", "\u200d", "\ufeff"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s carries a raw %q: %q", what, bad, out)
		}
	}
}

// A login crafted with terminal escape sequences or a bidi override must
// reach a support engineer's terminal escaped, on every table-mode path of
// enroll: the QR header, the pending/confirmed/skipped sentences, the
// --qr-png line, dry runs, the prompt and errors. JSON keeps it exact.
func TestEnrollTerminalEscapesInLogins(t *testing.T) {
	const (
		evil      = "mallory\x1b]0;PWNED\x07\x1b[2J\u202egpj.exe\nbob: confirmed"
		lookalike = "admin\u200b\u202e"
		// How the evil login reads once escaped.
		evilShown = `mallory\x1b]0;PWNED\a\x1b[2J\u202egpj.exe\nbob: confirmed`
	)
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "INSERT INTO users (id, username, email) VALUES (10, ?, 'm@example.com')", evil)
		db.Exec(t, "INSERT INTO users (id, username, email) VALUES (11, ?, 'a@example.com')", lookalike)
		opt := testutil.Options{Now: enrollHelperAt(enrollHelperT0)}
		run := func(name string, wantCode int, args ...string) testutil.Result {
			t.Helper()
			res := testutil.Run(t, opt, db.Args(args...)...)
			if res.Code != wantCode {
				t.Fatalf("%s: exit %d, want %d; stderr %q", name, res.Code, wantCode, res.Stderr)
			}
			enrollHelperNoTerminalControls(t, name+" stdout", res.Stdout)
			enrollHelperNoTerminalControls(t, name+" stderr", res.Stderr)
			return res
		}

		// Pending enrollment, with the QR written to a file.
		dir := filepath.Join(db.Dir, "qr")
		res := run("enroll --no-confirm", 0, "enroll", "--no-confirm", "--qr-png", dir, "id:10")
		for _, want := range []string{
			"Enrolling " + evilShown + " (id 10)",
			evilShown + ": enrolled, pending until the first successful `totpadm verify " + evilShown + " CODE`.",
			evilShown + ": QR code written to ",
		} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, res.Stdout)
			}
		}
		secret := strings.ReplaceAll(enrollHelperParseTable(t, res.Stdout).Key, " ", "")

		// A login with only invisible format characters is shown escaped
		// too, so it cannot pass for "admin".
		res = run("enroll look-alike", 0, "enroll", "--no-confirm", "id:11")
		if !strings.Contains(res.Stdout, `admin\u200b\u202e: enrolled, pending`) {
			t.Errorf("the look-alike login is not shown escaped:\n%s", res.Stdout)
		}

		res = run("--skip-enrolled", 0, "enroll", "--no-confirm", "--skip-enrolled", "id:10")
		if want := evilShown + ": skipped, already enrolled (pending)\n"; res.Stdout != want {
			t.Errorf("--skip-enrolled stdout %q, want %q", res.Stdout, want)
		}
		res = run("--dry-run", 0, "enroll", "--no-confirm", "--dry-run", "--force", evil)
		if want := evilShown + ": would replace (dry run)\n"; res.Stdout != want {
			t.Errorf("--dry-run stdout %q, want %q", res.Stdout, want)
		}
		res = run("already enrolled", 4, "enroll", "--no-confirm", "id:10")
		enrollHelperOneErrorLine(t, res.Stderr)
		res = run("unknown user", 3, "enroll", "--no-confirm", "ghost\x1b[2J\u202e")
		enrollHelperOneErrorLine(t, res.Stderr)

		res = run("--code", 0, "enroll", "--code", testutil.Code(t, secret, enrollHelperT0), "id:10")
		if want := evilShown + ": enrollment confirmed; 2FA is enabled.\n"; res.Stdout != want {
			t.Errorf("--code stdout %q, want %q", res.Stdout, want)
		}

		// Interactive --force: the prompt and the confirmation.
		now := enrollHelperT0.Add(40 * time.Second)
		pr, pw := io.Pipe()
		out := &enrollHelperTypist{t: t, in: pw, lines: func(secret string) string {
			return testutil.Code(t, secret, now) + "\n"
		}}
		var errOut bytes.Buffer
		rc := commands.Run(context.Background(), append([]string{"totpadm"}, db.Args("enroll", "--force", "id:10")...), commands.Streams{
			In: pr, Out: out, Err: &errOut, Interactive: true, Hostname: "testhost",
			Now: enrollHelperAt(now),
		})
		pr.Close()
		if rc != 0 {
			t.Fatalf("interactive enroll: exit %d, stderr %q", rc, errOut.String())
		}
		enrollHelperNoTerminalControls(t, "interactive stdout", out.String())
		enrollHelperNoTerminalControls(t, "interactive stderr", errOut.String())
		if !strings.Contains(out.String(), evilShown+": confirmed; 2FA is enabled.\n") {
			t.Errorf("interactive stdout lacks the escaped confirmation:\n%s", out.String())
		}

		// JSON still carries the login exactly: it is data, not display.
		res = testutil.Run(t, opt, db.Args("-o", "json", "enroll", "--no-confirm", "--skip-enrolled", "id:10")...)
		if lines := enrollHelperLines(t, res.Stdout); len(lines) != 1 || lines[0]["login"] != evil {
			t.Errorf("json does not carry the login exactly: %q", res.Stdout)
		}
	})
}

// enroll --qr-png refuses a directory that group or others may write to:
// exit 5, a message that says how to fix it, nothing written or saved.
func TestEnrollQRPNGRefusesSharedDirectory(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		// 0777 and 1777 (sticky, like /tmp) are both refused: the sticky
		// bit stops others deleting a file, not planting names.
		for _, mode := range []os.FileMode{0o777, 0o770, os.ModeSticky | 0o777, 0o702} {
			t.Run(mode.String(), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "shared")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, mode); err != nil {
					t.Fatal(err)
				}
				before := db.Dump(t)
				res := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)},
					db.Args("enroll", "--no-confirm", "--qr-png", dir, "alice")...)
				if res.Code != commands.ExitEnvironment {
					t.Fatalf("exit %d, want %d; stderr %q", res.Code, commands.ExitEnvironment, res.Stderr)
				}
				enrollHelperOneErrorLine(t, res.Stderr)
				for _, want := range []string{dir, "writable by group or others", "chmod 700"} {
					if !strings.Contains(res.Stderr, want) {
						t.Errorf("stderr %q does not mention %q", res.Stderr, want)
					}
				}
				if strings.Contains(res.Stdout, "otpauth://") {
					t.Errorf("a secret was printed: %q", res.Stdout)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("files written to the refused directory: %v", entries)
				}
				if db.Dump(t) != before {
					t.Errorf("the database changed")
				}
			})
		}
	})
}

// enroll --qr-png writes through a fresh temporary file: one planted at a
// guessable name is neither written nor left behind in place of the PNG,
// no temporary file survives, the PNG is mode 0600, and a directory
// totpadm creates is mode 0700.
func TestEnrollQRPNGTemporaryFile(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		dir := filepath.Join(t.TempDir(), "new", "qr")
		// Run once to create the directory.
		res := testutil.Run(t, testutil.Options{}, db.Args("enroll", "--no-confirm", "--qr-png", dir, "bob")...)
		if res.Code != 0 {
			t.Fatalf("exit %d, %q", res.Code, res.Stderr)
		}
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if info, err := os.Stat(d); err != nil || info.Mode().Perm() != 0o700 {
				t.Errorf("created directory %s: mode %v (%v), want 0700", d, info.Mode(), err)
			}
		}

		// Another local user pre-creates the temporary names an older
		// totpadm used and keeps them open, to read whatever lands in them.
		var planted []*os.File
		for _, name := range []string{".alice.png.tmp", ".alice.png.tmp.png", "alice.png.tmp"} {
			f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			planted = append(planted, f)
		}
		res = testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "enroll", "--no-confirm", "--qr-png", dir, "alice")...)
		if res.Code != 0 {
			t.Fatalf("exit %d, %q", res.Code, res.Stderr)
		}
		for _, f := range planted {
			data, _ := io.ReadAll(f)
			info, _ := f.Stat()
			if len(data) != 0 || info.Size() != 0 {
				t.Errorf("%s: the QR code was written into a pre-created file (%d bytes)", f.Name(), info.Size())
			}
			os.Remove(f.Name())
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != "alice.png bob.png" {
			t.Errorf("directory holds %v, want only alice.png and bob.png (no temporary file left)", names)
		}
		for _, n := range []string{"alice.png", "bob.png"} {
			info, err := os.Lstat(filepath.Join(dir, n))
			if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v (%v), want a regular file with mode 0600", n, info.Mode(), err)
			}
		}
	})
}

// The per-user result lines of the other bulk commands escape a crafted
// login inside the sentence, so its newline cannot fake a second result.
func TestResultLinesEscapeLogins(t *testing.T) {
	const (
		evil      = "mallory\x1b[2J\nbob: disabled"
		evilShown = `mallory\x1b[2J\nbob: disabled`
	)
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "INSERT INTO users (id, username, email) VALUES (10, ?, 'm@example.com')", evil)
		opt := testutil.Options{Now: enrollHelperAt(enrollHelperT0)}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"enroll", "--no-confirm", "id:10"}, evilShown + ": enrolled"},
			{[]string{"backup-codes", "id:10"}, evilShown + ": new backup codes"},
			{[]string{"unlock", "id:10"}, evilShown + ": not locked"},
			{[]string{"disable", "--dry-run", "--reason", "r", "id:10"}, evilShown + ": would disable (dry run)"},
			{[]string{"disable", "--yes", "--reason", "r", "id:10"}, evilShown + ": disabled"},
		} {
			res := testutil.Run(t, opt, db.Args(c.args...)...)
			if res.Code != 0 {
				t.Fatalf("%v: exit %d, stderr %q", c.args, res.Code, res.Stderr)
			}
			enrollHelperNoTerminalControls(t, c.args[0]+" stdout", res.Stdout)
			if !strings.Contains(res.Stdout, c.want) {
				t.Errorf("%v: stdout lacks %q:\n%s", c.args, c.want, res.Stdout)
			}
			if strings.Contains(res.Stdout, "\nbob: disabled") {
				t.Errorf("%v: the login's newline reached stdout raw:\n%s", c.args, res.Stdout)
			}
		}
	})
}
