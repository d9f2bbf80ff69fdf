package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// DiagnoseWindow is how far either side of now Diagnose looks for a code.
const DiagnoseWindow = 10 * time.Minute

// Diagnosis is what Diagnose found about a code.
type Diagnosis struct {
	Found bool
	// Offset is the matching step minus the current step: negative when
	// the phone's clock is behind (it shows an older code).
	OffsetSteps int64
	Offset      time.Duration
	// Accepted: within the verify window right now.
	Accepted bool
	// Used: that time step was already accepted once (a replay).
	Used bool
	// Locked: the user's 2FA is locked out right now, so Verify refuses
	// every code, this one too, until LockedUntil.
	Locked      bool
	LockedUntil time.Time
	Period      int
}

// AcceptedNow reports whether Verify would accept the code right now.
func (d Diagnosis) AcceptedNow() bool { return d.Found && d.Accepted && !d.Used && !d.Locked }

// Diagnose looks for code within ±DiagnoseWindow of now, to tell a support
// engineer whether a "wrong" code is really a clock problem. Nothing is
// consumed, no failure is counted and no lockout applies; the only write is
// the audit row that says who ran it and what it found.
//
// It is a support tool, never a login check: it tries 41 time steps and
// counts no failure, so on an end-user path it would be a guessing oracle.
func (s *Service) Diagnose(ctx context.Context, db *gorm.DB, user User, code string) (Diagnosis, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return Diagnosis{}, err
	}
	d, err := s.diagnose(sess, user, code)
	if err != nil {
		return Diagnosis{}, err
	}
	if err := s.transaction(sess, func(tx *gorm.DB) error {
		return s.audit(tx, ActionDiagnose, user, d.outcome(), "")
	}); err != nil {
		return Diagnosis{}, fmt.Errorf("diagnose %s: %w", user, err)
	}
	return d, nil
}

// outcome is the audit log's summary of a diagnosis; never the code.
func (d Diagnosis) outcome() string {
	if d.Locked {
		return d.unlockedOutcome() + ", locked"
	}
	return d.unlockedOutcome()
}

func (d Diagnosis) unlockedOutcome() string {
	switch {
	case !d.Found:
		return fmt.Sprintf("no match within ±%d minutes", int(DiagnoseWindow.Minutes()))
	case d.Used:
		return fmt.Sprintf("match at %+d steps, already used", d.OffsetSteps)
	case d.Accepted:
		return fmt.Sprintf("match at %+d steps, within the window", d.OffsetSteps)
	default:
		return fmt.Sprintf("match at %+d steps, outside the window", d.OffsetSteps)
	}
}

func (s *Service) diagnose(sess session, user User, code string) (Diagnosis, error) {
	kind, code, err := classifyCode(code)
	if err != nil {
		return Diagnosis{}, err
	}
	if kind != kindTOTP {
		return Diagnosis{}, fmt.Errorf("%w: --diagnose checks codes from the app, not backup codes", ErrMalformedCode)
	}
	if _, err := s.requireKey(); err != nil {
		return Diagnosis{}, err
	}
	var creds []Credential
	if err := sess.db.Table(s.cfg.Tables.Credentials).Where("user_id = ?", user.ID).Find(&creds).Error; err != nil {
		return Diagnosis{}, fmt.Errorf("diagnose %s: %w", user, err)
	}
	if len(creds) == 0 {
		return Diagnosis{}, fmt.Errorf("diagnose %s: %w", user, ErrNotEnrolled)
	}
	cred := &creds[0]
	p, err := cred.params()
	if err != nil {
		return Diagnosis{}, fmt.Errorf("diagnose %s: %w", user, err)
	}
	if len(code) != cred.Digits {
		return Diagnosis{}, fmt.Errorf("diagnose %s: %w: want %d digits", user, ErrMalformedCode, cred.Digits)
	}
	secret, err := s.openSecret(cred)
	if err != nil {
		return Diagnosis{}, fmt.Errorf("diagnose %s: %w", user, err)
	}
	// A lockout refuses every code, so a diagnosis that ignored it would
	// call a code acceptable that Verify is about to refuse.
	now := s.now()
	d := Diagnosis{Period: p.Period}
	if cred.LockedUntil != nil && now.Before(*cred.LockedUntil) {
		d.Locked, d.LockedUntil = true, *cred.LockedUntil
	}
	window := int(DiagnoseWindow / (time.Duration(p.Period) * time.Second))
	step, ok, err := matchStep(secret, code, now, window, p)
	if err != nil || !ok {
		return d, err
	}
	offset := step - p.Step(now)
	d.Found = true
	d.OffsetSteps = offset
	d.Offset = time.Duration(offset*int64(p.Period)) * time.Second
	d.Accepted = offset >= -int64(s.cfg.Skew) && offset <= int64(s.cfg.Skew)
	d.Used = step <= cred.LastStep
	return d, nil
}
