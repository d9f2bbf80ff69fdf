package models

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// The writes of the django-otp store run on the same engine as totpadm's
// own (Service.run): batches, per-user fallback, audit rows and change
// hooks come from there; only the lock step and the rows differ.

// djangoWrite builds an engine write whose lock step locks the users and
// their devices and hands the devices to apply.
func (z *DjangoOTP) djangoWrite(action string, apply func(tx *gorm.DB, d dialect, devs map[string]*djangoState, lo, hi int, errs []error) error) write {
	var devs map[string]*djangoState
	return write{
		action: action,
		lock: func(tx *gorm.DB, d dialect, ids []string) (map[string]string, error) {
			var err error
			if devs, err = z.lockDevices(tx, d, ids); err != nil {
				return nil, err
			}
			states := make(map[string]string, len(devs))
			for id, st := range devs {
				if s, ok := st.engineState(); ok {
					states[id] = s
				}
			}
			return states, nil
		},
		apply: func(tx *gorm.DB, d dialect, _ map[string]string, lo, hi int, errs []error) error {
			return apply(tx, d, devs, lo, hi, errs)
		},
	}
}

// lockDevices locks the users' rows in the users table — so that two
// totpadm runs on one user queue even where no device row exists yet to
// lock, Django having no unique device per user to collide on — and
// their devices (django-otp's own select_for_update), and reads them.
// SQLite needs neither: its write transactions are exclusive.
func (z *DjangoOTP) lockDevices(tx *gorm.DB, d dialect, ids []string) (map[string]*djangoState, error) {
	if d.name != "sqlite" {
		u := z.svc.cfg.Users
		q := "SELECT " + d.quote(u.IDColumn) + " FROM " + d.quote(u.Table) + " WHERE " + d.quote(u.IDColumn) + " IN ?" + d.forUpdate()
		var locked []string
		if err := tx.Raw(q, ids).Scan(&locked).Error; err != nil {
			return nil, fmt.Errorf("lock users: %w", err)
		}
	}
	return z.devicesOf(tx, d, ids, true, false)
}

// NewEnrollment draws a fresh secret for a TOTP device. django-otp's TOTP
// devices use SHA1 and 6 or 8 digits only.
func (z *DjangoOTP) NewEnrollment(user User, p Params) (*Enrollment, error) {
	e, err := z.svc.NewEnrollment(user, p)
	if err != nil {
		return nil, err
	}
	if err := djangoParams(e.Params); err != nil {
		return nil, fmt.Errorf("enroll %s: %w", user, err)
	}
	return e, nil
}

// ImportedEnrollment is a secret from another system, for a TOTP device.
func (z *DjangoOTP) ImportedEnrollment(user User, secret []byte, p Params) (*Enrollment, error) {
	e, err := z.svc.ImportedEnrollment(user, secret, p)
	if err != nil {
		return nil, err
	}
	if err := djangoParams(e.Params); err != nil {
		return nil, fmt.Errorf("import %s: %w", user, err)
	}
	return e, nil
}

func djangoParams(p Params) error {
	if p.Algorithm != "SHA1" || (p.Digits != 6 && p.Digits != 8) {
		return fmt.Errorf("%w: django-otp's TOTP devices take SHA1 with 6 or 8 digits, not %s with %d", ErrUnsupportedParams, p.Algorithm, p.Digits)
	}
	return nil
}

// CheckCode reports whether code is valid for the new secret right now.
func (z *DjangoOTP) CheckCode(e *Enrollment, code string) (bool, error) {
	return z.svc.CheckCode(e, code)
}

// AbandonEnrollment records in totpadm's audit log that a secret was shown
// and never saved.
func (z *DjangoOTP) AbandonEnrollment(ctx context.Context, db *gorm.DB, e *Enrollment, why string) error {
	return z.svc.AbandonEnrollment(ctx, db, e, why)
}

// Enroll is EnrollMany of one.
func (z *DjangoOTP) Enroll(ctx context.Context, db *gorm.DB, e *Enrollment, opt EnrollOptions) (EnrollResult, error) {
	return enrollOne(ctx, db, e, opt, z.EnrollMany)
}

// EnrollMany gives each user a TOTP device named "default" —
// unconfirmed until the first code, or confirmed by opt.ConfirmCode or
// opt.Imported — and a static device named "backup" holding fresh backup
// codes, the names django-two-factor-auth uses. A user who already has a
// TOTP device is refused (ErrAlreadyEnrolled), skipped (SkipEnrolled) or,
// with Force, has their devices replaced: rewritten in place, so that a
// verification queued on a device row finds the user enrolled after the
// change as before (no fail-open window), and their other devices
// deleted.
func (z *DjangoOTP) EnrollMany(ctx context.Context, db *gorm.DB, es []*Enrollment, opt EnrollOptions, bulk BulkOptions, done func(i int, res EnrollResult, err error)) error {
	users := make([]User, len(es))
	for i, e := range es {
		users[i] = e.User
	}
	type prepared struct {
		lastT     int64
		confirmed bool
		codes     []string
		err       error
	}
	prep := make([]prepared, len(es))
	results := make([]EnrollResult, len(es))
	action := ActionEnroll
	if opt.Imported {
		action = ActionImport
	}
	w := z.djangoWrite(action, func(tx *gorm.DB, d dialect, devs map[string]*djangoState, lo, hi int, errs []error) error {
		audits := make([]AuditEntry, 0, hi-lo)
		for i := lo; i < hi; i++ {
			results[i] = EnrollResult{}
			p := &prep[i]
			if p.err != nil {
				errs[i-lo] = p.err
				continue
			}
			st := devs[users[i].ID]
			if st == nil {
				st = &djangoState{}
			}
			state, found := st.engineState()
			replaces := found && state != djangoStaticOnly
			switch {
			case !replaces:
			case opt.SkipEnrolled:
				results[i] = EnrollResult{State: state, Skipped: true}
				continue
			case !opt.Force:
				errs[i-lo] = fmt.Errorf("%w (%s)", ErrAlreadyEnrolled, stateName(state))
				continue
			}
			if err := z.setTOTP(tx, d, users[i], st, es[i], p.confirmed, p.lastT); err != nil {
				return err
			}
			if err := z.setTokens(tx, d, users[i], st, p.codes, true); err != nil {
				return err
			}
			newState := StatePending
			if p.confirmed {
				newState = StateActive
			}
			outcome := newState
			if replaces {
				outcome += " (replaced)"
			}
			results[i] = EnrollResult{State: newState, Replaced: replaces, BackupCodes: p.codes}
			audits = append(audits, z.svc.auditEntry(action, users[i], outcome, ""))
		}
		return z.svc.writeAudit(tx, audits)
	})
	w.prepare = func(lo, hi int) error {
		now := z.svc.now()
		for i := lo; i < hi; i++ {
			e := es[i]
			p := prepared{lastT: -1, confirmed: opt.Imported}
			if err := djangoParams(e.Params); err != nil {
				p.err = err
			} else if opt.ConfirmCode != "" {
				step, err := z.svc.confirmStep(e, opt.ConfirmCode, now)
				if err != nil {
					p.err = err
				} else {
					p.confirmed, p.lastT = true, step
				}
			}
			if p.err == nil {
				codes, err := z.newTokens()
				if err != nil {
					return err
				}
				p.codes = codes
			}
			prep[i] = p
		}
		return nil
	}
	return z.svc.run(ctx, db, users, bulk, w, func(i int, err error) {
		done(i, results[i], err)
	})
}

// newTokens draws a user's backup codes as django-otp stores and matches
// them: 12 symbols of totpadm's alphabet (60 bits; no look-alikes, one
// case), with no separator, because django-otp compares the token exactly
// as the user types it.
func (z *DjangoOTP) newTokens() ([]string, error) {
	codes := make([]string, z.svc.cfg.BackupCodeCount)
	for i := range codes {
		c, err := newBackupCode(z.svc.cfg.Random)
		if err != nil {
			return nil, err
		}
		codes[i] = strings.ReplaceAll(c, "-", "")
	}
	return codes, nil
}

// setTOTP writes e's secret as the user's TOTP device: over the first of
// their devices, in place, deleting any others; or as a new device.
func (z *DjangoOTP) setTOTP(tx *gorm.DB, d dialect, user User, st *djangoState, e *Enrollment, confirmed bool, lastT int64) error {
	q := d.quote
	key := hex.EncodeToString(e.secret)
	if len(st.totp) > 0 {
		first := st.totp[0].id
		err := tx.Exec("UPDATE "+q(z.t.totp)+" SET name = ?, confirmed = ?, "+q("key")+" = ?, step = ?, t0 = 0, digits = ?, tolerance = ?, drift = 0, last_t = ?, throttling_failure_count = 0, throttling_failure_timestamp = NULL WHERE id = ?",
			djangoTOTPName, confirmed, key, e.Params.Period, e.Params.Digits, z.svc.cfg.Skew, lastT, first).Error
		if err != nil {
			return fmt.Errorf("replace TOTP device: %w", err)
		}
		if others := deviceIDs(st.totp[1:]); len(others) > 0 {
			if err := tx.Exec("DELETE FROM "+q(z.t.totp)+" WHERE id IN ?", others).Error; err != nil {
				return fmt.Errorf("delete other TOTP devices: %w", err)
			}
		}
		return nil
	}
	err := tx.Exec("INSERT INTO "+q(z.t.totp)+" (name, confirmed, "+q("key")+", step, t0, digits, tolerance, drift, last_t, user_id, throttling_failure_count, throttling_failure_timestamp) VALUES (?, ?, ?, ?, 0, ?, ?, 0, ?, ?, 0, NULL)",
		djangoTOTPName, confirmed, key, e.Params.Period, e.Params.Digits, z.svc.cfg.Skew, lastT, user.ID).Error
	if err != nil {
		return fmt.Errorf("create TOTP device: %w", err)
	}
	return nil
}

// setTokens makes codes the user's only static tokens: every token of
// their static devices is deleted and codes go to the first device,
// confirmed (a new one named "backup" when they have none). reset also
// clears its throttling, as a re-enrollment clears a lockout.
func (z *DjangoOTP) setTokens(tx *gorm.DB, d dialect, user User, st *djangoState, codes []string, reset bool) error {
	q := d.quote
	var device int64
	if len(st.static) > 0 {
		if err := tx.Exec("DELETE FROM "+q(z.t.token)+" WHERE device_id IN ?", deviceIDs(st.static)).Error; err != nil {
			return fmt.Errorf("delete old backup codes: %w", err)
		}
		device = st.static[0].id
		set := "confirmed = ?"
		if reset {
			set += ", throttling_failure_count = 0, throttling_failure_timestamp = NULL"
		}
		if err := tx.Exec("UPDATE "+q(z.t.static)+" SET "+set+" WHERE id = ?", true, device).Error; err != nil {
			return fmt.Errorf("update static device: %w", err)
		}
	} else {
		id, err := insertReturningID(tx, d, "INSERT INTO "+q(z.t.static)+" (name, confirmed, user_id, throttling_failure_count, throttling_failure_timestamp) VALUES (?, ?, ?, 0, NULL)",
			djangoStaticName, true, user.ID)
		if err != nil {
			return fmt.Errorf("create static device: %w", err)
		}
		device = id
	}
	rows := make([][]any, len(codes))
	for i, c := range codes {
		rows[i] = []any{c, device}
	}
	if err := insertRows(tx, d, z.t.token, []string{"token", "device_id"}, rows); err != nil {
		return fmt.Errorf("save backup codes: %w", err)
	}
	return nil
}

// insertReturningID inserts one row and returns its serial id.
func insertReturningID(tx *gorm.DB, d dialect, q string, args ...any) (int64, error) {
	var id int64
	if d.name == "mysql" {
		if err := tx.Exec(q, args...).Error; err != nil {
			return 0, err
		}
		return id, tx.Raw("SELECT LAST_INSERT_ID()").Row().Scan(&id)
	}
	return id, tx.Raw(q+" RETURNING id", args...).Row().Scan(&id)
}

func deviceIDs(devs []djangoDevice) []int64 {
	ids := make([]int64, len(devs))
	for i, d := range devs {
		ids[i] = d.id
	}
	return ids
}

// RegenerateMany replaces the tokens of each user's static device with a
// fresh set (see setTokens); a user without a TOTP device gets
// ErrNotEnrolled.
func (z *DjangoOTP) RegenerateMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, codes []string, err error)) error {
	plain := make([][]string, len(users))
	w := z.djangoWrite(ActionBackupCodes, func(tx *gorm.DB, d dialect, devs map[string]*djangoState, lo, hi int, errs []error) error {
		audits := make([]AuditEntry, 0, hi-lo)
		for i := lo; i < hi; i++ {
			st := devs[users[i].ID]
			if st == nil || len(st.totp) == 0 {
				errs[i-lo] = ErrNotEnrolled
				continue
			}
			if err := z.setTokens(tx, d, users[i], st, plain[i], false); err != nil {
				return err
			}
			audits = append(audits, z.svc.auditEntry(ActionBackupCodes, users[i], "regenerated", ""))
		}
		return z.svc.writeAudit(tx, audits)
	})
	w.prepare = func(lo, hi int) error {
		clear(plain[:lo]) // earlier batches are settled
		for i := lo; i < hi; i++ {
			var err error
			if plain[i], err = z.newTokens(); err != nil {
				return err
			}
		}
		return nil
	}
	return z.svc.run(ctx, db, users, bulk, w, func(i int, err error) {
		if err != nil {
			done(i, nil, err)
			return
		}
		done(i, plain[i], nil)
	})
}

// DisableMany deletes each user's django-otp devices — TOTP and static,
// with their tokens — in one transaction per batch. A user without any
// device gets ErrNotEnrolled.
func (z *DjangoOTP) DisableMany(ctx context.Context, db *gorm.DB, users []User, reason string, bulk BulkOptions, done func(i int, err error)) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	w := z.djangoWrite(ActionDisable, func(tx *gorm.DB, d dialect, devs map[string]*djangoState, lo, hi int, errs []error) error {
		var totp, static []int64
		audits := make([]AuditEntry, 0, hi-lo)
		for i := lo; i < hi; i++ {
			st := devs[users[i].ID]
			if st.count() == 0 {
				errs[i-lo] = ErrNotEnrolled
				continue
			}
			totp = append(totp, deviceIDs(st.totp)...)
			static = append(static, deviceIDs(st.static)...)
			audits = append(audits, z.svc.auditEntry(ActionDisable, users[i], "disabled", reason))
		}
		q := d.quote
		if len(static) > 0 {
			if err := tx.Exec("DELETE FROM "+q(z.t.token)+" WHERE device_id IN ?", static).Error; err != nil {
				return fmt.Errorf("delete backup codes: %w", err)
			}
			if err := tx.Exec("DELETE FROM "+q(z.t.static)+" WHERE id IN ?", static).Error; err != nil {
				return fmt.Errorf("delete static devices: %w", err)
			}
		}
		if len(totp) > 0 {
			if err := tx.Exec("DELETE FROM "+q(z.t.totp)+" WHERE id IN ?", totp).Error; err != nil {
				return fmt.Errorf("delete TOTP devices: %w", err)
			}
		}
		return z.svc.writeAudit(tx, audits)
	})
	return z.svc.run(ctx, db, users, bulk, w, done)
}

// UnlockMany resets the throttling of every device of each user, as
// django-otp's throttle_reset does. done reports whether a back-off was
// running.
func (z *DjangoOTP) UnlockMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, wasLocked bool, err error)) error {
	locked := make([]bool, len(users))
	now := z.svc.now()
	w := z.djangoWrite(ActionUnlock, func(tx *gorm.DB, d dialect, devs map[string]*djangoState, lo, hi int, errs []error) error {
		var ids []string
		audits := make([]AuditEntry, 0, hi-lo)
		for i := lo; i < hi; i++ {
			st := devs[users[i].ID]
			if st.count() == 0 {
				errs[i-lo] = ErrNotEnrolled
				continue
			}
			locked[i] = z.lockedUntil(st.all(), now) != nil
			outcome := "not locked"
			if locked[i] {
				outcome = "unlocked"
			}
			ids = append(ids, users[i].ID)
			audits = append(audits, z.svc.auditEntry(ActionUnlock, users[i], outcome, ""))
		}
		if len(ids) > 0 {
			for _, table := range []string{z.t.totp, z.t.static} {
				err := tx.Exec("UPDATE "+d.quote(table)+" SET throttling_failure_count = 0, throttling_failure_timestamp = NULL WHERE user_id IN ?", ids).Error
				if err != nil {
					return fmt.Errorf("reset throttling: %w", err)
				}
			}
		}
		return z.svc.writeAudit(tx, audits)
	})
	return z.svc.run(ctx, db, users, bulk, w, func(i int, err error) {
		done(i, locked[i] && err == nil, err)
	})
}

// ExportEnrollment returns the user's TOTP device (the first confirmed
// one, else the first) as an otpauth URI, with an audit row.
func (z *DjangoOTP) ExportEnrollment(ctx context.Context, db *gorm.DB, user User) (Export, error) {
	sess, err := z.svc.session(ctx, db)
	if err != nil {
		return Export{}, err
	}
	var out Export
	err = z.svc.transaction(sess, func(tx *gorm.DB) error {
		states, err := z.devicesOf(tx, sess.d, []string{user.ID}, true, true)
		if err != nil {
			return err
		}
		st := states[user.ID]
		if st == nil || len(st.totp) == 0 {
			return ErrNotEnrolled
		}
		dev := st.totp[0]
		for _, t := range st.totp {
			if t.confirmed {
				dev = t
				break
			}
		}
		if dev.t0 != 0 {
			return fmt.Errorf("%w: TOTP device %d counts steps from t0 = %d, which an otpauth URI cannot carry", errDjangoKey, dev.id, dev.t0)
		}
		secret, err := hex.DecodeString(dev.key)
		if err != nil {
			return fmt.Errorf("device %d: %w", dev.id, errDjangoKey)
		}
		defer clear(secret)
		p := Params{Algorithm: "SHA1", Digits: int(dev.digits), Period: int(dev.step)}
		if err := p.Validate(); err != nil {
			return fmt.Errorf("device %d: %w: %v", dev.id, errDjangoKey, err)
		}
		state := StatePending
		if dev.confirmed {
			state = StateActive
		}
		out = Export{URI: KeyURI(z.svc.cfg.Issuer, user.String(), secret, p), Secret: secretEncoding.EncodeToString(secret), State: stateName(state)}
		return z.svc.audit(tx, ActionExport, user, "exported", "")
	})
	if err != nil {
		return Export{}, fmt.Errorf("export %s: %w", user, err)
	}
	return out, nil
}
