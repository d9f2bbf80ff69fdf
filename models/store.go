package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Store is where users' 2FA data lives, and whose rules apply to it:
// totpadm's own tables (the Service itself, store "totpadm") or the tables
// of a framework the application already uses (DjangoOTP, "django-otp").
// Commands work only through a Store, so that a new store is new files
// that implement it plus one entry in NewStore, never edits across the
// code.
//
// Every store reads users through the same resolver (Service.LookupUsers)
// and records its actions in totpadm's own audit log, with the same change
// hooks; what differs is where the secret and the codes are and how a
// code is checked.
type Store interface {
	// Info describes the store for doctor, config show and the README.
	Info() StoreInfo
	// CheckSchema returns nil when the tables the store needs exist at the
	// version this code speaks, ErrSchemaMissing or a *SchemaVersionError
	// otherwise.
	CheckSchema(ctx context.Context, db *gorm.DB) error
	// Migrate creates or upgrades the tables totpadm owns for this store,
	// and only those.
	Migrate(ctx context.Context, db *gorm.DB, dryRun bool) (MigrationPlan, error)

	SecondFactor(ctx context.Context, db *gorm.DB, user User) (Requirement, error)
	UserStatus(ctx context.Context, db *gorm.DB, user User) (StatusRow, error)
	EachStatus(ctx context.Context, db *gorm.DB, state string, fn func(StatusRow) error) error

	Verify(ctx context.Context, db *gorm.DB, user User, code string) (VerifyResult, error)
	Confirm(ctx context.Context, db *gorm.DB, user User, code string) (VerifyResult, error)

	NewEnrollment(user User, p Params) (*Enrollment, error)
	ImportedEnrollment(user User, secret []byte, p Params) (*Enrollment, error)
	CheckCode(e *Enrollment, code string) (bool, error)
	Enroll(ctx context.Context, db *gorm.DB, e *Enrollment, opt EnrollOptions) (EnrollResult, error)
	EnrollMany(ctx context.Context, db *gorm.DB, es []*Enrollment, opt EnrollOptions, bulk BulkOptions, done func(i int, res EnrollResult, err error)) error
	AbandonEnrollment(ctx context.Context, db *gorm.DB, e *Enrollment, why string) error

	RegenerateMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, codes []string, err error)) error
	DisableMany(ctx context.Context, db *gorm.DB, users []User, reason string, bulk BulkOptions, done func(i int, err error)) error
	UnlockMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, wasLocked bool, err error)) error
	ExportEnrollment(ctx context.Context, db *gorm.DB, user User) (Export, error)
}

// Capabilities that only some stores have. A command that needs one
// asserts it (store.(KeyRotator)) and, when the store lacks it, says so
// in one line instead of doing something else.
type (
	// KeyRotator re-encrypts stored secrets under a new key.
	KeyRotator interface {
		CheckSealingKey(ctx context.Context, db *gorm.DB) error
		RotateKey(ctx context.Context, db *gorm.DB, newKey *Key, batch int, progress func(done, total int)) (RotateResult, error)
	}
	// TempCodeIssuer issues temporary access codes that Verify accepts.
	TempCodeIssuer interface {
		IssueTempCodes(ctx context.Context, db *gorm.DB, users []User, ttl time.Duration, reason string, bulk BulkOptions, done func(i int, code TempCode, err error)) error
	}
	// Diagnoser searches a wide window for a code without consuming it.
	Diagnoser interface {
		Diagnose(ctx context.Context, db *gorm.DB, user User, code string) (Diagnosis, error)
	}
)

// StoreInfo says what a store is and how it keeps its secrets.
type StoreInfo struct {
	Name string
	// Tables holds the 2FA data: totpadm's own, or the framework's (which
	// totpadm never alters the schema of).
	Tables []string
	// SecretsEncrypted: TOTP secrets are sealed at rest (AES-256-GCM with
	// totpadm's key). False for a framework that keeps them in plain text.
	SecretsEncrypted bool
	// CodesHashed: backup codes are stored only as salted hashes.
	CodesHashed bool
	// NeedsKey: the store reads or writes secrets with totpadm's key.
	NeedsKey bool
	// DeviceCounts: StatusRow.Devices is meaningful (a framework that
	// keeps several devices per user).
	DeviceCounts bool
}

// Store names, as --store takes them.
const (
	StoreTotpadm   = "totpadm"
	StoreDjangoOTP = "django-otp"
)

// StoreNames lists the stores NewStore knows, default first.
func StoreNames() []string { return []string{StoreTotpadm, StoreDjangoOTP} }

// ErrUnknownStore is returned by NewStore for a name it does not know.
var ErrUnknownStore = errors.New("unknown store")

// CheckStoreName returns nil when NewStore knows name.
func CheckStoreName(name string) error {
	for _, n := range StoreNames() {
		if name == n {
			return nil
		}
	}
	return fmt.Errorf("%w %q: want %s", ErrUnknownStore, name, strings.Join(StoreNames(), " or "))
}

// NewStore returns the store called name over svc, which supplies the
// configuration, the users table, the audit log and the clock.
func NewStore(name string, svc *Service) (Store, error) {
	if err := CheckStoreName(name); err != nil {
		return nil, err
	}
	if name == StoreDjangoOTP {
		return NewDjangoOTP(svc), nil
	}
	return svc, nil
}

// StoreUsersTable is the users table a store's framework keeps, used when
// none is configured: Django's auth_user for django-otp.
func StoreUsersTable(name string) UsersTable {
	if name == StoreDjangoOTP {
		return UsersTable{Table: "auth_user", IDColumn: "id", LoginColumn: "username", EmailColumn: "email"}
	}
	return DefaultUsersTable
}

// Info describes totpadm's own store.
func (s *Service) Info() StoreInfo {
	t := s.cfg.Tables
	return StoreInfo{
		Name:             StoreTotpadm,
		Tables:           []string{t.Credentials, t.BackupCodes, t.TempCodes},
		SecretsEncrypted: true,
		CodesHashed:      true,
		NeedsKey:         true,
	}
}

// CheckSchema checks totpadm's own tables (see the function CheckSchema).
func (s *Service) CheckSchema(ctx context.Context, db *gorm.DB) error {
	return CheckSchema(ctx, db, s.cfg.Tables)
}

// Migrate creates or upgrades totpadm's own tables (see the function
// Migrate).
func (s *Service) Migrate(ctx context.Context, db *gorm.DB, dryRun bool) (MigrationPlan, error) {
	return Migrate(ctx, db, s.cfg.Tables, dryRun)
}
