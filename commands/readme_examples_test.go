package commands_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// readmeHelperBlock returns the fenced code block that follows marker in
// the README.
func readmeHelperBlock(t *testing.T, marker string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatalf("README has no %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "```")
	_, rest, _ = strings.Cut(rest, "\n") // the fence's language
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// The README's Python and PHP login checks, run as written against a real
// database and the built binary, fail closed: a good code is accepted
// once, and a replay, a wrong code, an unknown user, a missing database
// and a missing binary are refused; exit 3 lets a user in only when the
// application says it knows the user has no 2FA.
func TestREADMELoginExamplesFailClosed(t *testing.T) {
	type lang struct {
		name, interp, marker, driver string
	}
	for _, l := range []lang{
		{"python", "python3", "Python (`subprocess`):", "\nimport sys\nprint(code_ok(sys.argv[1], sys.argv[2], len(sys.argv) > 3))\n"},
		{"php", "php", "PHP (`proc_open`", "\necho totp_code_ok($argv[1], $argv[2], isset($argv[3])) ? 'True' : 'False', \"\\n\";\n"},
	} {
		t.Run(l.name, func(t *testing.T) {
			interp, err := exec.LookPath(l.interp)
			if err != nil {
				t.Skipf("%s not installed", l.interp)
			}
			db := testutil.NewSQLite(t)
			alice := testutil.Enroll(t, db, "alice")
			script := filepath.Join(db.Dir, "check")
			if err := os.WriteFile(script, []byte(readmeHelperBlock(t, l.marker)+l.driver), 0o600); err != nil {
				t.Fatal(err)
			}
			bin := filepath.Dir(testutil.Binary(t))
			run := func(env []string, args ...string) string {
				t.Helper()
				cmd := exec.Command(interp, append([]string{script}, args...)...)
				cmd.Env = append([]string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + db.Dir,
					"TOTPADM_DB=" + db.Spec, "TOTPADM_KEY_FILE=" + db.KeyFile}, env...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s %v: %v: %s", l.interp, args, err, out)
				}
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				return lines[len(lines)-1]
			}
			code := testutil.Code(t, alice.Secret, time.Now())
			for _, c := range []struct {
				what string
				env  []string
				args []string
				want string
			}{
				{"a good code", nil, []string{"1", code}, "True"},
				{"the same code again", nil, []string{"1", code}, "False"},
				{"a wrong code", nil, []string{"1", "000000"}, "False"},
				{"a user not enrolled", nil, []string{"2", "123456"}, "False"},
				{"a user the application knows has no 2FA", nil, []string{"2", "123456", "no-2fa"}, "True"},
				{"an unknown user", nil, []string{"99", "123456"}, "False"},
				{"a missing database", []string{"TOTPADM_DB=" + filepath.Join(db.Dir, "nope.db")}, []string{"1", code}, "False"},
				{"no binary", []string{"PATH=/usr/bin:/bin"}, []string{"1", code}, "False"},
			} {
				if got := run(c.env, c.args...); got != c.want {
					t.Errorf("%s: %s, want %s", c.what, got, c.want)
				}
			}
		})
	}
}
