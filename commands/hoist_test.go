package commands_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// hoistLogins runs status -o json and returns the logins it listed.
func hoistLogins(t *testing.T, db *testutil.DB, args ...string) []string {
	t.Helper()
	res := testutil.Run(t, testutil.Options{}, db.Args(append([]string{"-o", "json"}, args...)...)...)
	if res.Code != 0 {
		t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
	}
	var logins []string
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var row struct {
			Login string `json:"login"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("%v: line %q: %v", args, line, err)
		}
		logins = append(logins, row.Login)
	}
	return logins
}

// Everything after "--" is a user, and "--" itself never is: "status
// alice -- -x" used to look up "--" as a login and fail, exit 3.
func TestHoistDoubleDash(t *testing.T) {
	db := testutil.NewSQLite(t)
	db.Exec(t, "INSERT INTO users (username) VALUES ('-x'), ('--summary'), ('-o')")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "alice", "--", "-x"}, "alice,-x"},
		{[]string{"status", "--", "-x", "alice"}, "-x,alice"},
		{[]string{"status", "--", "--summary"}, "--summary"},
		{[]string{"status", "--", "-o"}, "-o"},
		{[]string{"status", "alice", "--"}, "alice"},
		{[]string{"status", "bob", "--state", "disabled", "--", "-x"}, "bob,-x"},
		{[]string{"list", "alice", "--", "-x"}, "alice,-x"},
	} {
		if got := strings.Join(hoistLogins(t, db, tc.args...), ","); got != tc.want {
			t.Errorf("%v listed %s, want %s", tc.args, got, tc.want)
		}
	}
	// "status --" is every user, not a user named "--".
	if got := hoistLogins(t, db, "status", "--"); len(got) != 6 {
		t.Errorf("status -- listed %v, want all 6 users", got)
	}

	// A user that is not there is reported by its own name.
	res := testutil.Run(t, testutil.Options{}, db.Args("status", "alice", "--", "-nobody")...)
	if res.Code != 3 || !strings.Contains(res.Stderr, `"-nobody"`) || strings.Contains(res.Stderr, `"--"`) {
		t.Errorf("exit %d, %q", res.Code, res.Stderr)
	}

	// The same for a command that changes something: --yes after "--" is a
	// login, not the confirmation.
	res = testutil.Run(t, testutil.Options{}, db.Args("disable", "--reason", "test", "alice", "--", "--yes")...)
	if res.Code != 2 || !strings.Contains(res.Stderr, "--yes") {
		t.Errorf("disable … -- --yes: exit %d, %q; want a refusal for want of --yes", res.Code, res.Stderr)
	}
}

// Global flags after a nested command ("config show --db x") reach the
// app, before and after the subcommand.
func TestHoistNestedCommand(t *testing.T) {
	db := testutil.NewSQLite(t)
	for _, args := range [][]string{
		{"config", "show", "--db", db.Spec, "-o", "json"},
		{"config", "--db", db.Spec, "show", "--output=json"},
		{"-o", "json", "config", "show", "--db=" + db.Spec},
	} {
		res := testutil.Run(t, testutil.Options{}, args...)
		if res.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
		}
		want := `{"setting":"db","value":"` + db.Spec + `","source":"flag"}`
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("%v: no %s in\n%s", args, want, res.Stdout)
		}
	}
	if res := testutil.Run(t, testutil.Options{}, "config", "show", "extra", "--db", db.Spec); res.Code != 2 {
		t.Errorf("config show extra: exit %d, want 2: %q", res.Code, res.Stderr)
	}
}
