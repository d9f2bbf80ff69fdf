package models

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Status states, as shown and filtered on.
const (
	StatusEnabled  = "enabled"
	StatusPending  = "pending"
	StatusDisabled = "disabled"
	StatusLocked   = "locked"
)

// StatusStates lists the states in display order.
var StatusStates = []string{StatusEnabled, StatusPending, StatusDisabled, StatusLocked}

// StatusRow is one user's 2FA state.
type StatusRow struct {
	User
	State           string
	BackupCodesLeft int
	EnrolledAt      *time.Time
	LastUsedAt      *time.Time
	Failures        int
	LockedUntil     *time.Time
}

// credentialSummary is the part of a credential status needs; the secret
// is deliberately not read.
type credentialSummary struct {
	state       sql.NullString
	createdAt   sql.NullTime
	lastUsedAt  sql.NullTime
	failures    sql.NullInt64
	lockedUntil sql.NullTime
	codesLeft   sql.NullInt64
}

func (c *credentialSummary) dest() []any {
	return []any{&c.state, &c.createdAt, &c.lastUsedAt, &c.failures, &c.lockedUntil, &c.codesLeft}
}

func (s *Service) credentialSummaryColumns(d dialect) string {
	return fmt.Sprintf(`c.state, c.created_at, c.last_used_at, c.failures, c.locked_until,
  (SELECT COUNT(*) FROM %s b WHERE b.user_id = c.user_id AND b.used_at IS NULL)`, d.quote(s.cfg.Tables.BackupCodes))
}

func (c *credentialSummary) row(u User, now time.Time) StatusRow {
	r := StatusRow{User: u, State: StatusDisabled}
	if !c.state.Valid {
		return r
	}
	r.State = StatusEnabled
	if c.state.String == StatePending {
		r.State = StatusPending
	}
	r.BackupCodesLeft = int(c.codesLeft.Int64)
	r.Failures = int(c.failures.Int64)
	r.EnrolledAt = timePtr(c.createdAt)
	r.LastUsedAt = timePtr(c.lastUsedAt)
	if c.lockedUntil.Valid && now.Before(c.lockedUntil.Time) {
		r.State = StatusLocked
		r.LockedUntil = timePtr(c.lockedUntil)
	}
	return r
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}

// UserStatus returns the 2FA state of one user.
func (s *Service) UserStatus(ctx context.Context, db *gorm.DB, user User) (StatusRow, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return StatusRow{}, err
	}
	query := fmt.Sprintf("SELECT %s FROM %s c WHERE c.user_id = ?", s.credentialSummaryColumns(sess.d), sess.d.quote(s.cfg.Tables.Credentials))
	var c credentialSummary
	err = sess.db.Raw(query, user.ID).Row().Scan(c.dest()...)
	if err != nil && err != sql.ErrNoRows {
		return StatusRow{}, fmt.Errorf("status of %s: %w", user, err)
	}
	return c.row(user, s.now()), nil
}

// EachStatus streams the 2FA state of every user, ordered by id, calling fn
// for each row. It holds one row in memory at a time, whatever the size of
// the users table; state, when not empty, keeps only rows in that state.
func (s *Service) EachStatus(ctx context.Context, db *gorm.DB, state string, fn func(StatusRow) error) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	d := sess.d
	query := fmt.Sprintf(`SELECT %s, %s
FROM %s u LEFT JOIN %s c ON c.user_id = %s
ORDER BY u.%s`,
		s.userColumns(d, "u"), s.credentialSummaryColumns(d),
		d.quote(s.cfg.Users.Table), d.quote(s.cfg.Tables.Credentials), d.asText("u."+d.quote(s.cfg.Users.IDColumn)),
		d.quote(s.cfg.Users.IDColumn))
	rows, err := sess.db.Raw(query).Rows()
	if err != nil {
		return fmt.Errorf("list status: %w", err)
	}
	defer rows.Close()
	now := s.now()
	var (
		u            User
		login, email sql.NullString
		c            credentialSummary
	)
	dest := append([]any{&u.ID, &login, &email}, c.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("list status: %w", err)
		}
		u.Login, u.Email = login.String, email.String
		r := c.row(u, now)
		if state != "" && r.State != state {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list status: %w", err)
	}
	return nil
}
