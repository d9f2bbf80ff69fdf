package commands_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

func skipWithoutShell(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the hooks under test are sh scripts")
	}
}

// hookEvents reads the JSON lines a hook appended to path.
func hookEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("hook input line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

func TestOnChangeHookEvents(t *testing.T) {
	skipWithoutShell(t)
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		dir := t.TempDir()
		events := filepath.Join(dir, "events")
		hook := []string{"--on-change", "cat >> '" + events + "'"}
		run := func(args ...string) testutil.Result {
			t.Helper()
			res := testutil.Run(t, testutil.Options{}, append(db.Args(hook...), args...)...)
			if res.Code != 0 {
				t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
			}
			return res
		}

		alice := testutil.Enroll(t, db, "alice", hook...)
		got := hookEvents(t, events)
		if len(got) != 1 {
			t.Fatalf("enroll: hook received %v, want one event", got)
		}
		want := map[string]any{"action": "enroll", "user_id": "1", "login": "alice", "email": "alice@example.com",
			"actor": "tester", "host": "testhost", "reason": "", "outcome": "pending"}
		for k, v := range want {
			if got[0][k] != v {
				t.Errorf("enroll event %s = %v, want %v (event %v)", k, got[0][k], v, got[0])
			}
		}
		if at, err := time.Parse(time.RFC3339, fmt.Sprint(got[0]["time"])); err != nil || time.Since(at) > time.Minute {
			t.Errorf("enroll event time %v: %v", got[0]["time"], err)
		}
		raw, _ := os.ReadFile(events)
		for _, secret := range append([]string{alice.Secret, alice.URI}, alice.BackupCodes...) {
			if secret == "" || strings.Contains(string(raw), secret) {
				t.Errorf("the hook received a secret %q: %s", secret, raw)
			}
		}

		// Verifications: only the one that activates is a change.
		run("verify", "alice", testutil.Code(t, alice.Secret, time.Now()))
		if got := hookEvents(t, events); len(got) != 2 || got[1]["action"] != "confirm" || got[1]["outcome"] != "active" {
			t.Fatalf("after the confirming verify the hook received %v", got)
		}
		run("verify", "alice", alice.BackupCodes[0])
		run("-o", "json", "disable", "--dry-run", "--reason", "ticket 7", "alice")
		run("status")
		if got := hookEvents(t, events); len(got) != 2 {
			t.Fatalf("a verification, a dry run or a status ran the hook: %v", got)
		}
		res := run("-o", "json", "disable", "--yes", "--reason", "ticket 7", "alice")
		if got := hookEvents(t, events); len(got) != 3 || got[2]["action"] != "disable" || got[2]["reason"] != "ticket 7" {
			t.Fatalf("after disable the hook received %v", got)
		}
		if res.Stderr != "" {
			t.Errorf("a hook that succeeds printed %q", res.Stderr)
		}
		// Refused: bob is not found, carol not enrolled: no event.
		testutil.Run(t, testutil.Options{}, append(db.Args(hook...), "disable", "--yes", "--reason", "x", "carol", "nobody")...)
		if got := hookEvents(t, events); len(got) != 3 {
			t.Fatalf("refused users ran the hook: %v", got)
		}
	})
}

// onChangeAudit is the outcomes of the on-change rows of the audit log.
func onChangeAudit(t *testing.T, db *testutil.DB) []string {
	t.Helper()
	res := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "audit", "--action", "on-change")...)
	if res.Code != 0 {
		t.Fatalf("audit: exit %d: %s", res.Code, res.Stderr)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if line == "" {
			continue
		}
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, fmt.Sprintf("%v %v %v", row["login"], row["outcome"], row["reason"]))
	}
	return out
}

func TestOnChangeHookFailureAndTimeout(t *testing.T) {
	skipWithoutShell(t)
	db := testutil.NewSQLite(t)
	testutil.Enroll(t, db, "alice")
	testutil.Enroll(t, db, "bob")

	res := testutil.Run(t, testutil.Options{}, db.Args("--on-change", "echo from-the-hook; echo oops >&2; exit 3",
		"disable", "--yes", "--reason", "lost phone", "alice")...)
	if res.Code != 0 {
		t.Fatalf("disable with a failing hook: exit %d, want 0 (the change is committed): %s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stdout, "from-the-hook") || strings.Contains(res.Stdout, "oops") {
		t.Errorf("the hook's output reached stdout: %q", res.Stdout)
	}
	if n := strings.Count(res.Stderr, "totpadm: warning: on-change hook"); n != 1 || !strings.Contains(res.Stderr, "failed (exit 3)") {
		t.Errorf("stderr %q: want one warning naming exit 3", res.Stderr)
	}
	if !strings.Contains(res.Stderr, "totpadm: on-change: oops\n") || !strings.Contains(res.Stderr, "totpadm: on-change: from-the-hook\n") {
		t.Errorf("stderr %q: want the hook's output, prefixed", res.Stderr)
	}
	if n := db.Count(t, "totp_credentials", "user_id = ?", "1"); n != 0 {
		t.Errorf("the failing hook undid the disable")
	}
	if got := onChangeAudit(t, db); fmt.Sprint(got) != "[alice failed: exit 3 after disable]" {
		t.Errorf("on-change audit rows %q", got)
	}

	start := time.Now()
	res = testutil.Run(t, testutil.Options{}, db.Args("--on-change", "sleep 60", "--on-change-timeout", "300ms",
		"disable", "--yes", "--reason", "lost phone", "bob")...)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a hanging hook held totpadm %s with a 300ms limit", took)
	}
	if res.Code != 0 {
		t.Fatalf("disable with a hanging hook: exit %d: %s", res.Code, res.Stderr)
	}
	if strings.Count(res.Stderr, "\n") != 1 || !strings.Contains(res.Stderr, "totpadm: warning: on-change hook timed out after 300ms") {
		t.Errorf("stderr %q: want one warning line, timed out", res.Stderr)
	}
	if got := onChangeAudit(t, db); fmt.Sprint(got) != "[bob timed out after disable alice failed: exit 3 after disable]" {
		t.Errorf("on-change audit rows %q", got)
	}

	res = testutil.Run(t, testutil.Options{}, db.Args("--on-change", "true", "--on-change-timeout", "0s", "status")...)
	if res.Code != 2 || !strings.Contains(res.Stderr, "--on-change-timeout must be positive") {
		t.Errorf("--on-change-timeout 0s: exit %d, %q", res.Code, res.Stderr)
	}
}

func TestOnChangeHookOncePerBatch(t *testing.T) {
	skipWithoutShell(t)
	db := testutil.NewSQLite(t)
	const n = 1200
	var logins strings.Builder
	values := make([]string, 0, n)
	for i := range n {
		values = append(values, fmt.Sprintf("('bulk%d')", i))
		fmt.Fprintf(&logins, "bulk%d\n", i)
	}
	db.Exec(t, "INSERT INTO users (username) VALUES "+strings.Join(values, ","))
	dir := t.TempDir()
	runs, events := filepath.Join(dir, "runs"), filepath.Join(dir, "events")
	hook := fmt.Sprintf("cat >> '%s'; echo run >> '%s'", events, runs)
	res := testutil.Run(t, testutil.Options{Stdin: logins.String()},
		db.Args("--on-change", hook, "-o", "json", "enroll", "--no-confirm", "--from-file", "-")...)
	if res.Code != 0 {
		t.Fatalf("bulk enroll: exit %d: %s", res.Code, res.Stderr)
	}
	raw, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if k := strings.Count(string(raw), "run\n"); k < 1 || k > 3 {
		t.Errorf("%d users enrolled in batches of 500 started the hook %d times, want at most 3", n, k)
	}
	if got := hookEvents(t, events); len(got) != n {
		t.Errorf("the hook received %d events for %d users", len(got), n)
	}
}

// TestOnChangeHookEnvironment runs the real binary: the hook inherits
// totpadm's environment, but never the encryption key.
func TestOnChangeHookEnvironment(t *testing.T) {
	skipWithoutShell(t)
	db := testutil.NewSQLite(t)
	key, err := os.ReadFile(db.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	args := []string{"--db", db.Spec, "--actor", "tester", "enroll", "--no-confirm", "alice"}
	res := testutil.Exec(t, dir, "", []string{
		"TOTPADM_KEY=" + strings.TrimSpace(string(key)),
		"TOTPADM_ON_CHANGE=env > '" + envFile + "'",
		"HOOK_TEST_MARKER=present",
	}, args...)
	if res.Code != 0 {
		t.Fatalf("enroll: exit %d: %s", res.Code, res.Stderr)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("the hook (from TOTPADM_ON_CHANGE) did not run: %v", err)
	}
	if !strings.Contains(string(env), "HOOK_TEST_MARKER=present") {
		t.Errorf("the hook lost totpadm's environment: %s", env)
	}
	if strings.Contains(string(env), "TOTPADM_KEY") || strings.Contains(string(env), strings.TrimSpace(string(key))) {
		t.Errorf("the hook inherited the encryption key")
	}
}

// TestOnChangeHookFromConfigFile: on-change and on-change-timeout are
// configuration-file keys like every global flag.
func TestOnChangeHookFromConfigFile(t *testing.T) {
	skipWithoutShell(t)
	db := testutil.NewSQLite(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	conf := filepath.Join(dir, "totpadm.toml")
	content := fmt.Sprintf("on-change = %q\non-change-timeout = \"5s\"\n", "cat >> '"+events+"'")
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Enroll(t, db, "carol", "--config", conf)
	if got := hookEvents(t, events); len(got) != 1 || got[0]["login"] != "carol" {
		t.Errorf("the hook from the configuration file received %v", got)
	}
}

// TestOnChangeHookShownWithoutPasswords: a hook command may hold a
// database URL; config show prints it without the password.
func TestOnChangeHookShownWithoutPasswords(t *testing.T) {
	db := testutil.NewSQLite(t)
	hook := `jq -r .user_id | psql "postgres://app:s3cret@db.internal/app" -c "\copy revoked FROM pstdin"`
	res := testutil.Run(t, testutil.Options{}, db.Args("--on-change", hook, "-o", "json", "config", "show")...)
	if res.Code != 0 {
		t.Fatalf("config show: exit %d: %s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stdout+res.Stderr, "s3cret") {
		t.Errorf("config show printed the password in the hook command: %s", res.Stdout)
	}
	if !strings.Contains(res.Stdout, `"setting":"on-change"`) || !strings.Contains(res.Stdout, "app:xxxxx@db.internal") {
		t.Errorf("config show does not show the hook, redacted: %s", res.Stdout)
	}
}

// TestOnChangeHookWithProgressBar: the hook's lines and its warning go
// through the progress bar's terminal writer, which erases the bar first.
func TestOnChangeHookWithProgressBar(t *testing.T) {
	skipWithoutShell(t)
	db := testutil.NewSQLite(t)
	input := progressUsers(t, db, 2000, 0)
	out := &progressBuffer{} // four hooks of 0.4 s: the bar shows after one second
	code, stderr, took := progressRun(t, db, input, true, out,
		"--on-change", "cat > /dev/null; sleep 0.4; echo from-the-hook; exit 3", "enroll", "--no-confirm", "-o", "json", "--from-file", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, bulkHead(stderr))
	}
	if took < 1200*time.Millisecond {
		t.Skipf("the run took only %v; a progress bar needs more than a second", took)
	}
	if !strings.Contains(stderr, "users/s") {
		t.Skipf("no progress bar was drawn: %q", bulkHead(stderr))
	}
	var hookLines, warnings int
	for _, line := range strings.Split(stderr, "\n") {
		i := strings.Index(line, "totpadm: ")
		if i < 0 {
			continue
		}
		visible := line[strings.LastIndex(line[:i+1], "\r")+1:]
		if !strings.HasPrefix(strings.TrimLeft(visible, " "), "totpadm: ") || strings.ContainsAny(line[i:], "█%") {
			t.Errorf("hook line mixed with the bar: %q", line)
		}
		switch {
		case strings.Contains(line, "totpadm: on-change: from-the-hook"):
			hookLines++
		case strings.Contains(line, "totpadm: warning: on-change hook failed (exit 3)"):
			warnings++
		}
	}
	if hookLines != 4 || warnings != 4 {
		t.Errorf("%d hook lines and %d warnings for 4 batches, want 4 each", hookLines, warnings)
	}
}
