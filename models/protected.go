package models

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// ErrProtected: the user is a protected account (UsersTable.ProtectedColumn)
// and the operation would weaken or replace its second factor without an
// explicit override.
var ErrProtected = errors.New("protected account: refused without --allow-protected")

// Audit outcomes of the protected-account guard.
const (
	OutcomeRefusedProtected  = "refused (protected)"
	OutcomeOverrideProtected = "override (protected)"
	// ProtectedOverrideSuffix ends the reason of an overridden refusal.
	ProtectedOverrideSuffix = "(protected account, override)"
)

// RecordProtected writes one audit row per user for action, with outcome
// and reason, in one transaction: the protected-account guard's refusals
// and overrides.
func (s *Service) RecordProtected(ctx context.Context, db *gorm.DB, action string, users []User, outcome, reason string) error {
	if len(users) == 0 {
		return nil
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	entries := make([]AuditEntry, len(users))
	for i, u := range users {
		entries[i] = s.auditEntry(action, u, outcome, reason)
	}
	return s.transaction(sess, func(tx *gorm.DB) error { return s.writeAudit(tx, entries) })
}
