package commands_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

var migrateTables = []string{"totp_credentials", "totp_backup_codes", "totp_audit_log", "totp_schema_version", "totp_temp_codes"}

// migrateBare is an application database that has only its users table:
// totpadm's tables were never created.
type migrateBare struct {
	spec string
	gorm *gorm.DB
}

func (b *migrateBare) args(args ...string) []string {
	return append([]string{"--db", b.spec, "--actor", "tester"}, args...)
}

// migrateHas reports which of totpadm's tables exist.
func (b *migrateBare) has(t *testing.T) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, table := range migrateTables {
		if b.gorm.Migrator().HasTable(table) {
			m[table] = true
		}
	}
	return m
}

func (b *migrateBare) users(t *testing.T) string {
	t.Helper()
	var logins []string
	if err := b.gorm.Raw("SELECT username FROM users ORDER BY id").Scan(&logins).Error; err != nil {
		t.Fatalf("read users: %v", err)
	}
	return strings.Join(logins, ",")
}

func migrateOpen(t *testing.T, spec string) *gorm.DB {
	t.Helper()
	target, err := config.ParseTarget(spec)
	if err != nil {
		t.Fatal(err)
	}
	db, err := config.Open(context.Background(), target, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { config.Close(db) })
	return db
}

func migrateBareSQLite(t *testing.T) *migrateBare {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bare.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := &migrateBare{spec: path, gorm: migrateOpen(t, path)}
	b.setup(t, "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT)")
	return b
}

func migrateBarePostgres(t *testing.T) *migrateBare {
	t.Helper()
	base := os.Getenv(testutil.PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s", testutil.PostgresEnv)
	}
	raw := make([]byte, 6)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	schema := "totpadm_migrate_" + hex.EncodeToString(raw)
	admin := migrateOpen(t, base)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	spec := testutil.WithQuery(t, base, "search_path", schema)
	b := &migrateBare{spec: spec, gorm: migrateOpen(t, spec)}
	b.setup(t, "CREATE TABLE users (id SERIAL PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT)")
	return b
}

func (b *migrateBare) setup(t *testing.T, create string) {
	t.Helper()
	if err := b.gorm.Exec(create).Error; err != nil {
		t.Fatal(err)
	}
	for _, u := range testutil.Users {
		if err := b.gorm.Exec("INSERT INTO users (username, email) VALUES (?, ?)", u, u+"@example.com").Error; err != nil {
			t.Fatal(err)
		}
	}
}

func migrateBackends(t *testing.T, fn func(t *testing.T, b *migrateBare)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, migrateBareSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, migrateBarePostgres(t)) })
}

func TestMigrateFreshDatabase(t *testing.T) {
	migrateBackends(t, func(t *testing.T, b *migrateBare) {
		// Every command refuses to work and says what to do.
		for _, args := range [][]string{
			{"status"},
			{"status", "alice"},
			{"audit"},
			{"verify", "alice", "123456"},
			{"backup-codes", "alice"},
			{"disable", "--yes", "--reason", "x", "alice"},
			{"unlock", "alice"},
		} {
			res := testutil.Run(t, testutil.Options{}, b.args(args...)...)
			if res.Code != 5 {
				t.Errorf("%v before migrate: exit %d, want 5 (stderr %q)", args, res.Code, res.Stderr)
			}
			statusOneErrorLine(t, res.Stderr)
			if !strings.Contains(res.Stderr, "totpadm migrate") {
				t.Errorf("%v before migrate: stderr %q does not tell to run `totpadm migrate`", args, res.Stderr)
			}
		}
		if got := b.has(t); len(got) != 0 {
			t.Fatalf("commands created tables: %v", got)
		}

		// --dry-run prints the SQL and creates nothing.
		res := testutil.Run(t, testutil.Options{}, b.args("migrate", "--dry-run")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("migrate --dry-run: exit %d, stderr %q", res.Code, res.Stderr)
		}
		for _, table := range migrateTables {
			if !strings.Contains(res.Stdout, "CREATE TABLE \""+table+"\"") && !strings.Contains(res.Stdout, "CREATE TABLE "+table) {
				t.Errorf("migrate --dry-run does not print CREATE TABLE %s:\n%s", table, res.Stdout)
			}
		}
		if strings.Contains(res.Stdout, "users") || strings.Contains(strings.ToUpper(res.Stdout), "DROP ") || strings.Contains(strings.ToUpper(res.Stdout), "ALTER ") {
			t.Errorf("migrate --dry-run touches tables that are not totpadm's:\n%s", res.Stdout)
		}
		if n := strings.Count(res.Stdout, ";\n"); n < len(migrateTables) {
			t.Errorf("dry-run SQL is not ;-terminated statements:\n%s", res.Stdout)
		}
		if got := b.has(t); len(got) != 0 {
			t.Errorf("migrate --dry-run created tables: %v", got)
		}

		// migrate creates them, once.
		res = testutil.Run(t, testutil.Options{}, b.args("migrate")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("migrate: exit %d, stderr %q", res.Code, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "migrated") || !strings.Contains(res.Stdout, fmt.Sprintf("to %d", models.SchemaVersion)) {
			t.Errorf("migrate output %q", res.Stdout)
		}
		if got := b.has(t); len(got) != len(migrateTables) {
			t.Errorf("after migrate, tables %v, want all of %v", got, migrateTables)
		}
		if got := b.users(t); got != "alice,bob,carol" {
			t.Errorf("users table changed: %s", got)
		}
		for _, args := range [][]string{{"migrate"}, {"migrate", "--dry-run"}} {
			res = testutil.Run(t, testutil.Options{}, b.args(args...)...)
			if res.Code != 0 || !strings.Contains(res.Stdout, "nothing to do") || strings.Contains(res.Stdout, "CREATE") {
				t.Errorf("%v a second time: exit %d, stdout %q, stderr %q", args, res.Code, res.Stdout, res.Stderr)
			}
		}

		// And now the commands work.
		res = testutil.Run(t, testutil.Options{}, b.args("-o", "csv", "status")...)
		if res.Code != 0 || len(statusCSV(t, res.Stdout)) != 4 {
			t.Errorf("status after migrate: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
		}
	})
}

func TestMigrateNewerSchema(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusEnrollAt(t, db, "alice", statusT0)
		db.Exec(t, "INSERT INTO totp_schema_version (version, applied_at) VALUES (99, CURRENT_TIMESTAMP)")
		before := db.Dump(t)
		for _, args := range [][]string{
			{"status"},
			{"verify", "alice", "123456"},
			{"disable", "--yes", "--reason", "x", "alice"},
			{"audit"},
			{"migrate"},
			{"migrate", "--dry-run"},
		} {
			res := testutil.Run(t, testutil.Options{}, db.Args(args...)...)
			if res.Code != 5 {
				t.Errorf("%v: exit %d, want 5 (stderr %q)", args, res.Code, res.Stderr)
			}
			statusOneErrorLine(t, res.Stderr)
			if !strings.Contains(res.Stderr, "upgrade totpadm") || !strings.Contains(res.Stderr, "99") {
				t.Errorf("%v: stderr %q should say the database is at version 99 and to upgrade totpadm", args, res.Stderr)
			}
			if res.Stdout != "" {
				t.Errorf("%v: stdout %q", args, res.Stdout)
			}
		}
		if after := db.Dump(t); after != before {
			t.Errorf("database changed:\n%s\n---\n%s", before, after)
		}
	})
}

// An empty schema-version table (a migration that died before recording
// its version) is treated as "not migrated", never as version 0 in use.
func TestMigrateEmptyVersionTable(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "DELETE FROM totp_schema_version")
		res := testutil.Run(t, testutil.Options{}, db.Args("status")...)
		if res.Code != 5 || !strings.Contains(res.Stderr, "totpadm migrate") {
			t.Errorf("status with an empty version table: exit %d, stderr %q; want 5 and a hint to migrate", res.Code, res.Stderr)
		}
		statusOneErrorLine(t, res.Stderr)
	})
}
