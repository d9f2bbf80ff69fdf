package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Temporary access codes: support issues one to let a user in once who has
// lost their phone, or is locked out, without disabling 2FA. A code has the
// backup codes' form (xxxx-xxxx-xxxx, 60 bits), is stored only as a salted
// SHA-256 hash, is accepted once by Verify and expires after its TTL (at
// most MaxTempCodeTTL). A user has at most one: a new code replaces the old.
const (
	DefaultTempCodeTTL = time.Hour
	MaxTempCodeTTL     = 24 * time.Hour
)

// MethodTempCode is VerifyResult.Method for an accepted temporary code.
const MethodTempCode = "temporary code"

// ErrInvalidTTL: a temporary code's TTL outside (0, MaxTempCodeTTL].
var ErrInvalidTTL = errors.New("temporary code TTL must be more than 0 and at most 24h")

// ErrEnrollmentPending: a temporary code was asked for a user whose
// enrollment is still pending. There is no working second factor to
// bypass (SecondFactor asks for the first code, which only the app can
// give), so none is issued. It matches ErrNotEnrolled under errors.Is.
var ErrEnrollmentPending = fmt.Errorf("%w (enrollment pending: confirm it with a code from the app, or re-enroll with enroll --force)", ErrNotEnrolled)

// TempCode is an issued temporary access code, shown once.
type TempCode struct {
	Code      string
	ExpiresAt time.Time
}

// tempCodeColumns are the temp-code table's columns in the order of
// tempCodeRow.values.
var tempCodeColumns = []string{"user_id", "salt", "hash", "created_at", "expires_at", "used_at", "created_by", "reason"}

type tempCodeRow struct {
	UserID    string
	Salt      []byte
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedBy string
	Reason    string
}

func (r *tempCodeRow) values() []any {
	return []any{r.UserID, r.Salt, r.Hash, r.CreatedAt, r.ExpiresAt, r.UsedAt, r.CreatedBy, r.Reason}
}

// CheckTempCodeTTL returns ErrInvalidTTL unless 0 < ttl <= MaxTempCodeTTL.
func CheckTempCodeTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > MaxTempCodeTTL {
		return fmt.Errorf("%w (got %s)", ErrInvalidTTL, ttl)
	}
	return nil
}

// IssueTempCode issues a temporary access code for an enrolled user,
// replacing any earlier one, with reason in the audit log. A user without
// 2FA gets ErrNotEnrolled, a pending enrollment ErrEnrollmentPending. It is IssueTempCodes of one.
func (s *Service) IssueTempCode(ctx context.Context, db *gorm.DB, user User, ttl time.Duration, reason string) (TempCode, error) {
	if err := checkTempCodeArgs(ttl, reason); err != nil {
		return TempCode{}, fmt.Errorf("temp-code %s: %w", user, err)
	}
	users := []User{user}
	out := make([]TempCode, 1)
	if err := s.runOne(ctx, db, users, s.tempCodeWrite(users, ttl, reason, out)); err != nil {
		return TempCode{}, err
	}
	return out[0], nil
}

// IssueTempCodes issues temporary codes for many users, a batch per
// transaction (see Service.run). done gets each user's code.
func (s *Service) IssueTempCodes(ctx context.Context, db *gorm.DB, users []User, ttl time.Duration, reason string, bulk BulkOptions, done func(i int, code TempCode, err error)) error {
	if err := checkTempCodeArgs(ttl, reason); err != nil {
		return err
	}
	out := make([]TempCode, len(users))
	return s.run(ctx, db, users, bulk, s.tempCodeWrite(users, ttl, reason, out), func(i int, err error) {
		code := out[i]
		out[i] = TempCode{}
		if err != nil {
			code = TempCode{}
		}
		done(i, code, err)
	})
}

func checkTempCodeArgs(ttl time.Duration, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	return CheckTempCodeTTL(ttl)
}

func (s *Service) tempCodeWrite(users []User, ttl time.Duration, reason string, out []TempCode) write {
	rows := make([]tempCodeRow, len(users))
	pending := make([]bool, len(users))
	w := s.enrolledOnly(users, ActionTempCode,
		func(tx *gorm.DB, d dialect, enrolled []int) error {
			states := map[string]string{}
			var creds []Credential
			if err := tx.Table(s.cfg.Tables.Credentials).Select("user_id, state").Where("user_id IN ?", idsOf(users, enrolled)).Find(&creds).Error; err != nil {
				return fmt.Errorf("read credentials: %w", err)
			}
			for _, c := range creds {
				states[c.UserID] = c.State
			}
			var active []int
			for _, i := range enrolled {
				if pending[i] = states[users[i].ID] == StatePending; !pending[i] {
					active = append(active, i)
				}
			}
			if len(active) == 0 {
				return nil
			}
			if err := s.deleteTempCodes(tx, idsOf(users, active)); err != nil {
				return err
			}
			values := make([][]any, len(active))
			for j, i := range active {
				values[j] = rows[i].values()
			}
			if err := insertRows(tx, d, s.cfg.Tables.TempCodes, tempCodeColumns, values); err != nil {
				return fmt.Errorf("save temporary code: %w", err)
			}
			return nil
		},
		func(i int) (string, string) {
			if pending[i] {
				return "refused (pending)", reason
			}
			return "issued, expires " + rows[i].ExpiresAt.UTC().Format(time.RFC3339), reason
		})
	apply := w.apply
	w.apply = func(tx *gorm.DB, d dialect, existing map[string]string, lo, hi int, errs []error) error {
		clear(pending[lo:hi])
		if err := apply(tx, d, existing, lo, hi, errs); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			if pending[i] && errs[i-lo] == nil {
				errs[i-lo] = ErrEnrollmentPending
			}
		}
		return nil
	}
	w.prepare = func(lo, hi int) error {
		clear(rows[:lo])
		now := truncateTime(s.now())
		for i := lo; i < hi; i++ {
			code, err := newBackupCode(s.cfg.Random)
			if err != nil {
				return err
			}
			salt, err := newSalt(s.cfg.Random)
			if err != nil {
				return err
			}
			normalized, _ := NormalizeBackupCode(code)
			rows[i] = tempCodeRow{UserID: users[i].ID, Salt: salt, Hash: hashBackupCode(salt, normalized),
				CreatedAt: now, ExpiresAt: now.Add(ttl), CreatedBy: s.cfg.Actor, Reason: reason}
			out[i] = TempCode{Code: code, ExpiresAt: rows[i].ExpiresAt}
		}
		return nil
	}
	return w
}

func (s *Service) deleteTempCodes(tx *gorm.DB, userIDs []string) error {
	if err := tx.Table(s.cfg.Tables.TempCodes).Where("user_id IN ?", userIDs).Delete(&tempCodeRow{}).Error; err != nil {
		return fmt.Errorf("delete temporary codes: %w", err)
	}
	return nil
}

// useTempCode accepts code as user's temporary code when it matches an
// unused, unexpired one. It reports false, writing nothing, when it does
// not match; a match that is used, expired, or lost the race is rejected
// (out.rejected) and audited. Of concurrent uses of one code exactly one
// marks it used: the UPDATE is conditional on used_at IS NULL and
// expires_at > now. On success it clears the lockout and failure count.
func (s *Service) useTempCode(tx *gorm.DB, d dialect, user User, code string, now time.Time, out *verifyOutcome) (bool, error) {
	var rows []struct {
		Salt, Hash []byte
		ExpiresAt  time.Time
		UsedAt     *time.Time
		CreatedBy  string
		Reason     string
	}
	err := tx.Raw("SELECT salt, hash, expires_at, used_at, created_by, reason FROM "+d.quote(s.cfg.Tables.TempCodes)+" WHERE user_id = ?", user.ID).Scan(&rows).Error
	if err != nil {
		return false, fmt.Errorf("read temporary code: %w", err)
	}
	if len(rows) == 0 || !backupCodeMatches(rows[0].Salt, rows[0].Hash, code) {
		return false, nil
	}
	r := rows[0]
	reason := fmt.Sprintf("issued by %s: %s", r.CreatedBy, r.Reason)
	switch {
	case r.UsedAt != nil:
		out.rejected = fmt.Errorf("%w: temporary code already used at %s", ErrReplayed, r.UsedAt.UTC().Format(time.RFC3339))
		return true, s.audit(tx, ActionVerify, user, "replayed (temporary code)", reason)
	case !now.Before(r.ExpiresAt):
		out.rejected = fmt.Errorf("%w: temporary code expired at %s", ErrCodeRejected, r.ExpiresAt.UTC().Format(time.RFC3339))
		return true, s.audit(tx, ActionVerify, user, "rejected (temporary code expired)", reason)
	}
	upd := tx.Table(s.cfg.Tables.TempCodes).Where("user_id = ? AND used_at IS NULL AND expires_at > ?", user.ID, now).Update("used_at", now)
	if upd.Error != nil {
		return false, fmt.Errorf("consume temporary code: %w", upd.Error)
	}
	if upd.RowsAffected == 0 {
		out.rejected = ErrReplayed
		return true, s.audit(tx, ActionVerify, user, "replayed (temporary code)", reason)
	}
	err = tx.Table(s.cfg.Tables.Credentials).Where("user_id = ?", user.ID).
		Updates(map[string]any{"last_used_at": now, "failures": 0, "locked_until": nil}).Error
	if err != nil {
		return false, fmt.Errorf("record accepted code: %w", err)
	}
	out.result = VerifyResult{Method: MethodTempCode}
	return true, s.audit(tx, ActionVerify, user, "ok (temporary code)", reason)
}
