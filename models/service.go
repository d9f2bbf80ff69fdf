package models

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
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

// NewService validates cfg and returns a Service. Zero values of fields
// where zero is meaningless (tables, users, params, limits) take the
// defaults; Skew 0 is honoured as "current step only".
func NewService(cfg Config) (*Service, error) {
	if cfg.Tables == (Tables{}) {
		cfg.Tables, _ = TablesWithPrefix(DefaultTablePrefix)
	}
	if cfg.Users == (UsersTable{}) {
		cfg.Users = DefaultUsersTable
	}
	if err := cfg.Users.Validate(); err != nil {
		return nil, err
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if cfg.Skew < 0 || cfg.Skew > 10 {
		return nil, fmt.Errorf("skew must be 0 to 10 time steps, got %d", cfg.Skew)
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 5
	}
	if cfg.MaxFailures < 1 {
		return nil, fmt.Errorf("max failures must be at least 1, got %d", cfg.MaxFailures)
	}
	if cfg.LockoutDuration == 0 {
		cfg.LockoutDuration = 15 * time.Minute
	}
	if cfg.LockoutDuration < 0 {
		return nil, fmt.Errorf("lockout duration must be positive, got %s", cfg.LockoutDuration)
	}
	if cfg.BackupCodeCount == 0 {
		cfg.BackupCodeCount = 10
	}
	if cfg.BackupCodeCount < 1 || cfg.BackupCodeCount > 100 {
		return nil, fmt.Errorf("backup code count must be 1 to 100, got %d", cfg.BackupCodeCount)
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
