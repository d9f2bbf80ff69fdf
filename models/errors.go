package models

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers classify failures with errors.Is; the command
// layer maps each class to one of the documented exit codes.
var (
	// ErrUserNotFound: no row in the application's users table matches.
	ErrUserNotFound = errors.New("user not found")
	// ErrNotEnrolled: the user has no 2FA credential at the time of the
	// call. From Verify it is a refusal like any other: a login path learns
	// that a user has no 2FA from SecondFactor, not from this error.
	ErrNotEnrolled = errors.New("not enrolled in 2FA")
	// ErrAlreadyEnrolled: enroll without Force on a user who has a credential.
	ErrAlreadyEnrolled = errors.New("already enrolled")

	// ErrCodeRejected is the parent of every "the code did not get the user
	// in" outcome; ErrReplayed and ErrLocked wrap it.
	ErrCodeRejected = errors.New("code rejected")
	ErrReplayed     = &rejection{"code already used (each time step and backup code is accepted once)"}
	ErrLocked       = &rejection{"2FA locked after too many failed codes"}
	ErrPending      = &rejection{"enrollment is pending: confirm it with a code from the authenticator app, not a backup code"}

	// ErrMalformedCode: the input is neither a well-formed TOTP code nor a
	// well-formed backup code. It is usage, not a failed guess, so it does
	// not count towards the lockout.
	ErrMalformedCode = errors.New("malformed code")
	// ErrInvalidURI: an otpauth URI that cannot be imported.
	ErrInvalidURI = errors.New("invalid otpauth URI")
	// ErrReasonRequired: disable needs a reason for the audit log.
	ErrReasonRequired = errors.New("a reason is required (it goes to the audit log)")
	// ErrInvalidUserRef: a user reference that cannot name anybody.
	ErrInvalidUserRef = errors.New("invalid user reference")

	// ErrNoKey: a secret must be sealed or opened and no key is configured.
	ErrNoKey = errors.New("no encryption key configured")
	// ErrKeyFormat: key text that is not a base64 AES-256 key.
	ErrKeyFormat = errors.New("not a totpadm key")
	// ErrWrongKey: the configured key cannot open a stored secret.
	ErrWrongKey = errors.New("the configured key cannot decrypt this secret")
	// ErrCorruptCredential: a stored credential holds values totpadm never
	// writes; the user needs a new enrollment.
	ErrCorruptCredential = errors.New("stored credential is corrupt")
	// ErrUnsupportedParams: the store cannot keep these TOTP parameters
	// (django-otp's TOTP devices are SHA1 with 6 or 8 digits).
	ErrUnsupportedParams = errors.New("TOTP parameters not supported by this store")
	// ErrInTransaction: Verify or Confirm was given a handle inside a
	// transaction; see Service.Verify.
	ErrInTransaction = errors.New("must not run inside the caller's transaction: a rejected code's failure count and audit row have to commit even when the caller rolls back, or the lockout never triggers")
	// ErrSchemaMissing / ErrSchemaVersion: totpadm's tables are absent or
	// at a version this binary does not speak.
	ErrSchemaMissing = errors.New("totpadm's tables do not exist in this database")
	ErrSchemaVersion = errors.New("schema version mismatch")
)

// SchemaVersionError is ErrSchemaVersion with the two versions, so a
// caller can tell "migrate the database" from "upgrade the code".
type SchemaVersionError struct {
	Database int // the version the database's tables are at
	Code     int // the version this package speaks (SchemaVersion)
}

func (e *SchemaVersionError) Error() string {
	if e.Database > e.Code {
		return fmt.Sprintf("%s: the database is at version %d, newer than this code (%d)", ErrSchemaVersion, e.Database, e.Code)
	}
	return fmt.Sprintf("%s: the database is at version %d, this code needs %d", ErrSchemaVersion, e.Database, e.Code)
}

func (e *SchemaVersionError) Is(target error) bool { return target == ErrSchemaVersion }

type rejection struct{ msg string }

func (r *rejection) Error() string        { return r.msg }
func (r *rejection) Is(target error) bool { return target == ErrCodeRejected }
