package commands_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

type doctorCheck struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

func doctorJSON(t *testing.T, res testutil.Result) map[string]doctorCheck {
	t.Helper()
	checks := map[string]doctorCheck{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var c doctorCheck
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("doctor -o json line %q: %v", line, err)
		}
		checks[c.Check] = c
	}
	return checks
}

func TestDoctor(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		testutil.Enroll(t, db, "alice")
		testutil.Enroll(t, db, "bob")

		t.Run("healthy", func(t *testing.T) {
			before := db.Dump(t)
			res := testutil.Run(t, testutil.Options{}, db.Args("doctor")...)
			if res.Code != 0 {
				t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
			}
			lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
			for _, want := range []string{"config", "database", "users table", "schema", "key", "secrets", "clock"} {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, "✓ "+want+":")
				}
				if !found {
					t.Errorf("no ✓ %s line in\n%s", want, res.Stdout)
				}
			}
			if !strings.Contains(res.Stdout, "opened 2 of 2 sampled secrets") {
				t.Errorf("secrets line: %s", res.Stdout)
			}
			if db.Dump(t) != before {
				t.Error("doctor changed the database")
			}
			checks := doctorJSON(t, testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "doctor")...))
			if len(checks) != 7 || !checks["clock"].OK || !checks["database"].OK {
				t.Errorf("json checks: %+v", checks)
			}
		})

		t.Run("wrong key", func(t *testing.T) {
			other := rotateKeyPathOnly(t, db.Dir, "other.key")
			res := testutil.Run(t, testutil.Options{}, "--db", db.Spec, "--key-file", other, "-o", "json", "doctor")
			checks := doctorJSON(t, res)
			if res.Code != 5 || checks["secrets"].OK || !strings.Contains(checks["secrets"].Detail, "opened 0 of 2") || checks["secrets"].Fix == "" {
				t.Fatalf("exit %d, secrets %+v", res.Code, checks["secrets"])
			}
		})

		t.Run("key readable by others", func(t *testing.T) {
			path := rotateKeyPathOnly(t, db.Dir, "loose.key")
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			res := testutil.Run(t, testutil.Options{}, "--db", db.Spec, "--key-file", path, "doctor")
			if res.Code != 5 || !strings.Contains(res.Stdout, "✗ key:") || !strings.Contains(res.Stdout, "chmod 600") {
				t.Fatalf("exit %d\n%s", res.Code, res.Stdout)
			}
		})

		t.Run("wrong users table and missing schema", func(t *testing.T) {
			res := testutil.Run(t, testutil.Options{}, db.Args("--users-table", "accounts", "--table-prefix", "nope_", "doctor")...)
			if res.Code != 5 || !strings.Contains(res.Stdout, "✗ users table:") || !strings.Contains(res.Stdout, "✗ schema:") || !strings.Contains(res.Stdout, "totpadm migrate") {
				t.Fatalf("exit %d\n%s", res.Code, res.Stdout)
			}
		})
	})
}

func TestDoctorUnreachableDatabase(t *testing.T) {
	res := testutil.Run(t, testutil.Options{}, "--db", "postgres://admin:s3cret@127.0.0.1:1/app", "doctor")
	if res.Code != 5 || !strings.Contains(res.Stdout, "✗ database:") || strings.Contains(res.Stdout+res.Stderr, "s3cret") {
		t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

func rotateKeyPathOnly(t *testing.T, dir, name string) string {
	t.Helper()
	path, _ := rotateNewKeyFile(t, dir, name)
	return path
}
