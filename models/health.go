package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Health checks used by `totpadm doctor`. Each answers one question, reads
// only, and returns an error that says what is wrong.

// DatabaseVersion names the database server and its version.
func DatabaseVersion(ctx context.Context, db *gorm.DB) (string, error) {
	d, err := dialectOf(db)
	if err != nil {
		return "", err
	}
	var q, name string
	switch d.name {
	case "sqlite":
		q, name = "SELECT sqlite_version()", "SQLite"
	case "postgres":
		q, name = "SHOW server_version", "PostgreSQL"
	default:
		q, name = "SELECT VERSION()", "MySQL/MariaDB"
	}
	var v string
	if err := db.WithContext(ctx).Raw(q).Scan(&v).Error; err != nil {
		return "", fmt.Errorf("query the server version: %w", err)
	}
	return name + " " + v, nil
}

// DatabaseClock returns the database server's current time, or ok=false
// for SQLite, whose clock is this machine's.
func DatabaseClock(ctx context.Context, db *gorm.DB) (t time.Time, ok bool, err error) {
	d, err := dialectOf(db)
	if err != nil || d.name == "sqlite" {
		return time.Time{}, false, err
	}
	q := "SELECT CURRENT_TIMESTAMP"
	if d.name == "mysql" {
		q = "SELECT UTC_TIMESTAMP(6)"
	}
	if err := db.WithContext(ctx).Raw(q).Scan(&t).Error; err != nil {
		return time.Time{}, false, fmt.Errorf("read the server clock: %w", err)
	}
	return t, true, nil
}

// UsersTableInfo describes the mapped users table.
type UsersTableInfo struct {
	IDType string // the id column's database type
}

// CheckUsersTable reads one row through the configured mapping and reports
// the id column's type. It touches nothing.
func (s *Service) CheckUsersTable(ctx context.Context, db *gorm.DB) (UsersTableInfo, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return UsersTableInfo{}, err
	}
	d := sess.d
	rows, err := sess.db.Raw(fmt.Sprintf("SELECT %s FROM %s u LIMIT 1", s.userColumns(d, "u"), d.quote(s.cfg.Users.Table))).Rows()
	if err != nil {
		return UsersTableInfo{}, fmt.Errorf("read %s through the mapping: %w", s.cfg.Users.Table, err)
	}
	rows.Close()
	info := UsersTableInfo{IDType: "unknown"}
	if cols, err := sess.db.Migrator().ColumnTypes(s.cfg.Users.Table); err == nil {
		for _, c := range cols {
			if c.Name() == s.cfg.Users.IDColumn {
				info.IDType = c.DatabaseTypeName()
			}
		}
	}
	return info, nil
}

// ProbeUsersTable reads no row but the mapped columns' names, so that a
// users table that is not there, or a column the mapping names wrongly,
// fails here with the table's name rather than deep inside a command. It
// selects only the mapped columns: a least-privilege role may read no
// other (see Grants).
func (s *Service) ProbeUsersTable(ctx context.Context, db *gorm.DB) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	rows, err := sess.db.Raw(fmt.Sprintf("SELECT %s FROM %s u WHERE 1 = 0", s.userColumns(sess.d, "u"), sess.d.quote(s.cfg.Users.Table))).Rows()
	if err != nil {
		return fmt.Errorf("read %s through the mapping: %w", s.cfg.Users.Table, err)
	}
	return rows.Close()
}

// DefaultEmailColumn is the users-table column shown as email when none is
// configured and the table has one by exactly this name.
const DefaultEmailColumn = "email"

// HasReadableUsersColumn reports whether the users table has a column
// named col that this connection may read. It asks for that column alone,
// so it needs no privilege beyond it.
func (s *Service) HasReadableUsersColumn(ctx context.Context, db *gorm.DB, col string) bool {
	sess, err := s.session(ctx, db)
	if err != nil {
		return false
	}
	rows, err := sess.db.Raw(fmt.Sprintf("SELECT u.%s FROM %s u WHERE 1 = 0", sess.d.quote(col), sess.d.quote(s.cfg.Users.Table))).Rows()
	if err != nil {
		return false
	}
	rows.Close()
	return true
}

// SecretSample is what SampleSecrets found.
type SecretSample struct {
	Tried, Opened int
	ByKey         map[string]int // secrets per key id, over the whole table
}

// SampleSecrets tries to open up to n stored secrets with the configured
// keys and counts every secret by key id.
func (s *Service) SampleSecrets(ctx context.Context, db *gorm.DB, n int) (SecretSample, error) {
	if _, err := s.requireKey(); err != nil {
		return SecretSample{}, err
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return SecretSample{}, err
	}
	byKey, err := s.keyIDCounts(sess.db)
	if err != nil {
		return SecretSample{}, err
	}
	var creds []Credential
	if err := sess.db.Table(s.cfg.Tables.Credentials).Select("user_id, secret, key_id").Limit(n).Find(&creds).Error; err != nil {
		return SecretSample{}, fmt.Errorf("read secrets: %w", err)
	}
	sample := SecretSample{Tried: len(creds), ByKey: byKey}
	for i := range creds {
		if plain, err := s.openSecret(&creds[i]); err == nil {
			clear(plain)
			sample.Opened++
		}
	}
	return sample, nil
}
