package models

import (
	"fmt"
	"time"
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

// BackupCode is one single-use recovery code, stored only as a salted hash.
type BackupCode struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    string
	Salt      []byte
	Hash      []byte
	CreatedAt time.Time
	UsedAt    *time.Time
}

// AuditEntry is one recorded action. It never holds a secret, a code or a
// hash: only who did what to whom, and how it ended.
type AuditEntry struct {
	ID        int64 `gorm:"primaryKey"`
	At        time.Time
	Actor     string
	Host      string
	Action    string
	UserID    string
	UserLogin string
	Outcome   string
	Reason    string
}

// Audit actions.
const (
	ActionEnroll      = "enroll"
	ActionVerify      = "verify"
	ActionBackupCodes = "backup-codes"
	ActionDisable     = "disable"
	ActionUnlock      = "unlock"
)

// AuditActions lists every action the audit log records.
var AuditActions = []string{ActionEnroll, ActionVerify, ActionBackupCodes, ActionDisable, ActionUnlock, ActionRotateKey, ActionExport, ActionImport, ActionDiagnose}
