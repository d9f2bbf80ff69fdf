// Package testutil gives every test a fresh real database (a SQLite file or
// a PostgreSQL schema), runs totpadm in-process or as a built binary, and
// dumps databases so tests can assert that nothing changed.
package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

// PostgresEnv and MySQLEnv name the variables holding the server URLs
// for tests; each backend runs whenever its variable is set.
const (
	PostgresEnv = "TOTPADM_TEST_POSTGRES"
	MySQLEnv    = "TOTPADM_TEST_MYSQL"
)

// DB is one test's private database.
type DB struct {
	Backend string // "sqlite", "postgres" or "mysql"
	Spec    string // the --db value
	KeyFile string
	Dir     string   // a private temporary directory
	Gorm    *gorm.DB // for assertions; totpadm opens its own connection
}

// Users are the logins every test database starts with, ids 1, 2, 3.
var Users = []string{"alice", "bob", "carol"}

// Backends runs fn once per available backend as a subtest. PostgreSQL
// and MySQL run whenever their variable is set and are skipped visibly
// otherwise.
func Backends(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, NewSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, NewPostgres(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, NewMySQL(t)) })
}

// NewSQLite creates a migrated SQLite database with a users table and a key
// file in a fresh temporary directory.
func NewSQLite(t *testing.T) *DB {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db := &DB{Backend: "sqlite", Spec: path, Dir: dir}
	db.Gorm = open(t, config.Target{Driver: "sqlite", Path: path})
	// An application that shares SQLite between processes runs it in WAL
	// mode; totpadm no longer switches a file to WAL itself, so the test
	// database, which stands for such an application's, does it here.
	db.Exec(t, "PRAGMA journal_mode=WAL")
	db.setup(t, `CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT)`)
	return db
}

// NewPostgres creates a fresh schema in the PostgresEnv database, with a
// users table and totpadm's tables in it, dropped when the test ends.
func NewPostgres(t *testing.T) *DB {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test) to run them", PostgresEnv)
	}
	schema := "totpadm_test_" + RandomHex(t, 6)
	admin := open(t, mustTarget(t, base))
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		config.Close(admin)
	})
	spec := WithQuery(t, base, "search_path", schema)
	db := &DB{Backend: "postgres", Spec: spec, Dir: t.TempDir()}
	db.Gorm = open(t, mustTarget(t, spec))
	db.setup(t, `CREATE TABLE users (id SERIAL PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT)`)
	return db
}

// NewMySQL creates a fresh database on the MySQLEnv server (MySQL or
// MariaDB), with a users table and totpadm's tables, dropped when the test
// ends.
func NewMySQL(t *testing.T) *DB {
	t.Helper()
	base := os.Getenv(MySQLEnv)
	if base == "" {
		t.Skipf("MySQL tests skipped: set %s (e.g. mysql://root@127.0.0.1:3306/test) to run them", MySQLEnv)
	}
	name := "totpadm_test_" + RandomHex(t, 6)
	admin := open(t, mustTarget(t, base))
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE " + name)
		config.Close(admin)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db := &DB{Backend: "mysql", Spec: u.String(), Dir: t.TempDir()}
	db.Gorm = open(t, mustTarget(t, db.Spec))
	db.setup(t, `CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, username VARCHAR(191) NOT NULL UNIQUE, email TEXT)`)
	return db
}

// WithQuery sets one query parameter of a URL.
func WithQuery(t *testing.T, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func (db *DB) setup(t *testing.T, createUsers string) {
	t.Helper()
	if err := db.Gorm.Exec(createUsers).Error; err != nil {
		t.Fatalf("create users table: %v", err)
	}
	for _, u := range Users {
		db.Exec(t, "INSERT INTO users (username, email) VALUES (?, ?)", u, u+"@example.com")
	}
	tables, _ := models.TablesWithPrefix(models.DefaultTablePrefix)
	if _, err := models.Migrate(context.Background(), db.Gorm, tables, false); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	key, err := models.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db.KeyFile = filepath.Join(db.Dir, "totpadm.key")
	if err := keyfile.Write(db.KeyFile, key); err != nil {
		t.Fatal(err)
	}
}

// Exec runs a statement on the test's own connection.
func (db *DB) Exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if err := db.Gorm.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Count returns SELECT COUNT(*) FROM table WHERE where.
func (db *DB) Count(t *testing.T, table, where string, args ...any) int {
	t.Helper()
	var n int64
	q := db.Gorm.Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return int(n)
}

// Args prefixes args with the global flags that point at this database.
func (db *DB) Args(args ...string) []string {
	return append([]string{"--db", db.Spec, "--key-file", db.KeyFile, "--actor", "tester"}, args...)
}

// Dump renders every row of the users table and totpadm's tables, so two
// dumps are equal exactly when no data changed.
func (db *DB) Dump(t *testing.T) string {
	t.Helper()
	return db.dump(t, "users", "totp_credentials", "totp_backup_codes", "totp_audit_log", "totp_schema_version")
}

// DumpState is Dump without the audit log: equal dumps mean nothing but
// audit rows was written.
func (db *DB) DumpState(t *testing.T) string {
	t.Helper()
	return db.dump(t, "users", "totp_credentials", "totp_backup_codes", "totp_schema_version")
}

func (db *DB) dump(t *testing.T, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Gorm.Raw("SELECT * FROM " + table + " ORDER BY 1").Rows()
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		types, _ := rows.ColumnTypes()
		fmt.Fprintf(&b, "== %s %v\n", table, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			for i, v := range vals {
				switch x := v.(type) {
				case []byte:
					// MySQL returns text as bytes too: hex only what is binary.
					if binaryColumn(types, i) {
						fmt.Fprintf(&b, "%x|", x)
					} else {
						fmt.Fprintf(&b, "%s|", x)
					}
				case time.Time:
					fmt.Fprintf(&b, "%s|", x.UTC().Format(time.RFC3339Nano))
				default:
					fmt.Fprintf(&b, "%v|", x)
				}
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}

func binaryColumn(types []*sql.ColumnType, i int) bool {
	if i >= len(types) {
		return true
	}
	t := strings.ToUpper(types[i].DatabaseTypeName())
	return strings.Contains(t, "BLOB") || strings.Contains(t, "BINARY") || t == "BYTEA"
}

// Contains reports whether any file in dir (the SQLite database, its WAL,
// the key file) contains needle, for "no plaintext at rest" assertions.
func Contains(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if bytes.Contains(data, needle) {
			hits = append(hits, e.Name())
		}
	}
	return hits
}

func open(t *testing.T, target config.Target) *gorm.DB {
	t.Helper()
	db, err := config.Open(context.Background(), target, config.OpenOptions{})
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { config.Close(db) })
	return db
}

func mustTarget(t *testing.T, spec string) config.Target {
	t.Helper()
	target, err := config.ParseTarget(spec)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// RandomHex is n random bytes in hex, for names of throwaway databases
// and schemas that concurrent test processes never share.
func RandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
