package models

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Verification methods.
const (
	MethodTOTP   = "totp"
	MethodBackup = "backup code"
)

// VerifyResult describes an accepted code.
type VerifyResult struct {
	Method          string
	Activated       bool  // this code activated a pending enrollment
	Step            int64 // the accepted time step (TOTP)
	BackupCodesLeft int   // unused backup codes after this one (backup)
}

// LockedError is returned while a user's 2FA is locked out.
type LockedError struct {
	Until time.Time
	// JustLocked is set when this very failure triggered the lockout.
	JustLocked bool
}

func (e *LockedError) Error() string {
	until := e.Until.UTC().Format(time.RFC3339)
	if e.JustLocked {
		return "wrong code; too many consecutive failures: 2FA locked until " + until
	}
	return "2FA locked until " + until + " after too many failed codes"
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked || target == ErrCodeRejected }

// Requirement is what a login needs once the password is right. Its zero
// value is SecondFactorRequired, so code that drops the error still asks
// for a code: the safe default of a security check.
type Requirement int

const (
	// SecondFactorRequired: ask for a code and let the user in only when
	// Verify accepts it.
	SecondFactorRequired Requirement = iota
	// NoSecondFactor: the user has no 2FA credential; the password is
	// enough.
	NoSecondFactor
)

func (r Requirement) String() string {
	if r == NoSecondFactor {
		return "no second factor"
	}
	return "second factor required"
}

// SecondFactor tells a login path, after the password check, whether to
// ask for a code. A user with a credential in any state needs one: a
// pending enrollment is confirmed by the first code. On any error the
// answer is SecondFactorRequired together with the error, and the caller
// must not let the user in.
//
// This is the only place a login path learns that a user has no 2FA.
// Verify's ErrNotEnrolled is no such knowledge: it can also mean 2FA was
// disabled between the two steps, and a caller that opened a session on
// it would fail open. Deny on every Verify error.
func (s *Service) SecondFactor(ctx context.Context, db *gorm.DB, user User) (Requirement, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return SecondFactorRequired, err
	}
	var n int64
	if err := sess.db.Table(s.cfg.Tables.Credentials).Where("user_id = ?", user.ID).Count(&n).Error; err != nil {
		return SecondFactorRequired, fmt.Errorf("second factor of %s: read credential: %w", user, err)
	}
	if n == 0 {
		return NoSecondFactor, nil
	}
	return SecondFactorRequired, nil
}

// Verify checks a TOTP code, a backup code or a temporary access code
// (IssueTempCode; accepted also during a lockout, which it clears) for
// user. On success the time step or code is consumed so that it is never
// accepted again; on a
// wrong code the failure counter rises and may lock the user out. Every
// outcome except malformed input is written to the audit log in the same
// transaction.
//
// Verify runs its own short transaction and must be given a handle that is
// not inside one (ErrInTransaction otherwise): a rejection is committed
// before it is returned, and inside the caller's transaction it would be
// only a savepoint that the caller's rollback-on-error undoes, so failed
// guesses would never add up to a lockout.
//
// Only a nil error lets the user in. Errors: ErrMalformedCode,
// ErrNotEnrolled, ErrCodeRejected (also ErrReplayed, ErrLocked,
// ErrPending, all of which match ErrCodeRejected under errors.Is),
// ErrNoKey, ErrWrongKey, ErrCorruptCredential, ErrInTransaction, or a
// database error. A login path decides whether a user has 2FA with
// SecondFactor before asking for the code, never from ErrNotEnrolled here.
func (s *Service) Verify(ctx context.Context, db *gorm.DB, user User, code string) (VerifyResult, error) {
	res, err := s.verify(ctx, db, user, code, false)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify %s: %w", user, err)
	}
	return res, nil
}

// Confirm activates a pending enrollment with a TOTP code from the app. A
// backup code does not confirm: it proves nothing about the authenticator.
func (s *Service) Confirm(ctx context.Context, db *gorm.DB, user User, code string) (VerifyResult, error) {
	res, err := s.verify(ctx, db, user, code, true)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("confirm %s: %w", user, err)
	}
	return res, nil
}

type codeKind int

const (
	kindTOTP codeKind = iota
	kindBackup
)

// classifyCode decides, before touching the database, whether input can be
// a TOTP code (6–8 digits) or a backup code (12 symbols). The two never
// overlap, so no input is tried both ways.
func classifyCode(input string) (codeKind, string, error) {
	if totp := normalizeTOTPInput(strings.TrimSpace(input)); len(totp) >= 6 && len(totp) <= 8 && IsTOTPCode(totp, len(totp)) {
		return kindTOTP, totp, nil
	}
	if backup, ok := NormalizeBackupCode(input); ok {
		return kindBackup, backup, nil
	}
	return 0, "", fmt.Errorf("%w: want a 6-digit code from the app or a backup code like xxxx-xxxx-xxxx", ErrMalformedCode)
}

// inTransaction reports whether db is bound to an open transaction (GORM
// hands out *sql.Tx, or its prepared-statement wrapper, as the pool then).
func inTransaction(db *gorm.DB) bool {
	_, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok
}

// verifyOutcome is what the transaction decided; rejections are committed
// (the failure counter and audit row must persist) and only then returned.
type verifyOutcome struct {
	result   VerifyResult
	rejected error
}

func (s *Service) verify(ctx context.Context, db *gorm.DB, user User, input string, confirmOnly bool) (VerifyResult, error) {
	if inTransaction(db) {
		return VerifyResult{}, ErrInTransaction
	}
	kind, code, err := classifyCode(input)
	if err != nil {
		return VerifyResult{}, err
	}
	if confirmOnly && kind != kindTOTP {
		return VerifyResult{}, ErrPending
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return VerifyResult{}, err
	}
	var out verifyOutcome
	err = s.transaction(sess, func(tx *gorm.DB) error {
		out = verifyOutcome{}
		cred, err := s.lockCredential(tx, sess.d, user.ID)
		if err != nil {
			return err
		}
		if confirmOnly && cred.State == StateActive {
			return fmt.Errorf("%w (enabled): nothing to confirm", ErrAlreadyEnrolled)
		}
		params, err := cred.params()
		if err != nil {
			return err
		}
		if kind == kindTOTP && len(code) != cred.Digits {
			return fmt.Errorf("%w: want %d digits", ErrMalformedCode, cred.Digits)
		}
		now := s.now()
		// A temporary access code is tried first, and also while the user
		// is locked out: support issued it to get a locked-out user in.
		// It has a backup code's form; telling the two apart is a hash
		// compare each, and 60-bit codes do not collide.
		if kind == kindBackup && cred.State == StateActive {
			if handled, err := s.useTempCode(tx, sess.d, user, code, now, &out); handled || err != nil {
				return err
			}
		}
		if cred.LockedUntil != nil && now.Before(*cred.LockedUntil) {
			out.rejected = &LockedError{Until: *cred.LockedUntil}
			return s.audit(tx, ActionVerify, user, "locked", "")
		}
		if kind == kindTOTP {
			return s.verifyTOTP(tx, user, cred, params, code, now, &out)
		}
		if cred.State == StatePending {
			out.rejected = ErrPending
			return s.audit(tx, ActionVerify, user, "rejected (pending)", "")
		}
		return s.verifyBackup(tx, user, cred, code, now, &out)
	})
	if err != nil {
		return VerifyResult{}, err
	}
	if out.rejected != nil {
		return VerifyResult{}, out.rejected
	}
	if out.result.Activated {
		s.notifyConfirmed(ctx, db, user)
	}
	return out.result, nil
}

func (s *Service) verifyTOTP(tx *gorm.DB, user User, cred *Credential, p Params, code string, now time.Time, out *verifyOutcome) error {
	secret, err := s.openSecret(cred)
	if err != nil {
		return err
	}
	step, ok, err := matchStep(secret, code, now, s.cfg.Skew, p)
	if err != nil {
		return err
	}
	if !ok {
		return s.recordFailure(tx, user, cred, now, out)
	}
	// The conditional update is the replay guard: of any number of
	// concurrent attempts with the same code, exactly one moves last_step
	// forward. A replay is not counted as a failure — it is no guess, and
	// counting it would let a burst of duplicate submissions lock a user out.
	upd := tx.Table(s.cfg.Tables.Credentials).
		Where("user_id = ? AND last_step < ?", cred.UserID, step).
		Updates(map[string]any{
			"last_step":    step,
			"last_used_at": now,
			"failures":     0,
			"locked_until": nil,
			"state":        StateActive,
			"activated_at": gorm.Expr("COALESCE(activated_at, ?)", now),
		})
	if upd.Error != nil {
		return fmt.Errorf("record accepted code: %w", upd.Error)
	}
	if upd.RowsAffected == 0 {
		out.rejected = ErrReplayed
		return s.audit(tx, ActionVerify, user, "replayed", "")
	}
	out.result = VerifyResult{Method: MethodTOTP, Step: step, Activated: cred.State == StatePending}
	outcome := "ok"
	if out.result.Activated {
		outcome = "ok (activated)"
	}
	return s.audit(tx, ActionVerify, user, outcome, "")
}

func (s *Service) verifyBackup(tx *gorm.DB, user User, cred *Credential, code string, now time.Time, out *verifyOutcome) error {
	// Used codes are read too: a used code typed again is a replay, not a
	// guess, and must not count towards the lockout.
	codes, err := s.backupCodesOf(tx, cred.UserID)
	if err != nil {
		return err
	}
	var match *BackupCode
	unused := 0
	for i := range codes {
		if codes[i].UsedAt == nil {
			unused++
		}
		if backupCodeMatches(codes[i].Salt, codes[i].Hash, code) && match == nil {
			match = &codes[i]
		}
	}
	if match == nil {
		return s.recordFailure(tx, user, cred, now, out)
	}
	if match.UsedAt != nil {
		out.rejected = fmt.Errorf("%w: backup code already used at %s", ErrReplayed, match.UsedAt.UTC().Format(time.RFC3339))
		return s.audit(tx, ActionVerify, user, "replayed (backup code)", "")
	}
	// Conditional on used_at IS NULL: of concurrent attempts with one code,
	// exactly one marks it used. A regeneration that deleted the row first
	// leaves nothing to update, so the code is refused.
	upd := tx.Table(s.cfg.Tables.BackupCodes).Where("id = ? AND used_at IS NULL", match.ID).Update("used_at", now)
	if upd.Error != nil {
		return fmt.Errorf("consume backup code: %w", upd.Error)
	}
	if upd.RowsAffected == 0 {
		out.rejected = ErrReplayed
		return s.audit(tx, ActionVerify, user, "replayed (backup code)", "")
	}
	err = tx.Table(s.cfg.Tables.Credentials).Where("user_id = ?", cred.UserID).
		Updates(map[string]any{"last_used_at": now, "failures": 0, "locked_until": nil}).Error
	if err != nil {
		return fmt.Errorf("record accepted code: %w", err)
	}
	out.result = VerifyResult{Method: MethodBackup, BackupCodesLeft: unused - 1}
	return s.audit(tx, ActionVerify, user, "ok (backup code)", "")
}

// recordFailure counts a wrong code and locks the user when the limit is
// reached. The credential row is locked by the surrounding transaction
// (FOR UPDATE, or SQLite's single writer), so concurrent failures queue and
// each one counts. A lockout that has expired starts a fresh count.
func (s *Service) recordFailure(tx *gorm.DB, user User, cred *Credential, now time.Time, out *verifyOutcome) error {
	failures := cred.Failures
	if cred.LockedUntil != nil && !now.Before(*cred.LockedUntil) {
		failures = 0
	}
	failures++
	var lockedUntil *time.Time
	if failures >= s.cfg.MaxFailures {
		until := now.Add(s.cfg.LockoutDuration)
		lockedUntil = &until
	}
	err := tx.Table(s.cfg.Tables.Credentials).Where("user_id = ?", cred.UserID).
		Updates(map[string]any{"failures": failures, "locked_until": lockedUntil}).Error
	if err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	if lockedUntil != nil {
		out.rejected = &LockedError{Until: *lockedUntil, JustLocked: true}
		return s.audit(tx, ActionVerify, user, "rejected (locked)", "")
	}
	out.rejected = fmt.Errorf("%w: wrong code (%d of %d attempts before lockout)", ErrCodeRejected, failures, s.cfg.MaxFailures)
	return s.audit(tx, ActionVerify, user, fmt.Sprintf("rejected (%d/%d failures)", failures, s.cfg.MaxFailures), "")
}
