package commands_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// verifyHelperRun verifies at a fixed time.
func verifyHelperRun(t *testing.T, db *testutil.DB, at time.Time, stdin string, args ...string) testutil.Result {
	t.Helper()
	return testutil.Run(t, testutil.Options{Now: enrollHelperAt(at), Stdin: stdin}, db.Args(args...)...)
}

func TestVerifyTOTP(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		t0 := enrollHelperT0
		code := testutil.Code(t, e.Secret, t0)

		// Wrong code first: rejected, counted, still pending.
		wrong := "000000"
		if wrong == code {
			wrong = "000001"
		}
		res := verifyHelperRun(t, db, t0, "", "verify", "alice", wrong)
		if res.Code != 1 {
			t.Fatalf("wrong code: exit %d, want 1; %q", res.Code, res.Stderr)
		}
		enrollHelperOneErrorLine(t, res.Stderr)
		if !strings.Contains(res.Stderr, "wrong code") || res.Stdout != "" {
			t.Errorf("wrong code: stdout %q stderr %q", res.Stdout, res.Stderr)
		}
		if got := enrollHelperState(t, db, "1"); got != "pending" {
			t.Fatalf("state %q after a wrong code, want pending", got)
		}

		// Good code: accepted and activates.
		res = verifyHelperRun(t, db, t0, "", "verify", "alice", code)
		if res.Code != 0 {
			t.Fatalf("good code: exit %d, %q", res.Code, res.Stderr)
		}
		if res.Stdout != "alice: code accepted; enrollment activated, 2FA is enabled.\n" || res.Stderr != "" {
			t.Errorf("good code: stdout %q stderr %q", res.Stdout, res.Stderr)
		}
		if got := enrollHelperState(t, db, "1"); got != "active" {
			t.Fatalf("state %q after a good code, want active", got)
		}

		// Replay, also a few seconds later within the same window.
		for _, at := range []time.Time{t0, t0.Add(20 * time.Second), t0.Add(45 * time.Second)} {
			before := db.Count(t, "totp_audit_log", "outcome = ?", "replayed")
			res = verifyHelperRun(t, db, at, "", "verify", "alice", code)
			if res.Code != 1 {
				t.Errorf("replay at %s: exit %d, want 1", at, res.Code)
			}
			enrollHelperOneErrorLine(t, res.Stderr)
			if !strings.Contains(res.Stderr, "already used") {
				t.Errorf("replay: stderr %q should say the code was already used", res.Stderr)
			}
			if db.Count(t, "totp_audit_log", "outcome = ?", "replayed") != before+1 {
				t.Errorf("replay at %s not in the audit log", at)
			}
		}

		// Skew ±1 step: a phone running 30 s ahead is accepted.
		t1 := t0.Add(30 * time.Second)
		if r := verifyHelperRun(t, db, t1, "", "verify", "alice", testutil.Code(t, e.Secret, t1.Add(30*time.Second))); r.Code != 0 {
			t.Errorf("next step's code (skew +1): exit %d, %q", r.Code, r.Stderr)
		}
		// Outside ±1 step: rejected.
		t3 := t0.Add(5 * time.Minute)
		if r := verifyHelperRun(t, db, t3, "", "verify", "alice", testutil.Code(t, e.Secret, t3.Add(-90*time.Second))); r.Code != 1 {
			t.Errorf("code from 3 steps ago: exit %d, want 1", r.Code)
		}
		// Spaces inside a code are forgiven ("123 456"); and a code older than the last accepted step is never accepted.
		t4 := t0.Add(10 * time.Minute)
		c4 := testutil.Code(t, e.Secret, t4)
		if r := verifyHelperRun(t, db, t4, "", "verify", "alice", c4[:3]+" "+c4[3:]); r.Code != 0 {
			t.Errorf("code with a space: exit %d, %q", r.Code, r.Stderr)
		}
		if r := verifyHelperRun(t, db, t4, "", "verify", "alice", testutil.Code(t, e.Secret, t4.Add(-30*time.Second))); r.Code != 1 {
			t.Errorf("previous step after a later step was accepted: exit %d, want 1", r.Code)
		}
	})
}

func TestVerifyMalformedAndUnknown(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"letters", []string{"verify", "alice", "12a456"}, 2, "malformed"},
		{"too short", []string{"verify", "alice", "123"}, 2, "malformed"},
		{"7 digits for a 6-digit credential", []string{"verify", "alice", "1234567"}, 2, "malformed"},
		{"empty", []string{"verify", "alice", ""}, 2, "malformed"},
		{"backup code too long", []string{"verify", "alice", "abcd-efgh-jkmn-p"}, 2, "malformed"},
		{"backup code with a u", []string{"verify", "alice", "abcd-efgh-jkmu"}, 2, "malformed"},
		{"no code", []string{"verify", "alice"}, 2, "USER CODE"},
		{"no arguments", []string{"verify"}, 2, "USER CODE"},
		{"three arguments", []string{"verify", "alice", "123456", "extra"}, 2, "USER CODE"},
		{"unknown flag", []string{"verify", "--bogus", "alice", "123456"}, 2, "bogus"},
		{"unknown global flag", []string{"--bogus", "verify", "alice", "123456"}, 2, "bogus"},
		{"empty id", []string{"verify", "id:", "123456"}, 2, "invalid user reference"},
		{"stdin without a code", []string{"verify", "alice", "-"}, 2, "no code on stdin"},
		{"unknown user", []string{"verify", "nobody", "123456"}, 3, "user not found"},
		{"unknown id", []string{"verify", "id:42", "123456"}, 3, "user not found"},
		{"not enrolled", []string{"verify", "bob", "123456"}, 3, "not enrolled"},
		{"not enrolled, backup code", []string{"verify", "bob", "abcd-efgh-jkmn"}, 3, "not enrolled"},
		{"not enrolled, by id", []string{"verify", "id:3", "123456"}, 3, "not enrolled"},
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		testutil.Enroll(t, db, "alice")
		before := db.Dump(t)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res := verifyHelperRun(t, db, enrollHelperT0, "", tc.args...)
				if res.Code != tc.code {
					t.Fatalf("exit %d, want %d; stderr %q", res.Code, tc.code, res.Stderr)
				}
				enrollHelperOneErrorLine(t, res.Stderr)
				if !strings.Contains(res.Stderr, tc.want) {
					t.Errorf("stderr %q does not mention %q", res.Stderr, tc.want)
				}
				if res.Stdout != "" {
					t.Errorf("stdout %q, want nothing", res.Stdout)
				}
				// Malformed input is no guess: no failure counted, no
				// audit row; an unknown user has nothing to change.
				if after := db.Dump(t); after != before {
					t.Errorf("database changed:\nbefore %s\nafter %s", before, after)
				}
			})
		}
	})
}

func TestVerifyBackupCode(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		t0 := enrollHelperT0

		// A pending enrollment is activated by the app, not a backup code.
		before := db.Count(t, "totp_backup_codes", "used_at IS NULL")
		res := verifyHelperRun(t, db, t0, "", "verify", "alice", e.BackupCodes[0])
		if res.Code != 1 || !strings.Contains(res.Stderr, "pending") {
			t.Errorf("backup code on a pending enrollment: exit %d, want 1; %q", res.Code, res.Stderr)
		}
		if db.Count(t, "totp_backup_codes", "used_at IS NULL") != before || enrollHelperState(t, db, "1") != "pending" {
			t.Errorf("a backup code on a pending enrollment was consumed or activated it")
		}
		if r := verifyHelperRun(t, db, t0, "", "verify", "alice", testutil.Code(t, e.Secret, t0)); r.Code != 0 {
			t.Fatalf("activate: exit %d, %q", r.Code, r.Stderr)
		}

		forms := []struct{ name, input string }{
			{"as printed", e.BackupCodes[0]},
			{"upper case", strings.ToUpper(e.BackupCodes[1])},
			{"without dashes", strings.ReplaceAll(e.BackupCodes[2], "-", "")},
			{"upper case without dashes", strings.ToUpper(strings.ReplaceAll(e.BackupCodes[3], "-", ""))},
			{"spaces instead of dashes", strings.ReplaceAll(e.BackupCodes[4], "-", " ")},
		}
		for i, f := range forms {
			t.Run(f.name, func(t *testing.T) {
				res := verifyHelperRun(t, db, t0, "", "verify", "alice", f.input)
				if res.Code != 0 {
					t.Fatalf("first use of %q: exit %d, %q", f.input, res.Code, res.Stderr)
				}
				left := 10 - 1 - i
				want := "alice: backup code accepted; " + strconv.Itoa(left) + " left."
				if !strings.HasPrefix(res.Stdout, want) {
					t.Errorf("stdout %q, want prefix %q", res.Stdout, want)
				}
				// Second use, in any spelling: rejected.
				for _, again := range []string{f.input, e.BackupCodes[i]} {
					res = verifyHelperRun(t, db, t0, "", "verify", "alice", again)
					if res.Code != 1 {
						t.Errorf("second use of %q: exit %d, want 1", again, res.Code)
					}
					enrollHelperOneErrorLine(t, res.Stderr)
				}
			})
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ? AND used_at IS NOT NULL", "1"); n != len(forms) {
			t.Errorf("%d backup codes marked used, want %d", n, len(forms))
		}
		// An unknown well-formed backup code is a wrong code.
		if r := verifyHelperRun(t, db, t0, "", "verify", "alice", "zzzz-zzzz-zzzz"); r.Code != 1 {
			t.Errorf("unknown backup code: exit %d, want 1", r.Code)
		}
		// Few left: the message says to regenerate.
		for _, c := range e.BackupCodes[5:8] {
			if r := verifyHelperRun(t, db, t0, "", "verify", "alice", c); r.Code != 0 {
				t.Fatalf("use %s: exit %d", c, r.Code)
			}
		}
		r := verifyHelperRun(t, db, t0, "", "verify", "alice", e.BackupCodes[8])
		if r.Code != 0 || !strings.Contains(r.Stdout, "1 left") || !strings.Contains(r.Stdout, "totpadm backup-codes alice") {
			t.Errorf("second-to-last backup code: exit %d, stdout %q", r.Code, r.Stdout)
		}
	})
}

func TestVerifyStdin(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		t0 := enrollHelperT0
		code := testutil.Code(t, e.Secret, t0)
		res := verifyHelperRun(t, db, t0, code+"\n", "verify", "alice", "-")
		if res.Code != 0 {
			t.Fatalf("code on stdin: exit %d, %q", res.Code, res.Stderr)
		}
		if enrollHelperState(t, db, "1") != "active" {
			t.Errorf("a code from stdin did not activate")
		}
		// Without a trailing newline, with surrounding blanks.
		t1 := t0.Add(30 * time.Second)
		if r := verifyHelperRun(t, db, t1, "  "+testutil.Code(t, e.Secret, t1)+"  ", "verify", "alice", "-"); r.Code != 0 {
			t.Errorf("code on stdin without newline: exit %d, %q", r.Code, r.Stderr)
		}
		// A backup code on stdin; a replay from stdin is rejected.
		if r := verifyHelperRun(t, db, t1, e.BackupCodes[0]+"\n", "verify", "alice", "-"); r.Code != 0 {
			t.Errorf("backup code on stdin: exit %d, %q", r.Code, r.Stderr)
		}
		if r := verifyHelperRun(t, db, t1, code+"\n", "verify", "alice", "-"); r.Code != 1 {
			t.Errorf("replayed code on stdin: exit %d, want 1", r.Code)
		}
		// Only the first line is read.
		before := db.Dump(t)
		if r := verifyHelperRun(t, db, t1, "\n"+testutil.Code(t, e.Secret, t1)+"\n", "verify", "alice", "-"); r.Code != 2 {
			t.Errorf("blank first line on stdin: exit %d, want 2", r.Code)
		}
		if db.Dump(t) != before {
			t.Errorf("a blank stdin changed the database")
		}
	})
}

// verifyHelperJSON is one verify -o json result.
type verifyHelperJSON struct {
	User            string `json:"user"`
	Login           string `json:"login"`
	ID              string `json:"id"`
	Outcome         string `json:"outcome"`
	Error           string `json:"error"`
	Method          any    `json:"method"`
	Activated       bool   `json:"activated"`
	BackupCodesLeft any    `json:"backup_codes_left"`
}

func verifyHelperDecode(t *testing.T, stdout string) verifyHelperJSON {
	t.Helper()
	lines := enrollHelperLines(t, stdout)
	if len(lines) != 1 {
		t.Fatalf("want one JSON object, got %d: %q", len(lines), stdout)
	}
	var v verifyHelperJSON
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyJSON(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		t0 := enrollHelperT0
		code := testutil.Code(t, e.Secret, t0)

		res := verifyHelperRun(t, db, t0, "", "-o", "json", "verify", "alice", code)
		if res.Code != 0 {
			t.Fatalf("exit %d, %q", res.Code, res.Stderr)
		}
		v := verifyHelperDecode(t, res.Stdout)
		if v.Outcome != "accepted" || v.Method != "totp" || !v.Activated || v.Login != "alice" || v.ID != "1" || v.Error != "" || v.BackupCodesLeft != nil {
			t.Errorf("TOTP result %+v, want accepted totp activated alice 1, no backup_codes_left", v)
		}

		res = verifyHelperRun(t, db, t0, "", "-o", "json", "verify", "alice", e.BackupCodes[0])
		if res.Code != 0 {
			t.Fatalf("backup: exit %d, %q", res.Code, res.Stderr)
		}
		v = verifyHelperDecode(t, res.Stdout)
		if v.Outcome != "accepted" || v.Method != "backup code" || v.Activated || v.BackupCodesLeft != float64(9) {
			t.Errorf("backup result %+v, want accepted, backup code, 9 left", v)
		}

		// Rejections are objects too, with the error, and exit 1.
		res = verifyHelperRun(t, db, t0, "", "-o", "json", "verify", "alice", code)
		if res.Code != 1 {
			t.Fatalf("replay: exit %d, want 1", res.Code)
		}
		enrollHelperOneErrorLine(t, res.Stderr)
		v = verifyHelperDecode(t, res.Stdout)
		if v.Outcome != "rejected" || v.Error == "" {
			t.Errorf("replay result %+v, want outcome rejected with an error", v)
		}
		if strings.Contains(res.Stdout, code) || strings.Contains(res.Stderr, code) {
			t.Errorf("the code %s is echoed in the output: %q %q", code, res.Stdout, res.Stderr)
		}

		res = verifyHelperRun(t, db, t0, "", "-o", "json", "verify", "bob", code)
		if res.Code != 3 {
			t.Errorf("bob: exit %d, want 3", res.Code)
		}
		if v = verifyHelperDecode(t, res.Stdout); v.Outcome != "not enrolled" {
			t.Errorf("bob result %+v, want outcome \"not enrolled\"", v)
		}
	})
}

// oathHelperCode computes a TOTP code with oathtool, an implementation
// independent of totpadm. Missing oathtool skips, except under CI.
func oathHelperCode(t *testing.T, secret string, at time.Time, opts ...string) string {
	t.Helper()
	path, err := exec.LookPath("oathtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("oathtool is required under CI (apt-get install oathtool): %v", err)
		}
		t.Skipf("oathtool not installed (apt-get install oathtool); skipping the cross-check")
	}
	totp := "--totp"
	for _, o := range opts {
		if strings.HasPrefix(o, "--totp") {
			totp = o
		}
	}
	args := []string{totp, "-b", "--now", at.UTC().Format("2006-01-02 15:04:05 UTC")}
	for _, o := range opts {
		if !strings.HasPrefix(o, "--totp") {
			args = append(args, o)
		}
	}
	out, err := exec.Command(path, append(args, secret)...).Output()
	if err != nil {
		t.Fatalf("oathtool %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func TestVerifyOathtool(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		// The clock of this test is the real one: oathtool's current code,
		// checked by an unpatched totpadm.
		now := time.Now()
		code := oathHelperCode(t, e.Secret, now)
		if want := testutil.Code(t, e.Secret, now); code != want {
			t.Errorf("oathtool says %s, totpadm's generator says %s", code, want)
		}
		res := testutil.Run(t, testutil.Options{}, db.Args("verify", "alice", code)...)
		if res.Code != 0 {
			t.Fatalf("verify with oathtool's code: exit %d, %q", res.Code, res.Stderr)
		}
		// Several fixed instants, including step boundaries.
		for i, at := range []time.Time{
			enrollHelperT0.Add(time.Hour),
			enrollHelperT0.Add(2*time.Hour + 29*time.Second),
			enrollHelperT0.Add(3*time.Hour + 30*time.Second),
		} {
			c := oathHelperCode(t, e.Secret, at)
			if r := verifyHelperRun(t, db, at, "", "verify", "alice", c); r.Code != 0 {
				t.Errorf("instant %d (%s): oathtool code %s: exit %d, %q", i, at, c, r.Code, r.Stderr)
			}
		}
		// The real binary, real clock, reading the code from stdin.
		bob := testutil.Enroll(t, db, "bob")
		code = oathHelperCode(t, bob.Secret, time.Now())
		r := testutil.Exec(t, db.Dir, code+"\n", nil, db.Args("verify", "bob", "-")...)
		if r.Code != 0 {
			t.Fatalf("binary verify with oathtool's code: exit %d, %q", r.Code, r.Stderr)
		}
		if enrollHelperState(t, db, "2") != "active" {
			t.Errorf("bob not active after the binary's verify")
		}
	})
}
