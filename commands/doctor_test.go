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
	Warn   bool   `json:"warning"`
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
			if len(checks) != 9 || !checks["clock"].OK || !checks["database"].OK {
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

// Every check gets its line, also when an earlier one makes it impossible:
// an unreachable database still lets doctor check the key; a broken
// configuration file is reported by doctor, not in place of it.
func TestDoctorOneLinePerCheckWhenEarlyChecksFail(t *testing.T) {
	db := testutil.NewSQLite(t)
	bad := writeFile(t, db.Dir, "bad.toml", "max-failure = 3\n")
	all := []string{"version", "config", "database", "users table", "schema", "audit log", "key", "secrets", "clock"}
	cases := []struct {
		name   string
		args   []string
		failed map[string]string // check → detail substring; the others pass
	}{
		{"unreachable database", []string{"--db", "postgres://admin:s3cret@127.0.0.1:1/app", "--key-file", db.KeyFile},
			map[string]string{"database": "connection refused", "users table": "not checked: no database", "schema": "not checked", "audit log": "not checked",
				"secrets": "not checked", "clock": "not checked"}},
		{"bad configuration file", []string{"--config", bad},
			map[string]string{"config": `unknown setting "max-failure"`, "database": "not checked: the configuration is invalid",
				"users table": "not checked", "schema": "not checked", "audit log": "not checked", "key": "not checked", "secrets": "not checked", "clock": "not checked"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := testutil.Run(t, testutil.Options{}, append(c.args, "-o", "json", "doctor")...)
			if res.Code != 5 || res.Stderr != "" || strings.Contains(res.Stdout, "s3cret") {
				t.Fatalf("exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
			}
			checks := doctorJSON(t, res)
			if len(checks) != len(all) {
				t.Errorf("%d checks reported, want %d: %q", len(checks), len(all), res.Stdout)
			}
			for _, name := range all {
				got, want := checks[name], c.failed[name]
				switch {
				case want == "" && !got.OK:
					t.Errorf("%s failed: %+v", name, got)
				case want != "" && (got.OK || !strings.Contains(got.Detail, want)):
					t.Errorf("%s = %+v, want a failure mentioning %q", name, got, want)
				}
			}
		})
	}
	if _, err := os.Stat("totpadm.db"); err == nil {
		t.Errorf("doctor created the demo database")
	}
}

func rotateKeyPathOnly(t *testing.T, dir, name string) string {
	t.Helper()
	path, _ := rotateNewKeyFile(t, dir, name)
	return path
}

// doctor warns, without failing, when the connected role can rewrite the
// audit log (here the tests' administrator, who owns the tables).
func TestDoctorAuditLogRewritable(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		res := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "doctor")...)
		check := doctorJSON(t, res)["audit log"]
		switch db.Backend {
		case "sqlite":
			if !check.OK || check.Warn || !strings.Contains(check.Detail, "no roles") {
				t.Errorf("SQLite audit log check: %+v", check)
			}
		default:
			if !check.OK || !check.Warn || !strings.Contains(check.Detail, "can rewrite") || !strings.Contains(check.Fix, "grants --role") {
				t.Errorf("owner's audit log check: %+v, want a warning pointing to grants", check)
			}
		}
		if res.Code != 0 {
			t.Errorf("a warning failed doctor: exit %d %s", res.Code, res.Stderr)
		}
	})
}
