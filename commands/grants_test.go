package commands_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// grantsRole is a login role (PostgreSQL) or account (MySQL/MariaDB)
// created for one test, with no privileges, and dropped when it ends.
type grantsRole struct {
	flag string // what --role takes
	spec string // the test database's --db URL, logging in as the role
}

// newGrantsRole creates a role named prefix plus random hex. On MySQL the
// account is name@host; onHost "" means --role name (name@%).
func newGrantsRole(t *testing.T, db *testutil.DB, prefix, onHost string) grantsRole {
	t.Helper()
	name := prefix + grantsHex(t)
	admin := db.Gorm
	switch db.Backend {
	case "postgres":
		q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		if err := admin.Exec("CREATE ROLE " + q + " LOGIN").Error; err != nil {
			t.Fatalf("create role: %v", err)
		}
		t.Cleanup(func() {
			// DROP OWNED BY revokes its privileges, so the role can go.
			admin.Exec("DROP OWNED BY " + q)
			admin.Exec("DROP ROLE " + q)
		})
	case "mysql":
		host := onHost
		if host == "" {
			host = "%"
		}
		account := "'" + name + "'@'" + host + "'"
		if err := admin.Exec("CREATE USER " + account).Error; err != nil {
			t.Fatalf("create user: %v", err)
		}
		t.Cleanup(func() { admin.Exec("DROP USER " + account) })
	default:
		t.Fatalf("no roles on %s", db.Backend)
	}
	u, err := url.Parse(db.Spec)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(name)
	flag := name
	if onHost != "" && db.Backend == "mysql" {
		flag = name + "@" + onHost
	}
	return grantsRole{flag: flag, spec: u.String()}
}

func grantsHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// grantsSQL runs `grants` as the administrator and returns its statements
// as -o json printed them, after checking that the table output is the
// same statements, each ended by a semicolon.
func grantsSQL(t *testing.T, db *testutil.DB, args ...string) (string, []string) {
	t.Helper()
	res := testutil.Run(t, testutil.Options{}, db.Args(append([]string{"-o", "json", "grants"}, args...)...)...)
	if res.Code != 0 {
		t.Fatalf("grants %v: exit %d: %s", args, res.Code, res.Stderr)
	}
	var dialect string
	var stmts []string
	for _, line := range strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n") {
		var obj map[string]string
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("grants -o json: line %q: %v", line, err)
		}
		if len(obj) != 2 || obj["statement"] == "" {
			t.Fatalf("grants -o json: line %q: want dialect and statement", line)
		}
		dialect = obj["dialect"]
		stmts = append(stmts, obj["statement"])
	}
	table := testutil.Run(t, testutil.Options{}, db.Args(append([]string{"grants"}, args...)...)...)
	if want := strings.Join(stmts, ";\n") + ";\n"; table.Code != 0 || table.Stdout != want {
		t.Fatalf("grants (table): exit %d, printed\n%s\nwant\n%s", table.Code, table.Stdout, want)
	}
	return dialect, stmts
}

// runSQL executes exactly the statements, in order, as the administrator,
// on one connection (the MySQL statements set a session variable).
func runSQL(t *testing.T, db *gorm.DB, stmts []string) error {
	t.Helper()
	return db.Connection(func(conn *gorm.DB) error {
		for _, s := range stmts {
			if err := conn.Exec(s).Error; err != nil {
				return errors.New(s + ": " + err.Error())
			}
		}
		return nil
	})
}

func openAs(t *testing.T, spec string) *gorm.DB {
	t.Helper()
	target, err := config.ParseTarget(spec)
	if err != nil {
		t.Fatal(err)
	}
	db, err := config.Open(context.Background(), target, config.OpenOptions{})
	if err != nil {
		t.Fatalf("connect as the role: %v", err)
	}
	t.Cleanup(func() { config.Close(db) })
	return db
}

// denied reports a refusal for want of a privilege, as opposed to any
// other failure (a typo in the test's SQL must not pass for a refusal).
func denied(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "42501" // insufficient_privilege
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1142, 1143: // table or column access denied
			return true
		}
	}
	return false
}

func grantsBackends(t *testing.T, fn func(t *testing.T, newDB func(*testing.T) *testutil.DB)) {
	t.Run("postgres", func(t *testing.T) { fn(t, testutil.NewPostgres) })
	t.Run("mysql", func(t *testing.T) { fn(t, testutil.NewMySQL) })
}

// TestGrantsRoleRunsTotpadm: a fresh role given exactly what `grants`
// printed runs enroll, verify, status, backup-codes, unlock, disable and
// audit, can append to the audit log and read it
// but never change or delete a row of it, never writes the users table
// and never reads a users-table column that is not mapped; with
// --read-only it runs status and audit, and enroll fails with exit 5 and
// changes nothing.
func TestGrantsRoleRunsTotpadm(t *testing.T) {
	grantsBackends(t, func(t *testing.T, newDB func(*testing.T) *testutil.DB) {
		for _, tc := range []struct {
			name     string
			readOnly bool
			onHost   string // MySQL: --role name@host rather than name
		}{
			{name: "read-write"},
			{name: "read-only", readOnly: true, onHost: "127.0.0.1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				db := newDB(t)
				db.Exec(t, "ALTER TABLE users ADD COLUMN password_hash VARCHAR(100)")
				db.Exec(t, "UPDATE users SET password_hash = 'a password hash'")
				role := newGrantsRole(t, db, "totpadm_grants_", tc.onHost)
				mapping := []string{"--user-email-column", "email"}
				args := append(mapping, "--role", role.flag)
				if tc.readOnly {
					args = append(args, "--read-only")
				}
				before := db.Dump(t)
				dialect, stmts := grantsSQL(t, db, args...)
				if dialect != db.Backend {
					t.Errorf("dialect %q, want %q", dialect, db.Backend)
				}
				if after := db.Dump(t); after != before {
					t.Fatalf("grants changed the database:\n%s\n---\n%s", before, after)
				}
				if err := runSQL(t, db.Gorm, stmts); err != nil {
					t.Fatalf("run the printed SQL as the administrator: %v", err)
				}

				as := func(args ...string) testutil.Result {
					t.Helper()
					full := append([]string{"--db", role.spec, "--key-file", db.KeyFile, "--actor", "tester"}, mapping...)
					return testutil.Run(t, testutil.Options{}, append(full, args...)...)
				}
				must := func(want int, args ...string) testutil.Result {
					t.Helper()
					res := as(args...)
					if res.Code != want {
						t.Fatalf("as the role: %v: exit %d, want %d: %s", args, res.Code, want, res.Stderr)
					}
					return res
				}
				roleDB := openAs(t, role.spec)

				if tc.readOnly {
					before := db.Dump(t)
					if res := must(0, "status"); !strings.Contains(res.Stdout, "alice@example.com") {
						t.Errorf("status: %q", res.Stdout)
					}
					must(0, "audit")
					must(0, "status", "--summary")
					must(5, "enroll", "--no-confirm", "bob")
					if after := db.Dump(t); after != before {
						t.Fatalf("a refused write changed the database:\n%s\n---\n%s", before, after)
					}
					err := roleDB.Exec("INSERT INTO totp_audit_log (at, actor, host, action, outcome) VALUES (CURRENT_TIMESTAMP, 'x', 'x', 'x', 'x')").Error
					if !denied(err) {
						t.Errorf("read-only role: INSERT into the audit log: %v, want a refusal", err)
					}
				} else {
					res := must(0, "-o", "json", "enroll", "--no-confirm", "alice")
					var e testutil.Enrolled
					if err := json.Unmarshal([]byte(strings.TrimSpace(res.Stdout)), &e); err != nil {
						t.Fatalf("enroll: %q: %v", res.Stdout, err)
					}
					now := time.Now()
					must(0, "verify", "alice", testutil.Code(t, e.Secret, now))
					if res := must(0, "status", "alice"); !strings.Contains(res.Stdout, "enabled") {
						t.Errorf("status: %q", res.Stdout)
					}
					must(0, "backup-codes", "alice")
					must(1, "--max-failures", "1", "verify", "alice", testutil.Code(t, e.Secret, now.Add(10*time.Minute)))
					if res := must(0, "status", "--state", "locked"); !strings.Contains(res.Stdout, "alice") {
						t.Errorf("status --state locked: %q", res.Stdout)
					}
					must(0, "unlock", "alice")
					must(0, "disable", "--yes", "--reason", "grants test", "alice")
					if res := must(0, "audit", "alice"); !strings.Contains(res.Stdout, "grants test") {
						t.Errorf("audit: %q", res.Stdout)
					}
					if n := db.Count(t, "totp_audit_log", "actor = ?", "tester"); n < 6 {
						t.Errorf("%d audit rows written by the role, want at least 6", n)
					}
				}

				var rows int64
				if err := roleDB.Raw("SELECT COUNT(*) FROM users WHERE email IS NOT NULL AND username IS NOT NULL AND id > 0").Scan(&rows).Error; err != nil || rows != 3 {
					t.Errorf("the role reads the mapped columns: %d rows, %v", rows, err)
				}
				auditRows := db.Count(t, "totp_audit_log", "")
				for _, stmt := range []string{
					"UPDATE totp_audit_log SET reason = 'rewritten'",
					"UPDATE totp_audit_log SET id = id + 1000",
					"DELETE FROM totp_audit_log",
					"TRUNCATE TABLE totp_audit_log",
					"INSERT INTO users (username) VALUES ('mallory')",
					"UPDATE users SET username = 'mallory' WHERE id = 1",
					"UPDATE users SET password_hash = 'x'",
					"DELETE FROM users",
					"SELECT password_hash FROM users",
					"SELECT * FROM users",
				} {
					if err := roleDB.Exec(stmt).Error; !denied(err) {
						t.Errorf("as the role: %s: %v, want a refusal for want of a privilege", stmt, err)
					}
				}
				if n := db.Count(t, "totp_audit_log", ""); n != auditRows {
					t.Errorf("audit log has %d rows after the refused statements, had %d", n, auditRows)
				}
				if n := db.Count(t, "users", "password_hash = 'a password hash' AND username IN ('alice', 'bob', 'carol')"); n != 3 {
					t.Errorf("users table changed: %d original rows left", n)
				}
				if can, err := models.CanRewriteAuditLog(context.Background(), roleDB, models.Tables{AuditLog: "totp_audit_log"}); err != nil || can {
					t.Errorf("CanRewriteAuditLog as the role = %v, %v; want false", can, err)
				}
			})
		}
	})
}

// TestGrantsQuotesNames: odd names — a table prefix, a users table in
// another schema (PostgreSQL) or database (MySQL), quote characters and
// spaces in table, column and role names — come out quoted so that the
// SQL runs and the role can then run status through the same mapping.
func TestGrantsQuotesNames(t *testing.T) {
	grantsBackends(t, func(t *testing.T, newDB func(*testing.T) *testutil.DB) {
		db := newDB(t)
		var schema, usersTable, idCol, loginCol, create string
		switch db.Backend {
		case "postgres":
			schema = "totpadm grants \"app\" " + grantsHex(t)
			qs := `"` + strings.ReplaceAll(schema, `"`, `""`) + `"`
			db.Exec(t, "CREATE SCHEMA "+qs)
			t.Cleanup(func() { db.Gorm.Exec("DROP SCHEMA " + qs + " CASCADE") })
			usersTable, idCol, loginCol = schema+`.app "users"`, `user"id`, "log in"
			create = `CREATE TABLE ` + qs + `."app ""users""" ("user""id" INTEGER PRIMARY KEY, "log in" TEXT, secret TEXT)`
		case "mysql":
			schema = "totpadm_grants_app_" + grantsHex(t)
			db.Exec(t, "CREATE DATABASE "+schema)
			t.Cleanup(func() { db.Gorm.Exec("DROP DATABASE " + schema) })
			usersTable, idCol, loginCol = schema+".app `users`", "user`id", "log in"
			create = "CREATE TABLE " + schema + ".`app ``users``` (`user``id` INTEGER PRIMARY KEY, `log in` TEXT, secret TEXT)"
		}
		db.Exec(t, create)
		mapping := []string{"--table-prefix", "g_", "--users-table", usersTable, "--user-id-column", idCol, "--user-login-column", loginCol}
		if res := testutil.Run(t, testutil.Options{}, db.Args(append(mapping, "migrate")...)...); res.Code != 0 {
			t.Fatalf("migrate: exit %d: %s", res.Code, res.Stderr)
		}
		prefix := `totpadm "grants" `
		if db.Backend == "mysql" {
			prefix = "totpadm-grants.x "
		}
		role := newGrantsRole(t, db, prefix, "")
		_, stmts := grantsSQL(t, db, append(mapping, "--role", role.flag)...)
		if err := runSQL(t, db.Gorm, stmts); err != nil {
			t.Fatalf("run the printed SQL: %v", err)
		}
		res := testutil.Run(t, testutil.Options{}, append([]string{"--db", role.spec, "--key-file", db.KeyFile}, append(mapping, "status", "--summary")...)...)
		if res.Code != 0 {
			t.Fatalf("status as the role: exit %d: %s\nSQL:\n%s", res.Code, res.Stderr, strings.Join(stmts, "\n"))
		}
		roleDB := openAs(t, role.spec)
		var q string
		if db.Backend == "postgres" {
			q = `SELECT secret FROM "` + strings.ReplaceAll(schema, `"`, `""`) + `"."app ""users"""`
		} else {
			q = "SELECT secret FROM " + schema + ".`app ``users```"
		}
		if err := roleDB.Exec(q).Error; !denied(err) {
			t.Errorf("as the role: %s: %v, want a refusal", q, err)
		}
	})
}

// TestGrantsNeverCreatesARole: the SQL for a role that does not exist
// fails, and leaves no such role behind — on MariaDB also when the
// session's sql_mode would let GRANT create a password-less account.
func TestGrantsNeverCreatesARole(t *testing.T) {
	grantsBackends(t, func(t *testing.T, newDB func(*testing.T) *testutil.DB) {
		db := newDB(t)
		name := "totpadm_grants_nobody_" + grantsHex(t)
		_, stmts := grantsSQL(t, db, "--role", name)
		count := "SELECT COUNT(*) FROM pg_roles WHERE rolname = ?"
		if db.Backend == "mysql" {
			count = "SELECT COUNT(*) FROM mysql.user WHERE User = ?"
			stmts = append([]string{"SET SESSION sql_mode = ''"}, stmts...)
			t.Cleanup(func() { db.Gorm.Exec("DROP USER IF EXISTS '" + name + "'@'%'") })
		}
		if err := runSQL(t, db.Gorm, stmts); err == nil {
			t.Errorf("the SQL for a role that does not exist ran without error")
		}
		var n int
		if err := db.Gorm.Raw(count, name).Scan(&n).Error; err != nil || n != 0 {
			t.Errorf("role %s exists after the SQL ran (%d, %v)", name, n, err)
		}
	})
}

// TestGrantsRefusesUnlimitableRoles: for a role that no GRANT can limit —
// the administrator itself, the owner of the audit log, an account with
// database-wide DELETE — grants prints nothing and exits 5.
func TestGrantsRefusesUnlimitableRoles(t *testing.T) {
	grantsBackends(t, func(t *testing.T, newDB func(*testing.T) *testutil.DB) {
		db := newDB(t)
		var self string
		switch db.Backend {
		case "postgres":
			db.Gorm.Raw("SELECT current_user").Scan(&self)
		case "mysql":
			db.Gorm.Raw("SELECT CURRENT_USER()").Scan(&self)
		}
		owner := newGrantsRole(t, db, "totpadm_grants_owner_", "")
		powerful := newGrantsRole(t, db, "totpadm_grants_member_", "")
		switch db.Backend {
		case "postgres":
			db.Exec(t, `ALTER TABLE totp_audit_log OWNER TO "`+owner.flag+`"`)
			db.Exec(t, `GRANT "`+owner.flag+`" TO "`+powerful.flag+`"`)
		case "mysql":
			var database string
			db.Gorm.Raw("SELECT DATABASE()").Scan(&database)
			db.Exec(t, "GRANT DELETE ON "+database+".* TO '"+owner.flag+"'@'%'")
			db.Exec(t, "GRANT ALTER ON *.* TO '"+powerful.flag+"'@'%'")
		}
		for _, role := range []string{self, owner.flag, powerful.flag} {
			before := db.Dump(t)
			res := testutil.Run(t, testutil.Options{}, db.Args("grants", "--role", role)...)
			if res.Code != 5 || res.Stdout != "" || !strings.Contains(res.Stderr, "no GRANT can limit") || strings.Count(res.Stderr, "\n") != 1 {
				t.Errorf("grants --role %s: exit %d, stdout %q, stderr %q; want exit 5, one line, no SQL", role, res.Code, res.Stdout, res.Stderr)
			}
			if after := db.Dump(t); after != before {
				t.Errorf("grants --role %s changed the database", role)
			}
		}
	})
}

// TestGrantsBadInput: every bad invocation gets one totpadm: line, exit 2,
// nothing on stdout, and the database unchanged; SQLite, which has no
// roles, is answered the same way.
func TestGrantsBadInput(t *testing.T) {
	all := []string{"sqlite", "postgres", "mysql"}
	cases := []struct {
		name     string
		args     []string
		backends []string
		want     string // in the error line
	}{
		{"no role", []string{"grants"}, all, "--role is required"},
		{"empty role", []string{"grants", "--role", ""}, all, "must not be empty"},
		{"blank role", []string{"grants", "--role", "  "}, all, "must not be empty"},
		{"NUL in role", []string{"grants", "--role", "app\x00x"}, all, "control character"},
		{"newline in role", []string{"grants", "--role", "app\nGRANT ALL"}, all, "control character"},
		{"invalid UTF-8", []string{"grants", "--role", "app\xff"}, all, "UTF-8"},
		{"unknown flag", []string{"grants", "--role", "app", "--bogus"}, all, "bogus"},
		{"argument", []string{"grants", "--role", "app", "extra"}, all, "takes no arguments"},
		{"bad output", []string{"-o", "xml", "grants", "--role", "app"}, all, "--output"},
		{"sqlite", []string{"grants", "--role", "app"}, []string{"sqlite"}, "SQLite has no database roles"},
		{"sqlite read-only", []string{"grants", "--read-only", "--role", "app"}, []string{"sqlite"}, "file's permissions"},
		{"public", []string{"grants", "--role", "public"}, []string{"postgres"}, "PUBLIC"},
		{"predefined", []string{"grants", "--role", "pg_read_all_data"}, []string{"postgres"}, "predefined"},
		{"too long", []string{"grants", "--role", strings.Repeat("r", 64)}, []string{"postgres"}, "longer"},
		{"anonymous", []string{"grants", "--role", "@%"}, []string{"mysql"}, "no user name"},
		{"no host", []string{"grants", "--role", "app@"}, []string{"mysql"}, "no host"},
		{"quoted", []string{"grants", "--role", "'app'@'%'"}, []string{"mysql"}, "without quotes"},
		{"backslash", []string{"grants", "--role", `app\`}, []string{"mysql"}, "backslashes"},
		{"bad mapping", []string{"--users-table", "", "grants", "--role", "app"}, all, "must not be empty"},
	}
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		before := db.Dump(t)
		for _, tc := range cases {
			if !slices.Contains(tc.backends, db.Backend) {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				res := testutil.Run(t, testutil.Options{}, db.Args(tc.args...)...)
				lines := strings.Split(strings.TrimSuffix(res.Stderr, "\n"), "\n")
				if res.Code != 2 || res.Stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "totpadm: ") || !strings.Contains(lines[0], tc.want) {
					t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one totpadm: line with %q", tc.args, res.Code, res.Stdout, res.Stderr, tc.want)
				}
			})
		}
		if after := db.Dump(t); after != before {
			t.Errorf("bad invocations changed the database:\n%s\n---\n%s", before, after)
		}
	})
}

// TestGrantsSQLiteDemoUntouched: without --db (the embedded SQLite demo)
// grants answers that SQLite has no roles and creates no demo database.
func TestGrantsSQLiteDemoUntouched(t *testing.T) {
	if os.Getenv("TOTPADM_DB") != "" || os.Getenv("TOTPADM_CONFIG") != "" {
		t.Skip("TOTPADM_DB or TOTPADM_CONFIG is set")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	res := testutil.Run(t, testutil.Options{}, "grants", "--role", "app")
	if res.Code != 2 || !strings.Contains(res.Stderr, "SQLite has no database roles") {
		t.Errorf("grants on the demo database: exit %d, stderr %q", res.Code, res.Stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("grants left files behind: %v %v", entries, err)
	}
}

// TestGrantsCSV: -o csv has a header and one row per statement.
func TestGrantsCSV(t *testing.T) {
	db := testutil.NewPostgres(t)
	res := testutil.Run(t, testutil.Options{}, db.Args("-o", "csv", "grants", "--role", "app", "--read-only")...)
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "dialect,statement\npostgres,") || strings.Contains(res.Stdout, "INSERT") {
		t.Errorf("grants -o csv: exit %d: %q %s", res.Code, res.Stdout, res.Stderr)
	}
}
