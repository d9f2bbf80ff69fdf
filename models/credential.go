package models

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Credential states as stored.
const (
	StatePending = "pending"
	StateActive  = "active"
)

// Credential is one enrolled user's TOTP secret and verification state.
type Credential struct {
	UserID      string `gorm:"primaryKey"`
	Secret      []byte // AES-256-GCM, bound to UserID
	KeyID       string
	Algorithm   string
	Digits      int
	Period      int
	State       string
	CreatedAt   time.Time
	ActivatedAt *time.Time
	LastUsedAt  *time.Time
	LastStep    int64 // last accepted time step; -1 before the first
	Failures    int   // consecutive failed verifications
	LockedUntil *time.Time
	EnrolledBy  string
}

// params returns the credential's RFC 6238 parameters, refusing values no
// enrollment can have written: a row edited by hand (period 0, say) must
// fail as an error, not as a division by zero in the login path.
func (c *Credential) params() (Params, error) {
	p := Params{Algorithm: c.Algorithm, Digits: c.Digits, Period: c.Period}
	if err := p.Validate(); err != nil {
		return Params{}, fmt.Errorf("%w: %w", ErrCorruptCredential, err)
	}
	return p, nil
}

// credentialColumns are the credential table's columns in the order of
// Credential.values and Credential.scanTargets; TestColumnListsMatchSchema
// holds the three and the schema together.
var credentialColumns = []string{"user_id", "secret", "key_id", "algorithm", "digits", "period", "state", "created_at",
	"activated_at", "last_used_at", "last_step", "failures", "locked_until", "enrolled_by"}

func (c *Credential) values() []any {
	return []any{c.UserID, c.Secret, c.KeyID, c.Algorithm, c.Digits, c.Period, c.State, c.CreatedAt,
		c.ActivatedAt, c.LastUsedAt, c.LastStep, c.Failures, c.LockedUntil, c.EnrolledBy}
}

func (c *Credential) scanTargets(activated, lastUsed, locked *sql.NullTime) []any {
	return []any{&c.UserID, &c.Secret, &c.KeyID, &c.Algorithm, &c.Digits, &c.Period, &c.State, &c.CreatedAt,
		activated, lastUsed, &c.LastStep, &c.Failures, locked, &c.EnrolledBy}
}

// stateName is the status name of a stored credential state.
func stateName(state string) string {
	if state == StateActive {
		return StatusEnabled
	}
	return StatusPending
}

// existingStates returns the credential state of each of ids that has one,
// locking those rows where the database has row locks.
func (s *Service) existingStates(tx *gorm.DB, d dialect, ids []string) (map[string]string, error) {
	q := "SELECT user_id, state FROM " + d.quote(s.cfg.Tables.Credentials) + " WHERE user_id IN ?" + d.forUpdate()
	var arg any = ids
	if list, ok := sqliteTextList(d, ids); ok {
		// One array parameter instead of a list of thousands that SQLite
		// would parse anew for every batch.
		q = "SELECT user_id, state FROM " + d.quote(s.cfg.Tables.Credentials) + " WHERE user_id IN (SELECT value FROM json_each(?))"
		arg = list
	}
	rows, err := tx.Raw(q, arg).Rows()
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	defer rows.Close()
	states := make(map[string]string, len(ids))
	var id, state string
	for rows.Next() {
		if err := rows.Scan(&id, &state); err != nil {
			return nil, fmt.Errorf("read credentials: %w", err)
		}
		states[id] = state
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	return states, nil
}

// sqliteTextList encodes values as a JSON array for json_each on SQLite,
// whose value column then yields each as the same text. It declines
// (false) on other databases and for a value JSON cannot carry byte for
// byte (invalid UTF-8, a NUL).
func sqliteTextList(d dialect, values []string) (string, bool) {
	if d.name != "sqlite" {
		return "", false
	}
	for _, v := range values {
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return "", false
		}
	}
	b, err := json.Marshal(values)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// lockCredential reads a user's credential inside tx, locking the row on
// databases with row locks so concurrent verifications queue behind it.
func (s *Service) lockCredential(tx *gorm.DB, d dialect, userID string) (*Credential, error) {
	quoted := make([]string, len(credentialColumns))
	for i, c := range credentialColumns {
		quoted[i] = d.quote(c)
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM " + d.quote(s.cfg.Tables.Credentials) + " WHERE user_id = ?" + d.forUpdate()
	var (
		c                           Credential
		activated, lastUsed, locked sql.NullTime
	)
	err := tx.Raw(q, userID).Row().Scan(c.scanTargets(&activated, &lastUsed, &locked)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("read credential: %w", err)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.ActivatedAt, c.LastUsedAt, c.LockedUntil = nullTimePtr(activated), nullTimePtr(lastUsed), nullTimePtr(locked)
	return &c, nil
}

// rewriteCredential overwrites every column of c's existing row.
func (s *Service) rewriteCredential(tx *gorm.DB, d dialect, c *Credential) error {
	set := make([]string, 0, len(credentialColumns)-1)
	for _, col := range credentialColumns[1:] { // all but user_id, the key
		set = append(set, d.quote(col)+" = ?")
	}
	values := c.values()
	args := append(values[1:len(values):len(values)], c.UserID)
	q := "UPDATE " + d.quote(s.cfg.Tables.Credentials) + " SET " + strings.Join(set, ", ") + " WHERE user_id = ?"
	res := tx.Exec(q, args...)
	if res.Error != nil {
		return fmt.Errorf("replace credential: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		// The row was locked by this transaction; it cannot have gone.
		return fmt.Errorf("replace credential: %d rows changed, want 1", res.RowsAffected)
	}
	return nil
}

func (s *Service) deleteEnrollments(tx *gorm.DB, userIDs []string) error {
	if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id IN ?", userIDs).Delete(&BackupCode{}).Error; err != nil {
		return fmt.Errorf("delete backup codes: %w", err)
	}
	if err := tx.Table(s.cfg.Tables.Credentials).Where("user_id IN ?", userIDs).Delete(&Credential{}).Error; err != nil {
		return fmt.Errorf("delete credentials: %w", err)
	}
	return s.deleteTempCodes(tx, userIDs)
}

// nullTimePtr converts a scanned nullable time.
func nullTimePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}
