package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
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
// audit row, in one transaction.
func (s *Service) Enroll(ctx context.Context, db *gorm.DB, e *Enrollment, opt EnrollOptions) (EnrollResult, error) {
	res, err := s.enroll(ctx, db, e, opt)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("enroll %s: %w", e.User, err)
	}
	return res, nil
}

func (s *Service) enroll(ctx context.Context, db *gorm.DB, e *Enrollment, opt EnrollOptions) (EnrollResult, error) {
	p, err := s.prepareEnrollment(e, opt)
	if err != nil {
		return EnrollResult{}, err
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return EnrollResult{}, err
	}
	if err := s.checkSealingKey(sess); err != nil {
		return EnrollResult{}, err
	}
	var res EnrollResult
	save := func(tx *gorm.DB) error {
		p.replaces = false
		existing, err := s.existingStates(tx, sess.d, []string{e.User.ID})
		if err != nil {
			return err
		}
		res, err = s.decide(p, existing, opt)
		if err != nil || res.Skipped {
			return err
		}
		return s.writeEnrollments(tx, []*preparedEnrollment{p})
	}
	// A concurrent enrollment of the same user may commit between our
	// check and our insert (no row existed to lock). Retrying then sees its
	// row and decides on it; each round at least one contender commits, so
	// the loop ends.
	for attempt := 0; ; attempt++ {
		err = s.transaction(sess, save)
		if err == nil || !isUniqueViolation(err) || attempt == maxTxAttempts {
			break
		}
	}
	if err != nil {
		return EnrollResult{}, err
	}
	return res, nil
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
	codes    []BackupCode
	plain    []string
	replaces bool
	action   string // audit action: enroll or import
}

func (s *Service) prepareEnrollment(e *Enrollment, opt EnrollOptions) (*preparedEnrollment, error) {
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
	plain, codes, err := s.newBackupCodes(e.User.ID, now)
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
	state, found := existing[p.user.ID]
	switch {
	case !found:
	case opt.SkipEnrolled:
		return EnrollResult{State: state, Skipped: true}, nil
	case !opt.Force:
		return EnrollResult{}, fmt.Errorf("%w (%s); use --force to replace the enrollment", ErrAlreadyEnrolled, stateName(state))
	default:
		p.replaces = true
	}
	return EnrollResult{State: p.cred.State, Replaced: p.replaces, BackupCodes: p.plain}, nil
}

// existingStates returns the credential state of each of ids that has one,
// locking those rows where the database has row locks.
func (s *Service) existingStates(tx *gorm.DB, d dialect, ids []string) (map[string]string, error) {
	var rows []struct {
		UserID string
		State  string
	}
	q := "SELECT user_id, state FROM " + d.quote(s.cfg.Tables.Credentials) + " WHERE user_id IN ?" + d.forUpdate()
	if err := tx.Raw(q, ids).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	states := make(map[string]string, len(rows))
	for _, r := range rows {
		states[r.UserID] = r.State
	}
	return states, nil
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
		codes    = make([]BackupCode, 0, len(ps)*s.cfg.BackupCodeCount)
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
		codes = append(codes, p.codes...)
		audits = append(audits, s.auditEntry(p.action, p.user, outcome, ""))
	}
	if len(replaced) > 0 {
		if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id IN ?", replaced).Delete(&BackupCode{}).Error; err != nil {
			return fmt.Errorf("delete replaced backup codes: %w", err)
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
	if err := s.insertBackupCodes(tx, d, codes); err != nil {
		return err
	}
	return s.writeAudit(tx, audits)
}

// rewriteCredential overwrites every column of c's existing row.
func (s *Service) rewriteCredential(tx *gorm.DB, d dialect, c *Credential) error {
	set := make([]string, 0, len(credentialColumns)-1)
	for _, col := range credentialColumns[1:] { // all but user_id, the key
		set = append(set, d.quote(col)+" = ?")
	}
	values := c.values()
	args := append(values[1:len(values):len(values)], c.UserID)
	q := "UPDATE " + d.quote(s.cfg.Tables.Credentials) + " SET " + strings.Join(set, ", ") + " WHERE user_id = ?"
	res := tx.Exec(q, args...)
	if res.Error != nil {
		return fmt.Errorf("replace credential: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		// The row was locked by this transaction; it cannot have gone.
		return fmt.Errorf("replace credential: %d rows changed, want 1", res.RowsAffected)
	}
	return nil
}

func (s *Service) insertBackupCodes(tx *gorm.DB, d dialect, codes []BackupCode) error {
	rows := make([][]any, len(codes))
	for i := range codes {
		rows[i] = codes[i].values()
	}
	if err := insertRows(tx, d, s.cfg.Tables.BackupCodes, backupCodeColumns, rows); err != nil {
		return fmt.Errorf("save backup codes: %w", err)
	}
	return nil
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
	quoted := make([]string, len(credentialColumns))
	for i, c := range credentialColumns {
		quoted[i] = d.quote(c)
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM " + d.quote(s.cfg.Tables.Credentials) + " WHERE user_id = ?" + d.forUpdate()
	var (
		c                           Credential
		activated, lastUsed, locked sql.NullTime
	)
	err := tx.Raw(q, userID).Row().Scan(c.scanTargets(&activated, &lastUsed, &locked)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("read credential: %w", err)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.ActivatedAt, c.LastUsedAt, c.LockedUntil = nullTimePtr(activated), nullTimePtr(lastUsed), nullTimePtr(locked)
	return &c, nil
}

func (s *Service) deleteEnrollments(tx *gorm.DB, userIDs []string) error {
	if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id IN ?", userIDs).Delete(&BackupCode{}).Error; err != nil {
		return fmt.Errorf("delete backup codes: %w", err)
	}
	if err := tx.Table(s.cfg.Tables.Credentials).Where("user_id IN ?", userIDs).Delete(&Credential{}).Error; err != nil {
		return fmt.Errorf("delete credentials: %w", err)
	}
	return nil
}

func (s *Service) auditEntry(action string, u User, outcome, reason string) AuditEntry {
	return AuditEntry{
		At: s.now(), Actor: s.cfg.Actor, Host: s.cfg.Host, Action: action,
		UserID: u.ID, UserLogin: u.Login, Outcome: outcome, Reason: reason,
	}
}

func (s *Service) audit(tx *gorm.DB, action string, u User, outcome, reason string) error {
	return s.writeAudit(tx, []AuditEntry{s.auditEntry(action, u, outcome, reason)})
}

func (s *Service) writeAudit(tx *gorm.DB, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	d, err := dialectOf(tx)
	if err != nil {
		return err
	}
	rows := make([][]any, len(entries))
	for i := range entries {
		rows[i] = entries[i].values()
	}
	if err := insertRows(tx, d, s.cfg.Tables.AuditLog, auditColumns, rows); err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}
