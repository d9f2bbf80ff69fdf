package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"
)

// SchemaVersion is the version of totpadm's own tables this code speaks.
const SchemaVersion = 2

// DefaultTablePrefix names totpadm's tables: totp_credentials, …
const DefaultTablePrefix = "totp_"

var prefixPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,30}$`)

// Tables are the names of the tables totpadm owns.
type Tables struct {
	Credentials   string
	BackupCodes   string
	AuditLog      string
	SchemaVersion string
	TempCodes     string // since schema version 2
}

// TablesWithPrefix names totpadm's tables under prefix. The prefix is an
// identifier fragment, so index names built from it stay valid everywhere.
func TablesWithPrefix(prefix string) (Tables, error) {
	if !prefixPattern.MatchString(prefix) {
		return Tables{}, fmt.Errorf("table prefix %q must be letters, digits and underscores, starting with a letter or underscore", prefix)
	}
	return Tables{
		Credentials:   prefix + "credentials",
		BackupCodes:   prefix + "backup_codes",
		AuditLog:      prefix + "audit_log",
		SchemaVersion: prefix + "schema_version",
		TempCodes:     prefix + "temp_codes",
	}, nil
}

// migration is one schema step; its statements run in one transaction
// where the database supports transactional DDL.
type migration struct {
	version int
	sql     func(d dialect, t Tables) []string
}

var migrations = []migration{
	{version: 1, sql: func(d dialect, t Tables) []string {
		ty := d.types()
		q := d.quote
		stmts := []string{
			versionTableSQL(d, t),
			fmt.Sprintf(`CREATE TABLE %s (
  user_id %s NOT NULL PRIMARY KEY,
  secret %s NOT NULL,
  key_id %s NOT NULL,
  algorithm %s NOT NULL,
  digits %s NOT NULL,
  period %s NOT NULL,
  state %s NOT NULL CHECK (state IN ('pending', 'active')),
  created_at %s NOT NULL,
  activated_at %s NULL,
  last_used_at %s NULL,
  last_step %s NOT NULL DEFAULT -1,
  failures %s NOT NULL DEFAULT 0,
  locked_until %s NULL,
  enrolled_by %s NOT NULL
)`, q(t.Credentials), ty.key, ty.blob, ty.key, ty.key, ty.bigint, ty.bigint, ty.key, ty.ts, ty.ts, ty.ts, ty.bigint, ty.bigint, ty.ts, ty.text),
			fmt.Sprintf(`CREATE TABLE %s (
  id %s,
  user_id %s NOT NULL,
  salt %s NOT NULL,
  hash %s NOT NULL,
  created_at %s NOT NULL,
  used_at %s NULL
)`, q(t.BackupCodes), ty.serial, ty.key, ty.blob, ty.blob, ty.ts, ty.ts),
			fmt.Sprintf(`CREATE INDEX %s ON %s (user_id)`, q(t.BackupCodes+"_user_id"), q(t.BackupCodes)),
		}
		return append(stmts, auditTableSQL(d, t)...)
	}},
	// 2: temporary access codes, at most one per user (see tempcode.go).
	{version: 2, sql: func(d dialect, t Tables) []string {
		ty := d.types()
		return []string{fmt.Sprintf(`CREATE TABLE %s (
  user_id %s NOT NULL PRIMARY KEY,
  salt %s NOT NULL,
  hash %s NOT NULL,
  created_at %s NOT NULL,
  expires_at %s NOT NULL,
  used_at %s NULL,
  created_by %s NOT NULL,
  reason %s NOT NULL
)`, d.quote(t.TempCodes), ty.key, ty.blob, ty.blob, ty.ts, ty.ts, ty.ts, ty.text, ty.text)}
	}},
}

// versionTableSQL creates the table that records applied migrations.
func versionTableSQL(d dialect, t Tables) string {
	ty := d.types()
	return fmt.Sprintf(`CREATE TABLE %s (
  version %s NOT NULL,
  applied_at %s NOT NULL
)`, d.quote(t.SchemaVersion), ty.bigint, ty.ts)
}

// auditTableSQL creates the audit log, which every store keeps in
// totpadm's own table.
func auditTableSQL(d dialect, t Tables) []string {
	ty := d.types()
	q := d.quote
	return []string{
		fmt.Sprintf(`CREATE TABLE %s (
  id %s,
  at %s NOT NULL,
  actor %s NOT NULL,
  host %s NOT NULL,
  action %s NOT NULL,
  user_id %s NULL,
  user_login %s NULL,
  outcome %s NOT NULL,
  reason %s NULL
)`, q(t.AuditLog), ty.serial, ty.ts, ty.text, ty.text, ty.key, ty.key, ty.text, ty.key, ty.text),
		fmt.Sprintf(`CREATE INDEX %s ON %s (at)`, q(t.AuditLog+"_at"), q(t.AuditLog)),
		fmt.Sprintf(`CREATE INDEX %s ON %s (user_id, at)`, q(t.AuditLog+"_user_id_at"), q(t.AuditLog)),
	}
}

// MigrationPlan is what Migrate did or, with dryRun, would do.
type MigrationPlan struct {
	From, To   int
	Statements []string
}

// Migrate creates or upgrades totpadm's tables to SchemaVersion. With
// dryRun it only returns the statements. It never touches any other table.
func Migrate(ctx context.Context, db *gorm.DB, t Tables, dryRun bool) (MigrationPlan, error) {
	return migrate(ctx, db, t, migrations, dryRun)
}

// migrate brings one track of migrations (totpadm's own tables, or a
// framework store's) to its last version, recorded in t.SchemaVersion.
func migrate(ctx context.Context, db *gorm.DB, t Tables, migrations []migration, dryRun bool) (MigrationPlan, error) {
	target := migrations[len(migrations)-1].version
	d, err := dialectOf(db)
	if err != nil {
		return MigrationPlan{}, err
	}
	current, err := schemaVersion(ctx, db, d, t)
	if err != nil && !errors.Is(err, ErrSchemaMissing) {
		return MigrationPlan{}, fmt.Errorf("migrate: %w", err)
	}
	plan := MigrationPlan{From: current, To: current}
	if current > target {
		return plan, fmt.Errorf("migrate: %w", &SchemaVersionError{Database: current, Code: target})
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		plan.Statements = append(plan.Statements, m.sql(d, t)...)
		plan.Statements = append(plan.Statements, fmt.Sprintf("INSERT INTO %s (version, applied_at) VALUES (%d, CURRENT_TIMESTAMP)", d.quote(t.SchemaVersion), m.version))
		plan.To = m.version
	}
	if dryRun || len(plan.Statements) == 0 {
		return plan, nil
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, stmt := range plan.Statements {
			if err := tx.Exec(stmt).Error; err != nil {
				return fmt.Errorf("%s: %w", firstLine(stmt), err)
			}
		}
		return nil
	})
	if err != nil {
		return plan, fmt.Errorf("migrate from version %d: %w", current, err)
	}
	return plan, nil
}

// CheckSchema returns nil when totpadm's tables exist at SchemaVersion, and
// otherwise an error that says what to do. It costs one small query.
func CheckSchema(ctx context.Context, db *gorm.DB, t Tables) error {
	return checkSchema(ctx, db, t, SchemaVersion)
}

func checkSchema(ctx context.Context, db *gorm.DB, t Tables, want int) error {
	d, err := dialectOf(db)
	if err != nil {
		return err
	}
	v, err := schemaVersion(ctx, db, d, t)
	switch {
	case err != nil:
		return err
	case v != want:
		return &SchemaVersionError{Database: v, Code: want}
	}
	return nil
}

func schemaVersion(ctx context.Context, db *gorm.DB, d dialect, t Tables) (int, error) {
	var v *int
	err := db.WithContext(ctx).Raw("SELECT MAX(version) FROM " + d.quote(t.SchemaVersion)).Scan(&v).Error
	if err != nil {
		// Only now pay for introspection, to tell "no tables" from a real
		// failure such as a dropped connection.
		if has := db.WithContext(ctx).Migrator().HasTable(t.SchemaVersion); !has {
			return 0, ErrSchemaMissing
		}
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v == nil {
		return 0, ErrSchemaMissing
	}
	return *v, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// truncateTime puts t in the form every timestamp is stored in:
// UTC, microsecond precision (what PostgreSQL keeps), so values read back
// compare equal to values written and SQLite's text timestamps sort.
func truncateTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
