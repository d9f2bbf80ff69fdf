package models

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// Disable removes user's 2FA: the credential and every backup code, with
// reason recorded in the audit log. A user without 2FA gets ErrNotEnrolled
// and nothing is written. It is DisableMany of one.
func (s *Service) Disable(ctx context.Context, db *gorm.DB, user User, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("disable %s: %w", user, ErrReasonRequired)
	}
	users := []User{user}
	return s.runOne(ctx, db, users, s.disableWrite(users, reason))
}

// DisableMany disables 2FA for many users, a batch per transaction (see
// Service.run). A user without 2FA gets ErrNotEnrolled and nothing is
// written for them.
func (s *Service) DisableMany(ctx context.Context, db *gorm.DB, users []User, reason string, bulk BulkOptions, done func(i int, err error)) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	return s.run(ctx, db, users, bulk, s.disableWrite(users, reason), done)
}

func (s *Service) disableWrite(users []User, reason string) write {
	return s.enrolledOnly(users, ActionDisable,
		func(tx *gorm.DB, _ dialect, enrolled []int) error {
			return s.deleteEnrollments(tx, idsOf(users, enrolled))
		},
		func(int) (string, string) { return "disabled", reason })
}
