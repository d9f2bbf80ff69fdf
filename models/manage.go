package models

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// RegenerateBackupCodes invalidates every backup code of user and returns
// a new set, shown once. A concurrent verify with an old code either
// consumed it before this transaction or finds it gone: never both.
func (s *Service) RegenerateBackupCodes(ctx context.Context, db *gorm.DB, user User) ([]string, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return nil, err
	}
	now := s.now()
	plain, rows, err := s.newBackupCodes(user.ID, now)
	if err != nil {
		return nil, fmt.Errorf("backup codes for %s: %w", user, err)
	}
	err = s.transaction(sess, func(tx *gorm.DB) error {
		if _, err := s.lockCredential(tx, sess.d, user.ID); err != nil {
			return err
		}
		if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id = ?", user.ID).Delete(&BackupCode{}).Error; err != nil {
			return fmt.Errorf("delete old codes: %w", err)
		}
		if err := s.insertBackupCodes(tx, sess.d, rows); err != nil {
			return err
		}
		return s.audit(tx, ActionBackupCodes, user, "regenerated", "")
	})
	if err != nil {
		return nil, fmt.Errorf("backup codes for %s: %w", user, err)
	}
	return plain, nil
}

// ErrReasonRequired: disable needs a reason for the audit log.
var ErrReasonRequired = errors.New("a reason is required (it goes to the audit log)")

// Disable removes user's 2FA: the credential and every backup code, with
// reason recorded in the audit log. A user without 2FA gets ErrNotEnrolled
// and nothing is written.
func (s *Service) Disable(ctx context.Context, db *gorm.DB, user User, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("disable %s: %w", user, ErrReasonRequired)
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	err = s.transaction(sess, func(tx *gorm.DB) error {
		if _, err := s.lockCredential(tx, sess.d, user.ID); err != nil {
			return err
		}
		if err := s.deleteEnrollments(tx, []string{user.ID}); err != nil {
			return err
		}
		return s.audit(tx, ActionDisable, user, "disabled", reason)
	})
	if err != nil {
		return fmt.Errorf("disable %s: %w", user, err)
	}
	return nil
}

// Unlock clears a lockout and the failure count. It reports whether the
// user was locked at all; unlocking an unlocked user is not an error.
func (s *Service) Unlock(ctx context.Context, db *gorm.DB, user User) (wasLocked bool, err error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return false, err
	}
	now := s.now()
	err = s.transaction(sess, func(tx *gorm.DB) error {
		cred, err := s.lockCredential(tx, sess.d, user.ID)
		if err != nil {
			return err
		}
		wasLocked = cred.LockedUntil != nil && now.Before(*cred.LockedUntil)
		err = tx.Table(s.cfg.Tables.Credentials).Where("user_id = ?", user.ID).
			Updates(map[string]any{"failures": 0, "locked_until": nil}).Error
		if err != nil {
			return fmt.Errorf("clear lockout: %w", err)
		}
		outcome := "unlocked"
		if !wasLocked {
			outcome = "not locked"
		}
		return s.audit(tx, ActionUnlock, user, outcome, "")
	})
	if err != nil {
		return false, fmt.Errorf("unlock %s: %w", user, err)
	}
	return wasLocked, nil
}
