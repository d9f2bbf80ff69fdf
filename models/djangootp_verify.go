package models

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Verify checks code for user as django-otp would, and consumes it: a
// code of a TOTP device's digits is tried on the user's TOTP devices
// (confirmed ones first; an unconfirmed device that accepts it becomes
// confirmed), anything else on the tokens of their confirmed static
// devices. A device in its throttling back-off refuses every code and is
// not counted against; a device that refuses a code gets a failure, as
// django-otp's verify_token records one — a replayed code too, since
// django-otp cannot tell it from a wrong one. Errors are those of
// Service.Verify; only a nil error lets the user in.
func (z *DjangoOTP) Verify(ctx context.Context, db *gorm.DB, user User, code string) (VerifyResult, error) {
	res, err := z.verify(ctx, db, user, code, false)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify %s: %w", user, err)
	}
	return res, nil
}

// Confirm confirms an unconfirmed TOTP device with a code from the app.
func (z *DjangoOTP) Confirm(ctx context.Context, db *gorm.DB, user User, code string) (VerifyResult, error) {
	res, err := z.verify(ctx, db, user, code, true)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("confirm %s: %w", user, err)
	}
	return res, nil
}

// djangoCode is what a typed code is tried as.
func djangoCode(input string) (totp string, token string, err error) {
	trimmed := strings.TrimSpace(input) // Django's form fields strip
	if c := normalizeTOTPInput(trimmed); len(c) >= 6 && len(c) <= 8 && IsTOTPCode(c, len(c)) {
		return c, "", nil
	}
	if trimmed == "" {
		return "", "", fmt.Errorf("%w: want a code from the app or a backup code", ErrMalformedCode)
	}
	return "", trimmed, nil
}

func (z *DjangoOTP) verify(ctx context.Context, db *gorm.DB, user User, input string, confirmOnly bool) (VerifyResult, error) {
	if inTransaction(db) {
		return VerifyResult{}, ErrInTransaction
	}
	totp, token, err := djangoCode(input)
	if err != nil {
		return VerifyResult{}, err
	}
	if confirmOnly && totp == "" {
		return VerifyResult{}, ErrPending
	}
	sess, err := z.svc.session(ctx, db)
	if err != nil {
		return VerifyResult{}, err
	}
	var out verifyOutcome
	err = z.svc.transaction(sess, func(tx *gorm.DB) error {
		out = verifyOutcome{}
		states, err := z.devicesOf(tx, sess.d, []string{user.ID}, true, true)
		if err != nil {
			return err
		}
		st := states[user.ID]
		if st.count() == 0 {
			return ErrNotEnrolled
		}
		now := z.svc.now()
		if totp != "" {
			return z.verifyTOTP(tx, sess.d, user, st, totp, confirmOnly, now, &out)
		}
		return z.verifyToken(tx, sess.d, user, st, token, now, &out)
	})
	if err != nil {
		return VerifyResult{}, err
	}
	if out.rejected != nil {
		return VerifyResult{}, out.rejected
	}
	if out.result.Activated {
		z.svc.notifyConfirmed(ctx, db, user)
	}
	return out.result, nil
}

// djangoMatch is TOTPDevice.verify_token's search: the steps from
// tolerance before to tolerance after now, shifted by the device's drift,
// but none at or before last_t. It returns the accepted step and the
// drift that reached it, and whether a step at or before last_t had the
// code (a replay).
func djangoMatch(dev *djangoDevice, code string, now time.Time) (step, drift int64, ok, replay bool, err error) {
	if dev.step <= 0 || dev.digits < 6 || dev.digits > 8 {
		return 0, 0, false, false, errDjangoKey
	}
	if int64(len(code)) != dev.digits {
		return 0, 0, false, false, nil // a wrong code, as int(token) would compare
	}
	key, err := hex.DecodeString(dev.key)
	if err != nil {
		return 0, 0, false, false, errDjangoKey
	}
	defer clear(key)
	p := Params{Algorithm: "SHA1", Digits: int(dev.digits), Period: int(dev.step)}
	// Python's // floors; so must this, for a t0 in the future.
	base := floorDiv(now.Unix()-dev.t0, dev.step)
	for off := -dev.tolerance; off <= dev.tolerance; off++ {
		t := base + dev.drift + off
		if t < 0 {
			continue
		}
		want, err := GenerateCode(key, t, p)
		if err != nil {
			return 0, 0, false, false, err
		}
		if want != code {
			continue
		}
		if t <= dev.lastT {
			replay = true
			continue
		}
		return t, dev.drift + off, true, false, nil
	}
	return 0, 0, false, replay, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (z *DjangoOTP) verifyTOTP(tx *gorm.DB, d dialect, user User, st *djangoState, code string, confirmOnly bool, now time.Time, out *verifyOutcome) error {
	if len(st.totp) == 0 {
		return fmt.Errorf("%w: no TOTP device (backup codes only)", ErrNotEnrolled)
	}
	// Confirmed devices first, as django-otp's match_token tries only
	// those; then the unconfirmed one an enrollment left.
	order := make([]*djangoDevice, 0, len(st.totp))
	for _, confirmed := range []bool{true, false} {
		for i := range st.totp {
			if st.totp[i].confirmed == confirmed {
				order = append(order, &st.totp[i])
			}
		}
	}
	if confirmOnly && order[0].confirmed {
		return fmt.Errorf("%w (enabled): nothing to confirm", ErrAlreadyEnrolled)
	}
	var tried []*djangoDevice
	replay := false
	for _, dev := range order {
		if !z.allowed(dev, now) {
			continue
		}
		step, drift, ok, rep, err := djangoMatch(dev, code, now)
		if err != nil {
			return fmt.Errorf("device %d: %w", dev.id, err)
		}
		replay = replay || rep
		if !ok {
			tried = append(tried, dev)
			continue
		}
		// The conditional update is the replay guard, as for totpadm's
		// own store: of concurrent attempts with one code, exactly one
		// moves last_t forward (django-otp's own verify holds the row
		// with select_for_update, so it queues behind this one and sees
		// the new last_t).
		set := map[string]any{
			"last_t": step, "confirmed": true,
			"throttling_failure_count": 0, "throttling_failure_timestamp": nil,
		}
		if z.set.totpSync {
			set["drift"] = drift
		}
		upd := tx.Table(z.t.totp).Where("id = ? AND last_t < ?", dev.id, step).Updates(set)
		if upd.Error != nil {
			return fmt.Errorf("record accepted code: %w", upd.Error)
		}
		if upd.RowsAffected == 0 {
			replay = true
			tried = append(tried, dev)
			continue
		}
		out.result = VerifyResult{Method: MethodTOTP, Step: step, Activated: !dev.confirmed}
		outcome := "ok"
		if out.result.Activated {
			outcome = "ok (activated)"
		}
		return z.svc.audit(tx, ActionVerify, user, outcome, "")
	}
	return z.refuse(tx, d, user, st.totp, tried, replay, now, out)
}

func (z *DjangoOTP) verifyToken(tx *gorm.DB, d dialect, user User, st *djangoState, token string, now time.Time, out *verifyOutcome) error {
	var tried []*djangoDevice
	left := st.tokensLeft()
	for i := range st.static {
		dev := &st.static[i]
		if !dev.confirmed || !z.allowed(dev, now) {
			continue
		}
		// django-otp: token_set.filter(token=token).first(), then delete
		// it. The delete is conditional on the row still being there, so
		// of concurrent attempts exactly one consumes the token.
		var id int64
		err := tx.Raw("SELECT id FROM "+d.quote(z.t.token)+" WHERE device_id = ? AND token = ? ORDER BY id", dev.id, token).Row().Scan(&id)
		if err == nil {
			del := tx.Exec("DELETE FROM "+d.quote(z.t.token)+" WHERE id = ?", id)
			if del.Error != nil {
				return fmt.Errorf("consume backup code: %w", del.Error)
			}
			if del.RowsAffected == 1 {
				if err := z.resetThrottle(tx, d, dev); err != nil {
					return err
				}
				out.result = VerifyResult{Method: MethodBackup, BackupCodesLeft: int(left - 1)}
				return z.svc.audit(tx, ActionVerify, user, "ok (backup code)", "")
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read backup codes: %w", err)
		}
		tried = append(tried, dev)
	}
	return z.refuse(tx, d, user, st.static, tried, false, now, out)
}

// refuse records a refused code: a failure on every device that tried it
// (throttle_increment), or, when every device was in its back-off, a
// lockout that counts nothing.
func (z *DjangoOTP) refuse(tx *gorm.DB, d dialect, user User, devs []djangoDevice, tried []*djangoDevice, replay bool, now time.Time, out *verifyOutcome) error {
	if len(tried) == 0 {
		if until := z.lockedUntil(devs, now); until != nil {
			out.rejected = &LockedError{Until: *until}
			return z.svc.audit(tx, ActionVerify, user, "locked", "")
		}
		out.rejected = fmt.Errorf("%w: no backup codes", ErrCodeRejected)
		return z.svc.audit(tx, ActionVerify, user, "rejected (no backup codes)", "")
	}
	var failures int64
	for _, dev := range tried {
		table := z.t.totp
		if dev.static {
			table = z.t.static
		}
		err := tx.Exec("UPDATE "+d.quote(table)+" SET throttling_failure_count = throttling_failure_count + 1, throttling_failure_timestamp = ? WHERE id = ?",
			djangoTime(d, now), dev.id).Error
		if err != nil {
			return fmt.Errorf("record failure: %w", err)
		}
		dev.failures++
		dev.failedAt = &now
		failures = max(failures, dev.failures)
	}
	until := z.backoffEnd(tried[0])
	wait := ""
	if until != nil {
		wait = "; django-otp refuses every code until " + until.UTC().Format(time.RFC3339Nano)
	}
	if replay {
		out.rejected = fmt.Errorf("%w%s", ErrReplayed, wait)
		return z.svc.audit(tx, ActionVerify, user, "replayed", "")
	}
	out.rejected = fmt.Errorf("%w: wrong code (%d consecutive failures%s)", ErrCodeRejected, failures, wait)
	return z.svc.audit(tx, ActionVerify, user, fmt.Sprintf("rejected (%d failures)", failures), "")
}

func (z *DjangoOTP) resetThrottle(tx *gorm.DB, d dialect, dev *djangoDevice) error {
	table := z.t.totp
	if dev.static {
		table = z.t.static
	}
	err := tx.Exec("UPDATE "+d.quote(table)+" SET throttling_failure_count = 0, throttling_failure_timestamp = NULL WHERE id = ?", dev.id).Error
	if err != nil {
		return fmt.Errorf("reset throttling: %w", err)
	}
	return nil
}
