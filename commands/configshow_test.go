package commands_test

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// Precedence flag > env > file > default, as config show reports it and as
// the commands obey it.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "totpadm.toml")
	if err := os.WriteFile(file, []byte("issuer = \"FromFile\"\nmax-failures = 7\nskew = 3\noutput = \"json\"\ndb = \"postgres://u:filepw@db.internal/app\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOTPADM_MAX_FAILURES": "8", "TOTPADM_SKEW": "2", "TOTPADM_OUTPUT": "csv"}
	res := testutil.Run(t, testutil.Options{Env: env}, "--config", file, "--skew", "1", "config", "show")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(res.Stdout)).ReadAll()
	if err != nil {
		t.Fatalf("csv %q: %v", res.Stdout, err)
	}
	got := map[string][2]string{}
	for _, r := range rows[1:] {
		got[r[0]] = [2]string{r[1], r[2]}
	}
	want := map[string][2]string{
		"skew":             {"1", "flag"},
		"max-failures":     {"8", "env TOTPADM_MAX_FAILURES"},
		"issuer":           {"FromFile", "file " + file},
		"output":           {"csv", "env TOTPADM_OUTPUT"},
		"lockout-duration": {"15m0s", "default"},
		"db":               {"postgres://u:xxxxx@db.internal/app", "file " + file},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if strings.Contains(res.Stdout+res.Stderr, "filepw") {
		t.Error("config show printed the database password")
	}
}

// The file's values really reach the commands, below env and flags.
func TestConfigFileApplies(t *testing.T) {
	db := testutil.NewSQLite(t)
	file := filepath.Join(db.Dir, "cfg.yaml")
	content := "db: " + db.Spec + "\nkey-file: " + db.KeyFile + "\noutput: csv\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res := testutil.Run(t, testutil.Options{}, "--config", file, "status", "alice")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "id,login,email,state") {
		t.Fatalf("yaml config not applied: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	res = testutil.Run(t, testutil.Options{}, "--config", file, "-o", "json", "status", "alice")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "{") {
		t.Fatalf("flag did not beat the file: %q", res.Stdout)
	}
	for _, bad := range []string{filepath.Join(db.Dir, "missing.toml"), writeFile(t, db.Dir, "bad.toml", "output = [\n")} {
		res := testutil.Run(t, testutil.Options{}, "--config", bad, "status")
		if res.Code != 5 || strings.Count(res.Stderr, "\n") != 1 || !strings.HasPrefix(res.Stderr, "totpadm: configuration") {
			t.Errorf("--config %s: exit %d, stderr %q", filepath.Base(bad), res.Code, res.Stderr)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A --db value holding a password never reaches stdout or stderr: not
// through config show (which used to print an unparseable value as given),
// and not through the errors of status and doctor (which used to say
// "open bob:pw@tcp(…)/app: no such file" of a go-sql-driver DSN taken for
// a SQLite path). SPEC §2: database passwords are redacted from every
// message.
func TestConfigShowDBPasswordHidden(t *testing.T) {
	for _, tc := range []struct {
		name, db string
		never    []string // pieces of the password
		shown    string   // config show's value, "" = the "(invalid; hidden: …)" placeholder
		code     int      // exit status of status and of doctor
	}{
		{name: "postgres a slash short", db: "postgres:/bob:S3cretPW@h/app", never: []string{"S3cretPW"}, code: 2},
		{name: "bad percent-escape", db: "postgres://bob:S3cr%zzPW@h/app", never: []string{"S3cr", "zzPW"}, code: 2},
		{name: "mysql no slashes", db: "mysql:bob:S3cretPW@tcp(h)/app", never: []string{"S3cretPW"}, code: 2},
		{name: "unknown scheme", db: "pgsql://bob:S3cretPW@h/app", never: []string{"S3cretPW"}, code: 2},
		{name: "quoted keyword value with a blank", db: "host=x password='S3cret PW'", never: []string{"S3cret", "cret PW"}, code: 2},
		{name: "go-sql-driver tcp", db: "bob:S3cretPW@tcp(127.0.0.1:3306)/app", never: []string{"S3cretPW"}, code: 2},
		{name: "go-sql-driver unix", db: "bob:S3cretPW@unix(/run/mysqld/mysqld.sock)/app", never: []string{"S3cretPW"}, code: 2},
		{name: "schemeless user info", db: "bob:S3cretPW@db.internal/app", never: []string{"S3cretPW"}, code: 2},
		{name: "password with a blank, schemeless", db: "bob:S3cret PW@tcp(h)/app", never: []string{"S3cret"}, code: 2},
		{name: "sqlite: prefix", db: "sqlite:bob:S3cretPW@tcp(h)/app", never: []string{"S3cretPW"}, code: 2},
		// Written as a path it is one (and missing): exit 5, name redacted.
		{name: "DSN-shaped path", db: "./bob:S3cret PW@tcp(h)/app", never: []string{"S3cret"}, shown: "./bob:xxxxx@tcp(h)/app", code: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(t *testing.T, what string, res testutil.Result, code int) {
				t.Helper()
				if res.Code != code {
					t.Errorf("%s: exit %d, want %d; stderr %q", what, res.Code, code, res.Stderr)
				}
				for _, s := range tc.never {
					if strings.Contains(res.Stdout+res.Stderr, s) {
						t.Errorf("%s prints the password (%q): stdout %q, stderr %q", what, s, res.Stdout, res.Stderr)
					}
				}
			}
			// config show, in each output format.
			for _, format := range []string{"table", "csv", "json"} {
				res := testutil.Run(t, testutil.Options{}, "--db", tc.db, "-o", format, "config", "show")
				check(t, "config show -o "+format, res, 0)
				if format != "csv" {
					continue
				}
				rows, err := csv.NewReader(strings.NewReader(res.Stdout)).ReadAll()
				if err != nil {
					t.Fatalf("csv %q: %v", res.Stdout, err)
				}
				for _, r := range rows {
					if r[0] != "db" {
						continue
					}
					if tc.shown != "" && r[1] != tc.shown {
						t.Errorf("config show: db = %q, want %q", r[1], tc.shown)
					}
					if tc.shown == "" && !strings.HasPrefix(r[1], "(invalid; hidden: ") {
						t.Errorf("config show: db = %q, want the (invalid; hidden: …) placeholder", r[1])
					}
				}
			}
			// The commands that open the database, and doctor's report.
			res := testutil.Run(t, testutil.Options{}, "--db", tc.db, "status")
			check(t, "status", res, tc.code)
			if strings.Count(res.Stderr, "\n") != 1 || !strings.HasPrefix(res.Stderr, "totpadm: ") {
				t.Errorf("status: stderr is not one \"totpadm: \" line: %q", res.Stderr)
			}
			if tc.code == 2 && !strings.Contains(res.Stderr, "invalid --db") {
				t.Errorf("status: stderr %q does not say the --db value is invalid", res.Stderr)
			}
			check(t, "verify", testutil.Run(t, testutil.Options{}, "--db", tc.db, "verify", "alice", "123456"), tc.code)
			// doctor reports the failed check and exits 5, as for any.
			check(t, "doctor", testutil.Run(t, testutil.Options{}, "--db", tc.db, "doctor"), 5)
			check(t, "doctor -o json", testutil.Run(t, testutil.Options{}, "--db", tc.db, "-o", "json", "doctor"), 5)
		})
	}
}

// A go-sql-driver DSN is refused with a usage error that says how to
// write it, and the same value from TOTPADM_DB or a configuration file
// is hidden as well.
func TestConfigShowDBFromEnvAndFileHidden(t *testing.T) {
	const dsn = "bob:S3cretPW@tcp(127.0.0.1:3306)/app"
	res := testutil.Run(t, testutil.Options{}, "--db", dsn, "status")
	if res.Code != 2 || !strings.Contains(res.Stderr, "mysql://user:") || !strings.Contains(res.Stderr, "@host:3306/dbname") {
		t.Errorf("go-sql-driver DSN: exit %d, stderr %q; want exit 2 and the mysql:// form", res.Code, res.Stderr)
	}

	dir := t.TempDir()
	file := writeFile(t, dir, "totpadm.toml", "db = \"host=x password='S3cret PW'\"\n")
	res = testutil.Run(t, testutil.Options{}, "--config", file, "config", "show")
	if res.Code != 0 || strings.Contains(res.Stdout+res.Stderr, "S3cret") || !strings.Contains(res.Stdout, "(invalid; hidden") {
		t.Errorf("db from a file: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	for _, args := range [][]string{{"config", "show"}, {"status"}, {"-o", "json", "doctor"}} {
		res := testutil.Run(t, testutil.Options{Env: map[string]string{"TOTPADM_DB": dsn}}, args...)
		if strings.Contains(res.Stdout+res.Stderr, "S3cretPW") {
			t.Errorf("TOTPADM_DB, %v: the password is printed: stdout %q, stderr %q", args, res.Stdout, res.Stderr)
		}
	}
}

// Without --db, config show says what a command would really use: the demo
// database, the key file beside it and its users table's email column.
func TestConfigShowDemoDefaults(t *testing.T) {
	res := testutil.Run(t, testutil.Options{}, "-o", "csv", "config", "show")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(res.Stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows[1:] {
		got[r[0]] = r[1]
	}
	for k, want := range map[string]string{"db": "./totpadm.db", "key-file": "./totpadm.key", "user-email-column": "email"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if _, err := os.Stat("totpadm.db"); err == nil {
		t.Errorf("config show created the demo database")
	}
	// An empty TOTPADM_DB is a --db the commands refuse ("empty"), not the
	// demo database: config show says what they do.
	emptyDB := testutil.Options{Env: map[string]string{"TOTPADM_DB": ""}}
	res = testutil.Run(t, emptyDB, "-o", "csv", "config", "show")
	if strings.Contains(res.Stdout, "./totpadm.db") {
		t.Errorf("with TOTPADM_DB empty, config show claims the demo database:\n%s", res.Stdout)
	}
	// An empty variable is the environment's fault: exit 5, as for every
	// setting that comes from there.
	if res = testutil.Run(t, emptyDB, "status"); res.Code != 5 || !strings.Contains(res.Stderr, "TOTPADM_DB") || !strings.Contains(res.Stderr, "empty") {
		t.Errorf("status with TOTPADM_DB empty: exit %d, %q", res.Code, res.Stderr)
	}
}

// config show shows the busy timeout in force — SQLite's whole
// milliseconds — and a value no command accepts (--busy-timeout 0s used to
// be a silent 10 s) marked as refused, then exits as the commands do: 2
// for a flag, 5 for the environment or the file.
func TestConfigShowBusyTimeoutInForce(t *testing.T) {
	db := testutil.NewSQLite(t)
	busy := func(t *testing.T, stdout string) string {
		t.Helper()
		for _, r := range statusCSV(t, stdout)[1:] {
			if r[0] == "busy-timeout" {
				return strings.TrimPrefix(r[1], "'") // CSV's spreadsheet guard
			}
		}
		t.Fatalf("no busy-timeout row: %q", stdout)
		return ""
	}
	file := writeFile(t, db.Dir, "busy.toml", "busy-timeout = \"-1s\"\n")
	for _, c := range []struct {
		name  string
		env   string
		args  []string
		shown string
		code  int
	}{
		{"default", "", nil, "10s", 0},
		{"flag", "", []string{"--busy-timeout", "250ms"}, "250ms", 0},
		{"sub-millisecond part dropped", "", []string{"--busy-timeout", "1500us"}, "1ms", 0},
		{"zero typed", "", []string{"--busy-timeout", "0s"}, "0s (invalid, refused: --busy-timeout must be at least 1ms, got 0s)", 2},
		{"zero from the environment", "0s", nil, "0s (invalid, refused: --busy-timeout must be at least 1ms, got 0s)", 5},
		{"negative from the file", "", []string{"--config", file}, "-1s (invalid, refused: --busy-timeout must be at least 1ms, got -1s)", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := testutil.Options{}
			if c.env != "" {
				opt.Env = map[string]string{"TOTPADM_BUSY_TIMEOUT": c.env}
			}
			args := append(append([]string{"--db", db.Spec}, c.args...), "-o", "csv", "config", "show")
			res := testutil.Run(t, opt, args...)
			if res.Code != c.code || busy(t, res.Stdout) != c.shown {
				t.Fatalf("exit %d, busy-timeout %q; want exit %d and %q (stderr %q)", res.Code, busy(t, res.Stdout), c.code, c.shown, res.Stderr)
			}
			if c.code != 0 {
				enrollHelperOneErrorLine(t, res.Stderr)
			}
			status := testutil.Run(t, opt, append(append([]string{"--db", db.Spec}, c.args...), "status")...)
			if status.Code != c.code {
				t.Errorf("status: exit %d, want %d as config show (stderr %q)", status.Code, c.code, status.Stderr)
			}
		})
	}
}
