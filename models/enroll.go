package models

import (
	"context"
	"errors"
	"fmt"
	"io"

	"gorm.io/gorm"
)

// Enrollment is a new secret held in memory until it is saved: the QR code
// can be shown and the first code checked before anything is written, so an
// abandoned enrollment leaves no trace.
type Enrollment struct {
	User   User
	Params Params
	secret []byte
	uri    string
}

// Secret is the base32 shared secret, as authenticator apps take it.
func (e *Enrollment) Secret() string { return secretEncoding.EncodeToString(e.secret) }

// ManualEntryKey is the secret grouped in fours for typing.
func (e *Enrollment) ManualEntryKey() string { return ManualEntryKey(e.secret) }

// URI is the otpauth:// URI the QR code encodes.
func (e *Enrollment) URI() string { return e.uri }

// NewEnrollment draws a fresh 160-bit secret for user. Params zero means
// the configured defaults.
func (s *Service) NewEnrollment(user User, p Params) (*Enrollment, error) {
	if p == (Params{}) {
		p = s.cfg.Params
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("enroll %s: %w", user, err)
	}
	secret := make([]byte, SecretSize)
	if _, err := io.ReadFull(s.cfg.Random, secret); err != nil {
		return nil, fmt.Errorf("enroll %s: generate secret: %w", user, err)
	}
	// String is the login, or id:N for a user without one.
	return &Enrollment{User: user, Params: p, secret: secret, uri: KeyURI(s.cfg.Issuer, user.String(), secret, p)}, nil
}

// CheckCode reports whether code is valid for the enrollment right now. It
// writes nothing; use it to let a person retry a mistyped first code.
func (s *Service) CheckCode(e *Enrollment, code string) (bool, error) {
	code = normalizeTOTPInput(code)
	if !IsTOTPCode(code, e.Params.Digits) {
		return false, fmt.Errorf("%w: want %d digits", ErrMalformedCode, e.Params.Digits)
	}
	_, ok, err := matchStep(e.secret, code, s.now(), s.cfg.Skew, e.Params)
	return ok, err
}

// EnrollOptions control how an enrollment is saved.
type EnrollOptions struct {
	// Force replaces an existing enrollment (its backup codes go with it).
	Force bool
	// SkipEnrolled leaves an existing enrollment as it is and reports it
	// as skipped instead of failing with ErrAlreadyEnrolled.
	SkipEnrolled bool
	// ConfirmCode, when set, must be a valid code for the new secret; the
	// enrollment is then saved active and that time step can never be
	// accepted again. Empty saves it pending until the first verify.
	ConfirmCode string
	// Imported saves the enrollment active without a code: the secret comes
	// from another system where the user already uses it. Audited as import.
	Imported bool
}

// EnrollResult is a saved (or skipped) enrollment.
type EnrollResult struct {
	State       string   // pending or active; the existing state when skipped
	Replaced    bool     // an earlier enrollment was replaced (Force)
	Skipped     bool     // already enrolled and left alone (SkipEnrolled)
	BackupCodes []string // plaintext, shown once and never stored
}

// Enroll saves e: the sealed secret, a fresh set of backup codes and an
// audit row, in one transaction; it is EnrollMany of one.
func (s *Service) Enroll(ctx context.Context, db *gorm.DB, e *Enrollment, opt EnrollOptions) (EnrollResult, error) {
	var (
		res    EnrollResult
		resErr error
	)
	err := s.EnrollMany(ctx, db, []*Enrollment{e}, opt, BulkOptions{}, func(_ int, r EnrollResult, err error) { res, resErr = r, err })
	var stopped *stoppedError
	if errors.As(err, &stopped) {
		err = stopped.err
	}
	if err != nil {
		return EnrollResult{}, fmt.Errorf("enroll %s: %w", e.User, err)
	}
	return res, resErr
}

// EnrollMany saves many enrollments, a batch of users per transaction,
// each user completely or not at all (see Service.run for how a failing
// user or database is handled). done is called for every enrollment, in
// order, as soon as its batch is settled.
func (s *Service) EnrollMany(ctx context.Context, db *gorm.DB, es []*Enrollment, opt EnrollOptions, bulk BulkOptions, done func(i int, res EnrollResult, err error)) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	if err := s.checkSealingKey(sess); err != nil {
		return err
	}
	users := make([]User, len(es))
	for i, e := range es {
		users[i] = e.User
	}
	var (
		prepared = make([]*preparedEnrollment, len(es))
		prepErrs = make([]error, len(es))
		results  = make([]EnrollResult, len(es))
	)
	w := write{
		action: ActionEnroll,
		prepare: func(lo, hi int) error {
			var scratch []byte
			for i := lo; i < hi; i++ {
				prepared[i], prepErrs[i] = s.prepareEnrollment(es[i], opt, &scratch)
			}
			return nil
		},
		apply: func(tx *gorm.DB, _ dialect, existing map[string]string, lo, hi int, errs []error) error {
			var save []*preparedEnrollment
			for i := lo; i < hi; i++ {
				results[i] = EnrollResult{}
				if prepErrs[i] != nil {
					errs[i-lo] = prepErrs[i]
					continue
				}
				results[i], errs[i-lo] = s.decide(prepared[i], existing, opt)
				if errs[i-lo] == nil && !results[i].Skipped {
					save = append(save, prepared[i])
				}
			}
			if len(save) == 0 {
				return nil
			}
			return s.writeEnrollments(tx, save)
		},
	}
	return s.run(ctx, db, users, bulk, w, func(i int, err error) {
		res := results[i]
		if err != nil {
			res = EnrollResult{}
		}
		prepared[i] = nil // the secret and codes are no longer needed
		done(i, res, err)
	})
}

// CheckSealingKey returns ErrWrongKey when secrets are stored and none of
// them is under a configured key (Key or OldKeys). A mistyped TOTPADM_KEY
// or the wrong key file would otherwise enroll users under a key the
// application does not have, locking them out at their next login. An
// empty table passes, and so does a table with at least one secret under a
// configured key (during a rotation some rows are still under the old
// one). Enroll and EnrollMany check it themselves; a tool that shows a new
// secret before saving it calls it first, so that nobody scans a QR code
// that can never be saved.
func (s *Service) CheckSealingKey(ctx context.Context, db *gorm.DB) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	return s.checkSealingKey(sess)
}

func (s *Service) checkSealingKey(sess session) error {
	key, err := s.requireKey()
	if err != nil {
		return err
	}
	known := []string{key.ID()}
	for _, k := range s.cfg.OldKeys {
		if k != nil {
			known = append(known, k.ID())
		}
	}
	table := sess.d.quote(s.cfg.Tables.Credentials)
	var sample, match []string
	if err := sess.db.Raw("SELECT key_id FROM " + table + " LIMIT 1").Scan(&sample).Error; err != nil {
		return fmt.Errorf("read credentials: %w", err)
	}
	if len(sample) == 0 {
		return nil
	}
	if err := sess.db.Raw("SELECT key_id FROM "+table+" WHERE key_id IN ? LIMIT 1", known).Scan(&match).Error; err != nil {
		return fmt.Errorf("read credentials: %w", err)
	}
	if len(match) == 0 {
		return fmt.Errorf("%w: the stored secrets are sealed under key %s, not under the configured key %s; nothing was changed", ErrWrongKey, sample[0], key.ID())
	}
	return nil
}

// preparedEnrollment is an enrollment with all its CPU work done — the
// secret sealed, the backup codes drawn and hashed — so that the
// transaction that saves it only writes rows.
type preparedEnrollment struct {
	user     User
	cred     Credential
	codes    codeSet
	plain    []string
	replaces bool
	action   string // audit action: enroll or import
}

func (s *Service) prepareEnrollment(e *Enrollment, opt EnrollOptions, scratch *[]byte) (*preparedEnrollment, error) {
	key, err := s.requireKey()
	if err != nil {
		return nil, err
	}
	now := s.now()
	cred := Credential{
		UserID:     e.User.ID,
		KeyID:      key.ID(),
		Algorithm:  e.Params.Algorithm,
		Digits:     e.Params.Digits,
		Period:     e.Params.Period,
		State:      StatePending,
		CreatedAt:  now,
		LastStep:   -1,
		EnrolledBy: s.cfg.Actor,
	}
	if opt.ConfirmCode != "" {
		code := normalizeTOTPInput(opt.ConfirmCode)
		if !IsTOTPCode(code, e.Params.Digits) {
			return nil, fmt.Errorf("%w: want %d digits", ErrMalformedCode, e.Params.Digits)
		}
		step, ok, err := matchStep(e.secret, code, now, s.cfg.Skew, e.Params)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: the confirmation code does not match the new secret (check the phone's clock)", ErrCodeRejected)
		}
		cred.State, cred.ActivatedAt, cred.LastStep = StateActive, &now, step
	} else if opt.Imported {
		cred.State, cred.ActivatedAt = StateActive, &now
	}
	if cred.Secret, err = key.seal(e.User.ID, e.secret); err != nil {
		return nil, err
	}
	plain, codes, err := s.newCodeSet(e.User.ID, now, scratch)
	if err != nil {
		return nil, err
	}
	action := ActionEnroll
	if opt.Imported {
		action = ActionImport
	}
	return &preparedEnrollment{user: e.User, cred: cred, codes: codes, plain: plain, action: action}, nil
}

// decide applies Force and SkipEnrolled to an existing enrollment.
func (s *Service) decide(p *preparedEnrollment, existing map[string]string, opt EnrollOptions) (EnrollResult, error) {
	p.replaces = false
	state, found := existing[p.user.ID]
	switch {
	case !found:
	case opt.SkipEnrolled:
		return EnrollResult{State: state, Skipped: true}, nil
	case !opt.Force:
		return EnrollResult{}, fmt.Errorf("%w (%s)", ErrAlreadyEnrolled, stateName(state))
	default:
		p.replaces = true
	}
	return EnrollResult{State: p.cred.State, Replaced: p.replaces, BackupCodes: p.plain}, nil
}

// writeEnrollments saves the rows of ps inside tx, a few multi-row
// statements for the whole batch. A replaced credential is rewritten in
// place, never deleted and inserted again: a verification queued on its
// row lock must find the user enrolled after the change as before. On
// PostgreSQL a deleted row simply vanishes from a waiting SELECT … FOR
// UPDATE, and the re-inserted one is not in its snapshot, so a
// delete-then-insert answered "not enrolled" — which a login path could
// take for "no 2FA".
func (s *Service) writeEnrollments(tx *gorm.DB, ps []*preparedEnrollment) error {
	d, err := dialectOf(tx)
	if err != nil {
		return err
	}
	var (
		replaced []string
		inserts  = make([][]any, 0, len(ps))
		codes    = make([]codeSet, 0, len(ps))
		audits   = make([]AuditEntry, 0, len(ps))
	)
	for _, p := range ps {
		outcome := p.cred.State
		if p.replaces {
			replaced = append(replaced, p.user.ID)
			outcome += " (replaced)"
		} else {
			inserts = append(inserts, p.cred.values())
		}
		codes = append(codes, p.codes)
		audits = append(audits, s.auditEntry(p.action, p.user, outcome, ""))
	}
	if len(replaced) > 0 {
		if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id IN ?", replaced).Delete(&BackupCode{}).Error; err != nil {
			return fmt.Errorf("delete replaced backup codes: %w", err)
		}
		if err := s.deleteTempCodes(tx, replaced); err != nil {
			return err
		}
		for _, p := range ps {
			if p.replaces {
				if err := s.rewriteCredential(tx, d, &p.cred); err != nil {
					return err
				}
			}
		}
	}
	if err := insertRows(tx, d, s.cfg.Tables.Credentials, credentialColumns, inserts); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := s.insertCodeSets(tx, d, codes); err != nil {
		return err
	}
	return s.writeAudit(tx, audits)
}

// AbandonEnrollment records that e's secret was shown and never saved —
// the person gave up, typed wrong codes or was interrupted — so that the
// audit log says a secret was displayed for the user. Nothing else is
// written. It runs even when ctx was cancelled: the interruption is what
// it records.
func (s *Service) AbandonEnrollment(ctx context.Context, db *gorm.DB, e *Enrollment, why string) error {
	sess, err := s.session(context.WithoutCancel(ctx), db)
	if err != nil {
		return err
	}
	return s.writeAudit(sess.db, []AuditEntry{s.auditEntry(ActionEnroll, e.User, "abandoned", why)})
}
