package commands_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// demoHelperExec runs the built binary in dir with an environment free of
// every TOTPADM_* variable, as on a fresh clone.
func demoHelperExec(t *testing.T, dir string, args ...string) testutil.Result {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t), args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOTPADM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run totpadm: %v", err)
		}
		code = exitErr.ExitCode()
	}
	return testutil.Result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

func demoHelperMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return info.Mode().Perm()
}

func TestDemoDatabase(t *testing.T) {
	dir := t.TempDir()
	res := demoHelperExec(t, dir, "-o", "json", "enroll", "--no-confirm", "alice")
	if res.Code != 0 {
		t.Fatalf("enroll on a fresh directory: exit %d, %q", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "totpadm: created demo database ./totpadm.db") || !strings.Contains(res.Stderr, "./totpadm.key") {
		t.Errorf("stderr does not say the demo database and key were created: %q", res.Stderr)
	}
	if strings.Contains(res.Stdout, "created") {
		t.Errorf("the notice went to stdout: %q", res.Stdout)
	}
	lines := enrollHelperLines(t, res.Stdout)
	if len(lines) != 1 || lines[0]["login"] != "alice" || lines[0]["state"] != "pending" {
		t.Errorf("enroll output %q", res.Stdout)
	}
	for _, name := range []string{"totpadm.db", "totpadm.key"} {
		if m := demoHelperMode(t, filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, m)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.Contains(name, ".tmp"):
			t.Errorf("leftover temporary file %s", name)
		case strings.HasPrefix(name, "totpadm.db"):
			if m := demoHelperMode(t, filepath.Join(dir, name)); m != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", name, m)
			}
		case name != "totpadm.key":
			t.Errorf("unexpected file %s in the working directory", name)
		}
	}
	keyBefore, _ := os.ReadFile(filepath.Join(dir, "totpadm.key"))

	// A second run uses what is there and says nothing about creating it.
	res = demoHelperExec(t, dir, "-o", "json", "status")
	if res.Code != 0 {
		t.Fatalf("status: exit %d, %q", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stderr, "created") {
		t.Errorf("second run says it created something: %q", res.Stderr)
	}
	rows := enrollHelperLines(t, res.Stdout)
	want := []struct{ login, email, state string }{
		{"alice", "alice@example.com", "pending"},
		{"bob", "bob@example.com", "disabled"},
		{"carol", "carol@example.com", "disabled"},
	}
	if len(rows) != len(want) {
		t.Fatalf("status lists %d users, want 3: %s", len(rows), res.Stdout)
	}
	for i, w := range want {
		if rows[i]["login"] != w.login || rows[i]["email"] != w.email || rows[i]["state"] != w.state {
			t.Errorf("status row %d: %v, want %+v", i, rows[i], w)
		}
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(dir, "totpadm.key")); !bytes.Equal(keyAfter, keyBefore) {
		t.Errorf("the demo key file changed on a second run")
	}

	// The demo key decrypts the demo secret: verify works end to end.
	secret := lines[0]["secret"].(string)
	code := testutil.Code(t, secret, time.Now())
	if res := demoHelperExec(t, dir, "verify", "alice", code); res.Code != 0 {
		t.Errorf("verify on the demo database: exit %d, %q", res.Code, res.Stderr)
	}
	// Table output of status names all three users.
	res = demoHelperExec(t, dir, "status")
	for _, login := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(res.Stdout, login) {
			t.Errorf("status table lacks %s:\n%s", login, res.Stdout)
		}
	}
}

func TestDemoMissingDBPath(t *testing.T) {
	dir := t.TempDir()
	for _, spec := range []string{"./missing.db", "missing.db", "sqlite:missing.db", filepath.Join(dir, "missing.db")} {
		res := demoHelperExec(t, dir, "--db", spec, "status")
		if res.Code != 5 {
			t.Errorf("--db %s: exit %d, want 5; %q", spec, res.Code, res.Stderr)
		}
		enrollHelperOneErrorLine(t, res.Stderr)
		if !strings.Contains(res.Stderr, "missing.db") {
			t.Errorf("--db %s: stderr %q does not name the path", spec, res.Stderr)
		}
		if strings.Contains(res.Stderr, "created") {
			t.Errorf("--db %s: stderr %q", spec, res.Stderr)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("--db %s created %v", spec, names)
		}
	}
	// Not for commands that write, either.
	if res := demoHelperExec(t, dir, "--db", "./missing.db", "enroll", "--no-confirm", "alice"); res.Code != 5 {
		t.Errorf("enroll --db ./missing.db: exit %d, want 5", res.Code)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Errorf("enroll created missing.db")
	}
}

func TestDemoConcurrentFirstRuns(t *testing.T) {
	dir := t.TempDir()
	const n = 4
	results := make([]testutil.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = demoHelperExec(t, dir, "-o", "json", "status")
		}()
	}
	wg.Wait()
	created := 0
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("run %d: exit %d, %q", i, r.Code, r.Stderr)
			continue
		}
		if len(enrollHelperLines(t, r.Stdout)) != 3 {
			t.Errorf("run %d listed %q", i, r.Stdout)
		}
		if strings.Contains(r.Stderr, "created demo database") {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d runs say they created the demo database, want exactly 1", created)
	}
}

func TestDemoPasswordRedacted(t *testing.T) {
	const pw = "s3cretPW"
	tests := []struct {
		name string
		db   string
		code int
	}{
		{"in the user info", "postgres://user:" + pw + "@127.0.0.1:1/x", 5},
		{"postgresql scheme", "postgresql://user:" + pw + "@127.0.0.1:1/x?sslmode=disable", 5},
		{"in a password parameter", "postgres://user@127.0.0.1:1/x?password=" + pw, 5},
		{"URL-escaped characters", "postgres://user:" + pw + "%21@127.0.0.1:1/x", 5},
		{"no host", "postgres://user:" + pw + "@/x", 2},
		{"unparseable", "postgres://user:" + pw + "@127.0.0.1:port/x", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, args := range [][]string{
				{"--db", tc.db, "status"},
				{"--db", tc.db, "--key-file", "/nonexistent", "enroll", "--no-confirm", "alice"},
				{"--db", tc.db, "verify", "alice", "123456"},
			} {
				res := testutil.Run(t, testutil.Options{}, args...)
				if res.Code != tc.code {
					t.Errorf("%v: exit %d, want %d; %q", args[2:], res.Code, tc.code, res.Stderr)
				}
				enrollHelperOneErrorLine(t, res.Stderr)
				if strings.Contains(res.Stderr, pw) || strings.Contains(res.Stdout, pw) {
					t.Errorf("%v: the password is printed: stdout %q stderr %q", args[2:], res.Stdout, res.Stderr)
				}
			}
		})
	}
	// Through TOTPADM_DB and the real binary as well.
	cmd := exec.Command(testutil.Binary(t), "status")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TOTPADM_DB=postgres://user:"+pw+"@127.0.0.1:1/x")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() != 5 {
		t.Errorf("binary with TOTPADM_DB: %v, want exit 5", err)
	}
	enrollHelperOneErrorLine(t, errOut.String())
	if strings.Contains(errOut.String(), pw) || strings.Contains(out.String(), pw) {
		t.Errorf("binary prints the password: %q", errOut.String())
	}
}
