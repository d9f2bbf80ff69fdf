package models

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
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
	// TempCodeUntil is when the user's outstanding temporary access code
	// expires; nil when there is none (never issued, used, or expired).
	TempCodeUntil *time.Time
	// Devices is how many 2FA devices the user has, in a store that keeps
	// several per user (StoreInfo.DeviceCounts); 0 otherwise.
	Devices int
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
	tempUntil   sql.NullTime
}

func (c *credentialSummary) dest() []any {
	return []any{&c.state, &c.createdAt, &c.lastUsedAt, &c.failures, &c.lockedUntil, &c.codesLeft, &c.tempUntil}
}

func (s *Service) credentialSummaryColumns(d dialect) string {
	return fmt.Sprintf(`c.state, c.created_at, c.last_used_at, c.failures, c.locked_until,
  (SELECT COUNT(*) FROM %s b WHERE b.user_id = c.user_id AND b.used_at IS NULL),
  (SELECT t.expires_at FROM %s t WHERE t.user_id = c.user_id AND t.used_at IS NULL)`, d.quote(s.cfg.Tables.BackupCodes), d.quote(s.cfg.Tables.TempCodes))
}

// tempCodeUntil is the expiry of an outstanding temporary code, as text.
func (s *Service) tempCodeUntil(d dialect) string {
	return "COALESCE(" + d.rfc3339(fmt.Sprintf("(SELECT t.expires_at FROM %s t WHERE t.user_id = c.user_id AND t.used_at IS NULL)", d.quote(s.cfg.Tables.TempCodes))) + ", '')"
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
	r.EnrolledAt = nullTimePtr(c.createdAt)
	r.LastUsedAt = nullTimePtr(c.lastUsedAt)
	if c.lockedUntil.Valid && now.Before(c.lockedUntil.Time) {
		r.State = StatusLocked
		r.LockedUntil = nullTimePtr(c.lockedUntil)
	}
	if c.tempUntil.Valid && now.Before(c.tempUntil.Time) {
		r.TempCodeUntil = nullTimePtr(c.tempUntil)
	}
	return r
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
//
// It is one query. The credential's fields come back as a single text
// column, NULL for users without 2FA, with times already formatted: with a
// million users, most of them without 2FA, each row then costs four
// columns to fetch instead of ten.
func (s *Service) EachStatus(ctx context.Context, db *gorm.DB, state string, fn func(StatusRow) error) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	d := sess.d
	ts := func(col string) string { return "COALESCE(" + d.rfc3339("c."+col) + ", '')" }
	summary := d.concat("c.state", "'|'", ts("created_at"), "'|'", ts("last_used_at"), "'|'",
		d.asText("c.failures"), "'|'", ts("locked_until"), "'|'",
		d.asText(fmt.Sprintf("(SELECT COUNT(*) FROM %s b WHERE b.user_id = c.user_id AND b.used_at IS NULL)", d.quote(s.cfg.Tables.BackupCodes))), "'|'",
		s.tempCodeUntil(d))
	query := fmt.Sprintf(`SELECT %s, CASE WHEN c.user_id IS NULL THEN NULL ELSE %s END
FROM %s u LEFT JOIN %s c ON c.user_id = %s
ORDER BY u.%s`,
		s.userColumns(d, "u"), summary,
		d.quote(s.cfg.Users.Table), d.quote(s.cfg.Tables.Credentials), d.asText("u."+d.quote(s.cfg.Users.IDColumn)),
		d.quote(s.cfg.Users.IDColumn))
	rows, err := sess.db.WithContext(rowContext(ctx, sess.d)).Raw(query).Rows()
	if err != nil {
		return fmt.Errorf("list status: %w", err)
	}
	defer rows.Close()
	now := s.now()
	var (
		u    userScan
		summ sql.NullString
	)
	dest := append(u.dest(), &summ)
	for n := 0; rows.Next(); n++ {
		if n%cancelCheckRows == 0 && ctx.Err() != nil {
			return fmt.Errorf("list status: %w", ctx.Err())
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("list status: %w", err)
		}
		r := StatusRow{User: u.user(), State: StatusDisabled}
		if summ.Valid {
			if err := r.fill(summ.String, now); err != nil {
				return fmt.Errorf("list status of %s: %w", r.User, err)
			}
		}
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

// cancelCheckRows is how often a row loop on an uncancellable query
// (rowContext) checks for cancellation itself: often enough to stop within
// a millisecond, rarely enough to cost nothing.
const cancelCheckRows = 256

// rowContext is the context for a query that streams many rows. The
// SQLite driver (mattn/go-sqlite3) starts a goroutine and a channel for
// every row it fetches under a cancellable context, so it can interrupt a
// slow step; over a million rows that is a third of the CPU time. Each
// step of a query that walks an index in order is short, so for SQLite the
// query runs uncancellable and the caller's row loop checks ctx every
// cancelCheckRows rows instead.
func rowContext(ctx context.Context, d dialect) context.Context {
	if d.name == "sqlite" {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// fill reads "state|created|last used|failures|locked until|codes left|temp code until".
func (r *StatusRow) fill(summary string, now time.Time) error {
	f := strings.Split(summary, "|")
	if len(f) != 7 {
		return fmt.Errorf("unexpected credential summary %q", summary)
	}
	r.State = StatusEnabled
	if f[0] == StatePending {
		r.State = StatusPending
	}
	var err error
	if r.EnrolledAt, err = parseRFC3339(f[1]); err != nil {
		return err
	}
	if r.LastUsedAt, err = parseRFC3339(f[2]); err != nil {
		return err
	}
	if r.Failures, err = strconv.Atoi(f[3]); err != nil {
		return err
	}
	locked, err := parseRFC3339(f[4])
	if err != nil {
		return err
	}
	if locked != nil && now.Before(*locked) {
		r.State, r.LockedUntil = StatusLocked, locked
	}
	if r.BackupCodesLeft, err = strconv.Atoi(f[5]); err != nil {
		return err
	}
	temp, err := parseRFC3339(f[6])
	if err != nil {
		return err
	}
	if temp != nil && now.Before(*temp) {
		r.TempCodeUntil = temp
	}
	return nil
}

func parseRFC3339(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
