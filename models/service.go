package models

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Config holds the rules every caller shares: the admin tool and the
// application's login path construct a Service from the same values.
type Config struct {
	Tables Tables     // totpadm's tables; default prefix totp_
	Users  UsersTable // the application's users table (read only)
	Key    *Key       // seals and opens secrets; nil is allowed until one is needed
	// OldKeys still open secrets but never seal new ones: during a key
	// rotation the application keeps verifying whichever key a row is under.
	OldKeys []*Key

	Issuer string // shown by authenticator apps above the account name
	Params Params // RFC 6238 parameters for new enrollments
	Skew   int    // time steps accepted either side of now; 0 = current step only

	MaxFailures     int           // consecutive failures before lockout (default 5)
	LockoutDuration time.Duration // how long a lockout lasts (default 15m)
	BackupCodeCount int           // codes per user (default 10)

	Actor string // who is acting, recorded in the audit log
	Host  string // where they act from, recorded in the audit log; default the machine's hostname

	// OnChange, if set, is told of every committed change (enroll,
	// import, confirmation, backup codes, disable, unlock, rotate-key):
	// once per transaction, after it commits, never for a refused or
	// failed user or inside the caller's transaction. See ChangeHook.
	OnChange ChangeHook

	// DjangoOTP are the application's django-otp settings, for the
	// django-otp store; the zero value is django-otp's defaults.
	DjangoOTP DjangoOTPSettings

	Now    func() time.Time // injectable clock; default time.Now
	Random io.Reader        // injectable randomness; default crypto/rand
}

// DefaultConfig returns the documented defaults: SHA1, 6 digits, 30 s,
// ±1 time step, lockout after 5 failures for 15 minutes, 10 backup codes.
// Start from it and set Key, Actor and whatever else differs.
func DefaultConfig() Config {
	tables, _ := TablesWithPrefix(DefaultTablePrefix)
	return Config{
		Tables:          tables,
		Users:           DefaultUsersTable,
		Issuer:          "totpadm",
		Params:          DefaultParams,
		Skew:            1,
		MaxFailures:     5,
		LockoutDuration: 15 * time.Minute,
		BackupCodeCount: 10,
	}
}

// Service applies totpadm's rules to a database. It holds no connection:
// every method takes the *gorm.DB to use. Enroll, Disable and the other
// administrative changes accept the application's own transaction and
// commit or roll back with it; Verify and Confirm refuse one, because a
// rejected code must be counted even when the caller rolls back.
type Service struct {
	cfg Config
}

// NewService returns a Service for cfg. Zero values of fields where zero
// is meaningless (tables, users, issuer, params, limits) take the
// defaults of DefaultConfig; Skew 0 is honoured as "current step only".
// What is left must pass Validate; NewService returns Validate's error.
func NewService(cfg Config) (*Service, error) {
	def := DefaultConfig()
	if cfg.Tables == (Tables{}) {
		cfg.Tables = def.Tables
	}
	if cfg.Users == (UsersTable{}) {
		cfg.Users = def.Users
	}
	if cfg.Issuer == "" {
		cfg.Issuer = def.Issuer
	}
	if cfg.Params == (Params{}) {
		cfg.Params = def.Params
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = def.MaxFailures
	}
	if cfg.LockoutDuration == 0 {
		cfg.LockoutDuration = def.LockoutDuration
	}
	if cfg.BackupCodeCount == 0 {
		cfg.BackupCodeCount = def.BackupCodeCount
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Actor == "" {
		cfg.Actor = "unknown"
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname() // the audit log says where an action came from
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	return &Service{cfg: cfg}, nil
}

// SettingError is a Config field that cannot be used: which field, and
// why. It is the one statement of each setting's rule, so that a caller
// that names the setting its own way (a command-line flag, a key of its
// configuration file) says the same thing under its own name: its name,
// a space, then Rule.
type SettingError struct {
	// Field is the Config field as Go spells it: "MaxFailures",
	// "LockoutDuration", "Params.Digits", "Users.IDColumn".
	Field string
	// Rule is what is wrong, without the setting's name:
	// "must be at least 1, got 0".
	Rule string
	// Err is the whole sentence, the setting named in words ("max
	// failures must be at least 1, got 0"); it is also Error's text.
	Err error
}

func (e *SettingError) Error() string { return e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// settingError attributes err, a sentence about one setting that starts
// with subject, to field. A sentence that does not start so (the
// users-table mapping's "is not a valid identifier" names the value
// instead) keeps its words whole behind "is not usable: ".
func settingError(field, subject string, err error) *SettingError {
	rule, ok := strings.CutPrefix(err.Error(), subject+" ")
	if subject == "" || !ok {
		rule = "is not usable: " + err.Error()
	}
	return &SettingError{Field: field, Rule: rule, Err: err}
}

// Validate checks cfg as it stands, zero values included (NewService
// gives zero fields their defaults first, Validate does not: a caller
// that set MaxFailures to 0 hears so). Each unusable field is a
// *SettingError, in the order Config declares them; with one the error is
// that *SettingError, with several their errors.Join (errors.As finds the
// first). Key, OldKeys, Actor, Host, OnChange, Now and Random take any
// value, and Tables come checked from TablesWithPrefix.
func (cfg Config) Validate() error {
	var errs []error
	add := func(e *SettingError) { errs = append(errs, e) }

	// Each column of the users-table mapping is checked alone, among
	// defaults, so that a refusal names the column that caused it.
	for _, f := range []struct {
		field, subject string
		set            func(*UsersTable)
	}{
		{"Users.Table", "users table", func(u *UsersTable) { u.Table = cfg.Users.Table }},
		{"Users.IDColumn", "user id column", func(u *UsersTable) { u.IDColumn = cfg.Users.IDColumn }},
		{"Users.LoginColumn", "user login column", func(u *UsersTable) { u.LoginColumn = cfg.Users.LoginColumn }},
		{"Users.EmailColumn", "", func(u *UsersTable) { u.EmailColumn = cfg.Users.EmailColumn }},
		{"Users.ProtectedColumn", "", func(u *UsersTable) { u.ProtectedColumn = cfg.Users.ProtectedColumn }},
	} {
		u := DefaultUsersTable
		f.set(&u)
		if err := u.Validate(); err != nil {
			add(settingError(f.field, f.subject, err))
		}
	}
	if strings.TrimSpace(cfg.Issuer) == "" {
		// Apps show the issuer to tell accounts apart, and without one a
		// label like "id:42" would read back as issuer "id".
		add(settingError("Issuer", "issuer", errors.New("issuer must not be empty: authenticator apps show it above the account")))
	}
	for _, f := range []struct {
		field, subject string
		set            func(*Params)
	}{
		{"Params.Algorithm", "algorithm", func(p *Params) { p.Algorithm = cfg.Params.Algorithm }},
		{"Params.Digits", "digits", func(p *Params) { p.Digits = cfg.Params.Digits }},
		{"Params.Period", "period", func(p *Params) { p.Period = cfg.Params.Period }},
	} {
		p := DefaultParams
		f.set(&p)
		if err := p.Validate(); err != nil {
			add(settingError(f.field, f.subject, err))
		}
	}
	if cfg.Skew < 0 || cfg.Skew > 10 {
		add(settingError("Skew", "skew", fmt.Errorf("skew must be 0 to 10 time steps, got %d", cfg.Skew)))
	}
	if cfg.MaxFailures < 1 {
		add(settingError("MaxFailures", "max failures", fmt.Errorf("max failures must be at least 1, got %d", cfg.MaxFailures)))
	}
	if cfg.LockoutDuration <= 0 {
		add(settingError("LockoutDuration", "lockout duration", fmt.Errorf("lockout duration must be positive, got %s", cfg.LockoutDuration)))
	}
	if cfg.BackupCodeCount < 1 || cfg.BackupCodeCount > 100 {
		add(settingError("BackupCodeCount", "backup code count", fmt.Errorf("backup code count must be 1 to 100, got %d", cfg.BackupCodeCount)))
	}
	for _, f := range []struct {
		field, subject string
		v              float64
	}{
		{"DjangoOTP.TOTPThrottleFactor", "django-otp TOTP throttle factor", cfg.DjangoOTP.TOTPThrottleFactor},
		{"DjangoOTP.StaticThrottleFactor", "django-otp static throttle factor", cfg.DjangoOTP.StaticThrottleFactor},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			add(settingError(f.field, f.subject, fmt.Errorf("%s must be a number of seconds, 0 or more, got %v", f.subject, f.v)))
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// Config returns the effective configuration, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) now() time.Time { return truncateTime(s.cfg.Now()) }

// session binds a database handle to a context and its dialect.
type session struct {
	db *gorm.DB
	d  dialect
}

func (s *Service) session(ctx context.Context, db *gorm.DB) (session, error) {
	d, err := dialectOf(db)
	if err != nil {
		return session{}, err
	}
	return session{db: db.WithContext(ctx), d: d}, nil
}

func (s *Service) requireKey() (*Key, error) {
	if s.cfg.Key == nil {
		return nil, ErrNoKey
	}
	return s.cfg.Key, nil
}

// openSecret decrypts a credential's secret with whichever configured key
// (current or old) sealed it; with neither, the current key's open
// reports the mismatch. Callers clear the result when done.
func (s *Service) openSecret(c *Credential) ([]byte, error) {
	key, err := s.requireKey()
	if err != nil {
		return nil, err
	}
	for _, k := range s.cfg.OldKeys {
		if k != nil && k.ID() == c.KeyID {
			key = k
		}
	}
	return key.open(c.UserID, c.KeyID, c.Secret)
}
