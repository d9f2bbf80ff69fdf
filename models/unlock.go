package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// Unlock clears a lockout and the failure count. It reports whether the
// user was locked at all; unlocking an unlocked user is not an error. It
// is UnlockMany of one.
func (s *Service) Unlock(ctx context.Context, db *gorm.DB, user User) (wasLocked bool, err error) {
	users := []User{user}
	locked := make([]bool, 1)
	err = s.runOne(ctx, db, users, s.unlockWrite(users, locked))
	return locked[0] && err == nil, err
}

// UnlockMany clears the lockout of many users, a batch per transaction
// (see Service.run). done reports whether each user was locked.
func (s *Service) UnlockMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, wasLocked bool, err error)) error {
	locked := make([]bool, len(users))
	return s.run(ctx, db, users, bulk, s.unlockWrite(users, locked), func(i int, err error) {
		done(i, locked[i] && err == nil, err)
	})
}

// unlockWrite clears the lockouts and records in locked[i] whether users[i]
// was locked.
func (s *Service) unlockWrite(users []User, locked []bool) write {
	now := s.now()
	return s.enrolledOnly(users, ActionUnlock,
		func(tx *gorm.DB, _ dialect, enrolled []int) error {
			ids := idsOf(users, enrolled)
			var rows []Credential
			if err := tx.Table(s.cfg.Tables.Credentials).Select("user_id, locked_until").Where("user_id IN ?", ids).Find(&rows).Error; err != nil {
				return fmt.Errorf("read lockouts: %w", err)
			}
			until := make(map[string]bool, len(rows))
			for _, r := range rows {
				until[r.UserID] = r.LockedUntil != nil && now.Before(*r.LockedUntil)
			}
			for _, i := range enrolled {
				locked[i] = until[users[i].ID]
			}
			err := tx.Table(s.cfg.Tables.Credentials).Where("user_id IN ?", ids).
				Updates(map[string]any{"failures": 0, "locked_until": nil}).Error
			if err != nil {
				return fmt.Errorf("clear lockouts: %w", err)
			}
			return nil
		},
		func(i int) (string, string) {
			if locked[i] {
				return "unlocked", ""
			}
			return "not locked", ""
		})
}
