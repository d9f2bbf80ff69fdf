package models

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// DefaultBatchSize is how many users one bulk transaction covers: large
// enough that per-transaction costs (fsync, round trips) vanish, small
// enough that locks are held briefly and a retry is cheap.
const DefaultBatchSize = 500

// batches splits n items into runs of at most size, also ending a run
// before an item whose user is already in it, so that one transaction
// never touches a user twice.
func batches(ids []string, size int) [][2]int {
	if size <= 0 {
		size = DefaultBatchSize
	}
	var out [][2]int
	lo := 0
	seen := map[string]bool{}
	for i, id := range ids {
		if i-lo == size || seen[id] {
			out = append(out, [2]int{lo, i})
			lo = i
			clear(seen)
		}
		seen[id] = true
	}
	if lo < len(ids) {
		out = append(out, [2]int{lo, len(ids)})
	}
	return out
}

func userIDs(users []User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}

// BulkOptions control a bulk run.
type BulkOptions struct {
	BatchSize int // users per transaction; default DefaultBatchSize
}

// EnrollMany saves many enrollments, a batch of users per transaction;
// each user is saved completely or not at all. When a batch's
// transaction fails, its users are retried one transaction each, so one
// failing user does not undo the others — unless the failure is the
// database's own (gone, locked, read-only, full, cancelled): then the run
// stops with ErrStopped, as every further user would fail the same way.
// done is called for every enrollment, in order, as soon as its batch is
// settled.
func (s *Service) EnrollMany(ctx context.Context, db *gorm.DB, es []*Enrollment, opt EnrollOptions, bulk BulkOptions, done func(i int, res EnrollResult, err error)) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	if err := s.checkSealingKey(sess); err != nil {
		return err
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.User.ID
	}
	for _, b := range batches(ids, bulk.BatchSize) {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := b[0], b[1]
		results := make([]EnrollResult, hi-lo)
		errs := make([]error, hi-lo)
		prepared := make([]*preparedEnrollment, hi-lo)
		for i := lo; i < hi; i++ {
			prepared[i-lo], errs[i-lo] = s.prepareEnrollment(es[i], opt)
		}
		err := s.transaction(sess, func(tx *gorm.DB) error {
			existing, err := s.existingStates(tx, sess.d, ids[lo:hi])
			if err != nil {
				return err
			}
			var write []*preparedEnrollment
			for j, p := range prepared {
				if errs[j] != nil {
					continue
				}
				results[j], errs[j] = s.decide(p, existing, opt)
				if errs[j] == nil && !results[j].Skipped {
					write = append(write, p)
				}
			}
			if len(write) == 0 {
				return nil
			}
			return s.writeEnrollments(tx, write)
		})
		if err != nil {
			if isEnvironmental(err) {
				return fmt.Errorf("%w: %w", ErrStopped, err)
			}
			for i := lo; i < hi; i++ {
				results[i-lo], errs[i-lo] = s.enroll(ctx, db, es[i], opt)
				if isEnvironmental(errs[i-lo]) {
					return fmt.Errorf("%w: %w", ErrStopped, errs[i-lo])
				}
			}
		}
		for i := lo; i < hi; i++ {
			err := errs[i-lo]
			if err != nil {
				err = fmt.Errorf("enroll %s: %w", es[i].User, err)
			}
			done(i, results[i-lo], err)
		}
	}
	return nil
}

// DisableMany disables 2FA for many users, a batch per transaction, with
// the same per-user atomicity and fallback as EnrollMany. A user without
// 2FA gets ErrNotEnrolled and nothing is written for them.
func (s *Service) DisableMany(ctx context.Context, db *gorm.DB, users []User, reason string, bulk BulkOptions, done func(i int, err error)) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	return s.bulkWrite(ctx, db, users, bulk, ActionDisable,
		func(tx *gorm.DB, enrolled []string) error { return s.deleteEnrollments(tx, enrolled) },
		func(string) (string, string) { return "disabled", reason },
		func(u User) error { return s.Disable(ctx, db, u, reason) },
		done)
}

// RegenerateMany replaces the backup codes of many users, a batch per
// transaction. codes is called with each user's new plaintext codes.
func (s *Service) RegenerateMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, codes []string, err error)) error {
	plain := make(map[string][]string, len(users))
	rows := make(map[string][]BackupCode, len(users))
	now := s.now()
	for _, u := range users {
		if _, ok := plain[u.ID]; ok {
			continue
		}
		p, r, err := s.newBackupCodes(u.ID, now)
		if err != nil {
			return err
		}
		plain[u.ID], rows[u.ID] = p, r
	}
	return s.bulkWrite(ctx, db, users, bulk, ActionBackupCodes,
		func(tx *gorm.DB, enrolled []string) error {
			if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id IN ?", enrolled).Delete(&BackupCode{}).Error; err != nil {
				return fmt.Errorf("delete old codes: %w", err)
			}
			all := make([]BackupCode, 0, len(enrolled)*s.cfg.BackupCodeCount)
			for _, id := range enrolled {
				all = append(all, rows[id]...)
			}
			d, err := dialectOf(tx)
			if err != nil {
				return err
			}
			return s.insertBackupCodes(tx, d, all)
		},
		func(string) (string, string) { return "regenerated", "" },
		func(u User) error {
			codes, err := s.RegenerateBackupCodes(ctx, db, u)
			if err == nil {
				plain[u.ID] = codes
			}
			return err
		},
		func(i int, err error) {
			var codes []string
			if err == nil {
				codes = plain[users[i].ID]
			}
			done(i, codes, err)
		})
}

// UnlockMany clears the lockout of many users, a batch per transaction.
// done reports whether each user was locked.
func (s *Service) UnlockMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, wasLocked bool, err error)) error {
	locked := map[string]bool{}
	now := s.now()
	return s.bulkWrite(ctx, db, users, bulk, ActionUnlock,
		func(tx *gorm.DB, enrolled []string) error {
			var rows []Credential
			if err := tx.Table(s.cfg.Tables.Credentials).Select("user_id, locked_until").Where("user_id IN ?", enrolled).Find(&rows).Error; err != nil {
				return fmt.Errorf("read lockouts: %w", err)
			}
			for _, r := range rows {
				locked[r.UserID] = r.LockedUntil != nil && now.Before(*r.LockedUntil)
			}
			err := tx.Table(s.cfg.Tables.Credentials).Where("user_id IN ?", enrolled).
				Updates(map[string]any{"failures": 0, "locked_until": nil}).Error
			if err != nil {
				return fmt.Errorf("clear lockouts: %w", err)
			}
			return nil
		},
		func(id string) (string, string) {
			if locked[id] {
				return "unlocked", ""
			}
			return "not locked", ""
		},
		func(u User) error {
			was, err := s.Unlock(ctx, db, u)
			locked[u.ID] = was
			return err
		},
		func(i int, err error) { done(i, locked[users[i].ID], err) })
}

// bulkWrite is the shape shared by disable, regenerate and unlock: per
// batch, lock the users' credentials, apply change to the enrolled ones,
// audit each, and report ErrNotEnrolled for the rest; on a failed batch,
// retry each user alone with single.
func (s *Service) bulkWrite(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, action string,
	change func(tx *gorm.DB, enrolled []string) error,
	outcome func(userID string) (outcome, reason string),
	single func(User) error,
	done func(i int, err error)) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	ids := userIDs(users)
	for _, b := range batches(ids, bulk.BatchSize) {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := b[0], b[1]
		errs := make([]error, hi-lo)
		err := s.transaction(sess, func(tx *gorm.DB) error {
			existing, err := s.existingStates(tx, sess.d, ids[lo:hi])
			if err != nil {
				return err
			}
			var enrolled []string
			for i := lo; i < hi; i++ {
				if _, ok := existing[ids[i]]; ok {
					enrolled = append(enrolled, ids[i])
				} else {
					errs[i-lo] = fmt.Errorf("%s %s: %w", action, users[i], ErrNotEnrolled)
				}
			}
			if len(enrolled) == 0 {
				return nil
			}
			if err := change(tx, enrolled); err != nil {
				return err
			}
			audits := make([]AuditEntry, 0, len(enrolled))
			for i := lo; i < hi; i++ {
				if errs[i-lo] == nil {
					o, reason := outcome(ids[i])
					audits = append(audits, s.auditEntry(action, users[i], o, reason))
				}
			}
			return s.writeAudit(tx, audits)
		})
		if err != nil {
			if isEnvironmental(err) {
				return fmt.Errorf("%w: %w", ErrStopped, err)
			}
			for i := lo; i < hi; i++ {
				errs[i-lo] = single(users[i])
				if isEnvironmental(errs[i-lo]) {
					return fmt.Errorf("%w: %w", ErrStopped, errs[i-lo])
				}
			}
		}
		for i := lo; i < hi; i++ {
			done(i, errs[i-lo])
		}
	}
	return nil
}
