package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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
	account := user.Login
	if account == "" {
		account = user.String()
	}
	return &Enrollment{User: user, Params: p, secret: secret, uri: KeyURI(s.cfg.Issuer, account, secret, p)}, nil
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
	// ConfirmCode, when set, must be a valid code for the new secret; the
	// enrollment is then saved active and that time step can never be
	// accepted again. Empty saves it pending until the first verify.
	ConfirmCode string
}

// EnrollResult is a saved enrollment.
type EnrollResult struct {
	State       string
	Replaced    bool     // an earlier enrollment was replaced (Force)
	BackupCodes []string // plaintext, shown once and never stored
}

// Enroll saves e: the sealed secret, a fresh set of backup codes and an
// audit row, in one transaction.
func (s *Service) Enroll(ctx context.Context, db *gorm.DB, e *Enrollment, opt EnrollOptions) (EnrollResult, error) {
	res, err := s.enroll(ctx, db, e, opt)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("enroll %s: %w", e.User, err)
	}
	return res, nil
}

func (s *Service) enroll(ctx context.Context, db *gorm.DB, e *Enrollment, opt EnrollOptions) (EnrollResult, error) {
	key, err := s.requireKey()
	if err != nil {
		return EnrollResult{}, err
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return EnrollResult{}, err
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
			return EnrollResult{}, fmt.Errorf("%w: want %d digits", ErrMalformedCode, e.Params.Digits)
		}
		step, ok, err := matchStep(e.secret, code, now, s.cfg.Skew, e.Params)
		if err != nil {
			return EnrollResult{}, err
		}
		if !ok {
			return EnrollResult{}, fmt.Errorf("%w: the confirmation code does not match the new secret (check the phone's clock)", ErrCodeRejected)
		}
		cred.State, cred.ActivatedAt, cred.LastStep = StateActive, &now, step
	}
	if cred.Secret, err = key.seal(e.User.ID, e.secret); err != nil {
		return EnrollResult{}, err
	}
	plain, rows, err := s.newBackupCodes(e.User.ID, now)
	if err != nil {
		return EnrollResult{}, err
	}

	res := EnrollResult{State: cred.State, BackupCodes: plain}
	err = sess.db.Transaction(func(tx *gorm.DB) error {
		existing, err := s.lockCredential(tx, sess.d, e.User.ID)
		switch {
		case errors.Is(err, ErrNotEnrolled):
		case err != nil:
			return err
		case !opt.Force:
			return fmt.Errorf("%w (%s); use --force to replace the enrollment", ErrAlreadyEnrolled, stateName(existing.State))
		default:
			if err := s.deleteEnrollment(tx, e.User.ID); err != nil {
				return err
			}
			res.Replaced = true
		}
		if err := tx.Table(s.cfg.Tables.Credentials).Create(&cred).Error; err != nil {
			return fmt.Errorf("save credential: %w", err)
		}
		if err := tx.Table(s.cfg.Tables.BackupCodes).Create(&rows).Error; err != nil {
			return fmt.Errorf("save backup codes: %w", err)
		}
		outcome := cred.State
		if res.Replaced {
			outcome += " (replaced)"
		}
		return s.audit(tx, ActionEnroll, e.User, outcome, "")
	})
	if err != nil {
		return EnrollResult{}, err
	}
	return res, nil
}

// newBackupCodes returns the plaintext codes and their hashed rows.
func (s *Service) newBackupCodes(userID string, now time.Time) ([]string, []BackupCode, error) {
	plain := make([]string, s.cfg.BackupCodeCount)
	rows := make([]BackupCode, s.cfg.BackupCodeCount)
	for i := range plain {
		code, err := newBackupCode(s.cfg.Random)
		if err != nil {
			return nil, nil, err
		}
		salt, err := newSalt(s.cfg.Random)
		if err != nil {
			return nil, nil, err
		}
		normalized, _ := NormalizeBackupCode(code)
		plain[i] = code
		rows[i] = BackupCode{UserID: userID, Salt: salt, Hash: hashBackupCode(salt, normalized), CreatedAt: now}
	}
	return plain, rows, nil
}

// lockCredential reads a user's credential inside tx, locking the row on
// databases with row locks so concurrent verifications queue behind it.
// stateName is the status name of a stored credential state.
func stateName(state string) string {
	if state == StateActive {
		return StatusEnabled
	}
	return StatusPending
}

func (s *Service) lockCredential(tx *gorm.DB, d dialect, userID string) (*Credential, error) {
	var creds []Credential
	err := tx.Raw("SELECT * FROM "+d.quote(s.cfg.Tables.Credentials)+" WHERE user_id = ?"+d.forUpdate(), userID).Scan(&creds).Error
	if err != nil {
		return nil, fmt.Errorf("read credential: %w", err)
	}
	if len(creds) == 0 {
		return nil, ErrNotEnrolled
	}
	return &creds[0], nil
}

func (s *Service) deleteEnrollment(tx *gorm.DB, userID string) error {
	if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id = ?", userID).Delete(&BackupCode{}).Error; err != nil {
		return fmt.Errorf("delete backup codes: %w", err)
	}
	if err := tx.Table(s.cfg.Tables.Credentials).Where("user_id = ?", userID).Delete(&Credential{}).Error; err != nil {
		return fmt.Errorf("delete credential: %w", err)
	}
	return nil
}

func (s *Service) audit(tx *gorm.DB, action string, u User, outcome, reason string) error {
	entry := AuditEntry{
		At: s.now(), Actor: s.cfg.Actor, Host: s.cfg.Host, Action: action,
		UserID: u.ID, UserLogin: u.Login, Outcome: outcome, Reason: reason,
	}
	if err := tx.Table(s.cfg.Tables.AuditLog).Create(&entry).Error; err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}
