package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

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
	ActionRotateKey   = "rotate-key"
	ActionExport      = "export"    // a secret left the database (export)
	ActionImport      = "import"    // an enrollment came in from another system
	ActionDiagnose    = "diagnose"  // verify --diagnose: nothing consumed, still on record
	ActionTempCode    = "temp-code" // a temporary access code was issued
	ActionOnChange    = "on-change" // a change hook failed; the change stands
)

// AuditActions lists every action the audit log records, for --action;
// it stands beside the constants so that a new action is added to both.
var AuditActions = []string{ActionEnroll, ActionVerify, ActionBackupCodes, ActionDisable, ActionUnlock, ActionRotateKey, ActionExport, ActionImport, ActionDiagnose, ActionTempCode, ActionOnChange}

// auditColumns are the audit table's columns (but its serial id) in the
// order of AuditEntry.values.
var auditColumns = []string{"at", "actor", "host", "action", "user_id", "user_login", "outcome", "reason"}

func (e *AuditEntry) values() []any {
	return []any{e.At, e.Actor, e.Host, e.Action, e.UserID, e.UserLogin, e.Outcome, e.Reason}
}

func (s *Service) auditEntry(action string, u User, outcome, reason string) AuditEntry {
	return AuditEntry{
		At: s.now(), Actor: s.cfg.Actor, Host: s.cfg.Host, Action: action,
		UserID: u.ID, UserLogin: u.Login, Outcome: outcome, Reason: reason,
	}
}

func (s *Service) audit(tx *gorm.DB, action string, u User, outcome, reason string) error {
	return s.writeAudit(tx, []AuditEntry{s.auditEntry(action, u, outcome, reason)})
}

func (s *Service) writeAudit(tx *gorm.DB, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	d, err := dialectOf(tx)
	if err != nil {
		return err
	}
	if err := s.fillLogins(tx, entries); err != nil {
		return err
	}
	rows := make([][]any, len(entries))
	for i := range entries {
		rows[i] = entries[i].values()
	}
	if err := insertRows(tx, d, s.cfg.Tables.AuditLog, auditColumns, rows); err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	collectChanges(tx, entries)
	return nil
}

// fillLogins gives entries about a user named by id alone (an application
// calling Verify with User{ID: …}) the login from the users table, so that
// the audit log reads the same whoever wrote it. The CLI always knows the
// login; then this costs nothing.
func (s *Service) fillLogins(tx *gorm.DB, entries []AuditEntry) error {
	var refs []UserRef
	for _, e := range entries {
		if e.UserID != "" && e.UserLogin == "" {
			refs = append(refs, UserRef{ByID: true, Value: e.UserID})
		}
	}
	if len(refs) == 0 {
		return nil
	}
	users, errs, err := s.LookupUsers(tx.Statement.Context, tx, refs)
	if err != nil {
		return fmt.Errorf("write audit log: look up logins: %w", err)
	}
	login := make(map[string]string, len(refs))
	for i, u := range users {
		if errs[i] == nil {
			login[refs[i].Value] = u.Login
		}
	}
	for i := range entries {
		if entries[i].UserLogin == "" {
			entries[i].UserLogin = login[entries[i].UserID]
		}
	}
	return nil
}

// AuditFilter selects audit entries; zero values select everything.
type AuditFilter struct {
	UserID string
	Action string
	Since  time.Time
	Limit  int
}

// EachAuditEntry streams audit entries matching f, newest first.
func (s *Service) EachAuditEntry(ctx context.Context, db *gorm.DB, f AuditFilter, fn func(AuditEntry) error) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	q := sess.db.Table(s.cfg.Tables.AuditLog).Order("at DESC, id DESC")
	if f.UserID != "" {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", truncateTime(f.Since))
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		if err := sess.db.ScanRows(rows, &e); err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		e.At = e.At.UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	return nil
}
