package models_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

func mustTables(t *testing.T, prefix string) models.Tables {
	t.Helper()
	tables, err := models.TablesWithPrefix(prefix)
	if err != nil {
		t.Fatalf("TablesWithPrefix(%q): %v", prefix, err)
	}
	return tables
}

func tableNames(t models.Tables) []string {
	return []string{t.Credentials, t.BackupCodes, t.AuditLog, t.SchemaVersion, t.TempCodes}
}

func TestTablesWithPrefix(t *testing.T) {
	tables := mustTables(t, models.DefaultTablePrefix)
	want := models.Tables{Credentials: "totp_credentials", BackupCodes: "totp_backup_codes", AuditLog: "totp_audit_log", SchemaVersion: "totp_schema_version", TempCodes: "totp_temp_codes"}
	if tables != want {
		t.Errorf("default tables %+v, want %+v", tables, want)
	}
	if cfg := models.DefaultConfig(); cfg.Tables != want {
		t.Errorf("DefaultConfig tables %+v", cfg.Tables)
	}
	for _, p := range []string{"a", "_", "x_", "App2FA_", "_private_", strings.Repeat("p", 31)} {
		tables, err := models.TablesWithPrefix(p)
		if err != nil {
			t.Errorf("TablesWithPrefix(%q): %v", p, err)
			continue
		}
		for _, name := range tableNames(tables) {
			if !strings.HasPrefix(name, p) {
				t.Errorf("TablesWithPrefix(%q) names %q", p, name)
			}
		}
	}
	for _, p := range []string{"", "1abc", "a-b", "a b", "a.b", `a"b`, "a'b", "a;drop table users;--", "ä_", "a`", strings.Repeat("p", 64), "a\x00"} {
		if tables, err := models.TablesWithPrefix(p); err == nil {
			t.Errorf("TablesWithPrefix(%q) = %+v, want an error", p, tables)
		}
	}
}

func hasTables(t *testing.T, db *gorm.DB, tables models.Tables) []string {
	t.Helper()
	var have []string
	for _, name := range tableNames(tables) {
		if db.Migrator().HasTable(name) {
			have = append(have, name)
		}
	}
	return have
}

func TestMigrateDryRun(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		tables := mustTables(t, "dry_")
		before := db.Dump(t)
		plan, err := models.Migrate(ctx, db.Gorm, tables, true)
		if err != nil {
			t.Fatal(err)
		}
		if plan.From != 0 || plan.To != models.SchemaVersion || len(plan.Statements) == 0 {
			t.Fatalf("dry-run plan from %d to %d with %d statements, want 0 → %d", plan.From, plan.To, len(plan.Statements), models.SchemaVersion)
		}
		all := strings.Join(plan.Statements, "\n")
		for _, name := range tableNames(tables) {
			if !strings.Contains(all, "CREATE TABLE \""+name+"\"") && !strings.Contains(all, "CREATE TABLE `"+name+"`") {
				t.Errorf("dry-run statements do not create %s:\n%s", name, all)
			}
		}
		if strings.Contains(all, "\"users\"") || strings.Contains(all, "totp_") {
			t.Errorf("dry-run statements touch tables totpadm does not own under this prefix:\n%s", all)
		}
		if have := hasTables(t, db.Gorm, tables); len(have) != 0 {
			t.Errorf("dry run created %v", have)
		}
		if err := models.CheckSchema(ctx, db.Gorm, tables); !errors.Is(err, models.ErrSchemaMissing) {
			t.Errorf("CheckSchema after a dry run: %v, want ErrSchemaMissing", err)
		}
		if after := db.Dump(t); after != before {
			t.Errorf("dry run changed the database")
		}

		// The printed SQL is the real thing: running it by hand yields a
		// schema CheckSchema accepts and Migrate has nothing to add to.
		err = db.Gorm.Transaction(func(tx *gorm.DB) error {
			for _, stmt := range plan.Statements {
				if err := tx.Exec(stmt).Error; err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("running the dry-run statements: %v", err)
		}
		if err := models.CheckSchema(ctx, db.Gorm, tables); err != nil {
			t.Errorf("CheckSchema after running the dry-run SQL: %v", err)
		}
		if plan, err := models.Migrate(ctx, db.Gorm, tables, false); err != nil || len(plan.Statements) != 0 {
			t.Errorf("Migrate after the dry-run SQL = %+v, %v; want nothing to do", plan, err)
		}
	})
}

func TestMigrateIdempotent(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		// The test database is migrated already (default prefix).
		before := db.Dump(t)
		for range 2 {
			plan, err := models.Migrate(ctx, db.Gorm, mustTables(t, models.DefaultTablePrefix), false)
			if err != nil {
				t.Fatalf("Migrate of a migrated database: %v", err)
			}
			if len(plan.Statements) != 0 || plan.From != models.SchemaVersion || plan.To != models.SchemaVersion {
				t.Errorf("Migrate of a migrated database = %+v, want no statements at version %d", plan, models.SchemaVersion)
			}
		}
		if after := db.Dump(t); after != before {
			t.Errorf("re-running migrate changed the database")
		}
		// A fresh prefix: the first run creates, the second does nothing.
		tables := mustTables(t, "twice_")
		first, err := models.Migrate(ctx, db.Gorm, tables, false)
		if err != nil || first.From != 0 || first.To != models.SchemaVersion || len(first.Statements) == 0 {
			t.Fatalf("first Migrate = %+v, %v", first, err)
		}
		if have := hasTables(t, db.Gorm, tables); len(have) != len(tableNames(tables)) {
			t.Errorf("after migrate the tables %v exist, want all of %v", have, tableNames(tables))
		}
		second, err := models.Migrate(ctx, db.Gorm, tables, false)
		if err != nil || len(second.Statements) != 0 {
			t.Errorf("second Migrate = %+v, %v; want nothing to do", second, err)
		}
		if n := db.Count(t, tables.SchemaVersion, ""); n != models.SchemaVersion {
			t.Errorf("%d schema version rows after two migrations, want one per version, %d", n, models.SchemaVersion)
		}
		if err := models.CheckSchema(ctx, db.Gorm, tables); err != nil {
			t.Errorf("CheckSchema: %v", err)
		}
		if after := db.Dump(t); after != before {
			t.Errorf("migrating other tables changed the users table or the default tables")
		}
	})
}

func TestCheckSchemaMissing(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		if err := models.CheckSchema(ctx, db.Gorm, mustTables(t, models.DefaultTablePrefix)); err != nil {
			t.Errorf("CheckSchema of the migrated test database: %v", err)
		}
		if err := models.CheckSchema(ctx, db.Gorm, mustTables(t, "absent_")); !errors.Is(err, models.ErrSchemaMissing) {
			t.Errorf("CheckSchema with no tables under the prefix: %v, want ErrSchemaMissing", err)
		}
		// Drop totpadm's tables: the database now holds only the users table.
		for _, name := range tableNames(mustTables(t, models.DefaultTablePrefix)) {
			db.Exec(t, "DROP TABLE "+name)
		}
		err := models.CheckSchema(ctx, db.Gorm, mustTables(t, models.DefaultTablePrefix))
		if !errors.Is(err, models.ErrSchemaMissing) {
			t.Errorf("CheckSchema without totpadm's tables: %v, want ErrSchemaMissing", err)
		}
		// And the service's own operations fail rather than invent tables.
		e := newEnv(t, db)
		u := e.user("alice")
		enr, err := e.svc.NewEnrollment(u, models.Params{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Enroll(e.ctx, db.Gorm, enr, models.EnrollOptions{}); err == nil {
			t.Error("Enroll without totpadm's tables succeeded")
		}
		if db.Gorm.Migrator().HasTable("totp_credentials") {
			t.Error("Enroll created a table")
		}
	})
}

func TestCheckSchemaEmptySQLiteFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := config.Open(ctx, config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer config.Close(db)
	tables := mustTables(t, models.DefaultTablePrefix)
	if err := models.CheckSchema(ctx, db, tables); !errors.Is(err, models.ErrSchemaMissing) {
		t.Errorf("CheckSchema of an empty database: %v, want ErrSchemaMissing", err)
	}
	if _, err := models.Migrate(ctx, db, tables, false); err != nil {
		t.Fatal(err)
	}
	if err := models.CheckSchema(ctx, db, tables); err != nil {
		t.Errorf("CheckSchema after migrate: %v", err)
	}
	if db.Migrator().HasTable("users") {
		t.Error("migrate created a users table")
	}
}

func TestSchemaVersionMismatch(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		tables := mustTables(t, models.DefaultTablePrefix)
		db.Exec(t, "INSERT INTO totp_schema_version (version, applied_at) VALUES (?, CURRENT_TIMESTAMP)", models.SchemaVersion+1)
		err := models.CheckSchema(ctx, db.Gorm, tables)
		if !errors.Is(err, models.ErrSchemaVersion) {
			t.Fatalf("CheckSchema with a newer version row: %v, want ErrSchemaVersion", err)
		}
		var version *models.SchemaVersionError
		if !errors.As(err, &version) || version.Database != models.SchemaVersion+1 || version.Code != models.SchemaVersion {
			t.Errorf("newer schema: %v, want a SchemaVersionError naming both versions", err)
		}
		if strings.Contains(err.Error(), "totpadm migrate") || strings.Contains(err.Error(), "--") {
			t.Errorf("newer schema: the library's message %q gives CLI advice", err)
		}
		before := db.Dump(t)
		if _, err := models.Migrate(ctx, db.Gorm, tables, false); !errors.Is(err, models.ErrSchemaVersion) {
			t.Errorf("Migrate of a newer schema: %v, want ErrSchemaVersion", err)
		}
		if _, err := models.Migrate(ctx, db.Gorm, tables, true); !errors.Is(err, models.ErrSchemaVersion) {
			t.Errorf("Migrate --dry-run of a newer schema: %v, want ErrSchemaVersion", err)
		}
		if after := db.Dump(t); after != before {
			t.Error("Migrate of a newer schema changed the database")
		}

		// An older version: the error tells the database's version from
		// the code's, so that the CLI can say to migrate.
		db.Exec(t, "DELETE FROM totp_schema_version")
		db.Exec(t, "INSERT INTO totp_schema_version (version, applied_at) VALUES (?, CURRENT_TIMESTAMP)", models.SchemaVersion-1)
		err = models.CheckSchema(ctx, db.Gorm, tables)
		if !errors.As(err, &version) || version.Database != models.SchemaVersion-1 || version.Code != models.SchemaVersion {
			t.Errorf("CheckSchema of an older schema: %v, want a SchemaVersionError naming both versions", err)
		}
	})
}

func TestCustomTablePrefix(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		tables := mustTables(t, "app2fa_")
		if _, err := models.Migrate(ctx, db.Gorm, tables, false); err != nil {
			t.Fatal(err)
		}
		before := db.Dump(t) // users and the default totp_ tables
		e := newEnv(t, db, func(c *models.Config) { c.Tables = tables })
		en := e.enroll("alice", false)
		e.mustVerify(en, e.code(en, 0))
		if _, err := e.verify(en, en.codes[0]); err != nil {
			t.Errorf("backup code: %v", err)
		}
		if n := db.Count(t, tables.Credentials, "user_id = ?", en.user.ID); n != 1 {
			t.Errorf("%d rows in %s, want 1", n, tables.Credentials)
		}
		if n := db.Count(t, tables.BackupCodes, "user_id = ? AND used_at IS NULL", en.user.ID); n != 9 {
			t.Errorf("%d unused codes in %s, want 9", n, tables.BackupCodes)
		}
		if n := db.Count(t, tables.AuditLog, ""); n != 3 {
			t.Errorf("%d rows in %s, want 3", n, tables.AuditLog)
		}
		if after := db.Dump(t); after != before {
			t.Error("a service with a custom prefix wrote to the default tables")
		}
		// A service on the default tables does not see the enrollment.
		if _, err := e.service().Verify(ctx, db.Gorm, en.user, en.codes[1]); !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("default-prefix service: %v, want ErrNotEnrolled", err)
		}
	})
}

func TestNewServiceValidation(t *testing.T) {
	bad := []func(*models.Config){
		func(c *models.Config) { c.Skew = -1 },
		func(c *models.Config) { c.Skew = 11 },
		func(c *models.Config) { c.MaxFailures = -1 },
		func(c *models.Config) { c.LockoutDuration = -1 },
		func(c *models.Config) { c.BackupCodeCount = -1 },
		func(c *models.Config) { c.BackupCodeCount = 101 },
		func(c *models.Config) { c.Params = models.Params{Algorithm: "MD5", Digits: 6, Period: 30} },
		func(c *models.Config) { c.Params = models.Params{Algorithm: "SHA1", Digits: 9, Period: 30} },
		func(c *models.Config) {
			c.Users = models.UsersTable{Table: "users", IDColumn: "", LoginColumn: "username"}
		},
		func(c *models.Config) {
			c.Users = models.UsersTable{Table: " ", IDColumn: "id", LoginColumn: "username"}
		},
	}
	for i, m := range bad {
		cfg := models.DefaultConfig()
		m(&cfg)
		if _, err := models.NewService(cfg); err == nil {
			t.Errorf("config %d (%+v): want an error", i, cfg)
		}
	}
	// Zero values take the documented defaults (SPEC §2).
	svc, err := models.NewService(models.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := svc.Config()
	if got.Params != models.DefaultParams || got.MaxFailures != 5 || got.LockoutDuration.Minutes() != 15 ||
		got.BackupCodeCount != 10 || got.Tables != mustTables(t, "totp_") || got.Users != models.DefaultUsersTable {
		t.Errorf("zero config filled in as %+v", got)
	}
	def := models.DefaultConfig()
	if def.Skew != 1 || def.MaxFailures != 5 || def.LockoutDuration.Minutes() != 15 || def.BackupCodeCount != 10 {
		t.Errorf("DefaultConfig = %+v, want ±1 step, 5 failures, 15 minutes, 10 codes", def)
	}
}

// TestMigrateUpgradesVersion1: a database at schema version 1 (before
// temporary codes) is upgraded by Migrate to version 2, keeping its data.
func TestMigrateUpgradesVersion1(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		tables := mustTables(t, models.DefaultTablePrefix)
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		db.Exec(t, "DROP TABLE totp_temp_codes")
		db.Exec(t, "DELETE FROM totp_schema_version WHERE version > 1")
		if err := models.CheckSchema(ctx, db.Gorm, tables); !errors.Is(err, models.ErrSchemaVersion) {
			t.Fatalf("CheckSchema at version 1: %v, want ErrSchemaVersion", err)
		}
		plan, err := models.Migrate(ctx, db.Gorm, tables, false)
		if err != nil || plan.From != 1 || plan.To != 2 {
			t.Fatalf("Migrate from 1: %+v, %v; want 1 → 2", plan, err)
		}
		if err := models.CheckSchema(ctx, db.Gorm, tables); err != nil {
			t.Fatalf("CheckSchema after the upgrade: %v", err)
		}
		if c := e.cred(en.user.ID); !c.Found {
			t.Fatal("the upgrade lost alice's enrollment")
		}
		e.tempCode(en, time.Hour)
	})
}
