package commands

import (
	"errors"
	"fmt"
	"strings"

	"github.com/totpadm/totpadm/models"
)

// Exit codes (SPEC §3). Scripts branch on these, so they never change.
const (
	ExitOK          = 0 // success
	ExitRejected    = 1 // code wrong, replayed or locked out
	ExitUsage       = 2 // usage or invalid input, also a user reference that matches several users
	ExitNotFound    = 3 // user not found or not enrolled
	ExitConflict    = 4 // already enrolled without --force; protected account without --allow-protected
	ExitEnvironment = 5 // database, configuration, key
)

// Outcomes: the per-user result word of every multi-user command (the
// "outcome" field of -o json and -o csv, and of table lines). Scripts
// branch on them as on the exit codes, so they never change.
const (
	OutcomeEnrolled        = "enrolled"         // enroll: saved (pending or active, see "state")
	OutcomeConfirmed       = "confirmed"        // enroll: saved and confirmed with the first code
	OutcomeSkipped         = "skipped"          // enroll/import --skip-enrolled: already enrolled, left alone
	OutcomeAlreadyEnrolled = "already enrolled" // enroll/import without --force: refused (exit 4)
	OutcomeWouldEnroll     = "would enroll"     // --dry-run
	OutcomeWouldReplace    = "would replace"    // --dry-run --force over an enrollment
	OutcomeImported        = "imported"
	OutcomeWouldImport     = "would import"
	OutcomeExported        = "exported"
	OutcomeAccepted        = "accepted"      // verify
	OutcomeDisabled        = "disabled"      // disable
	OutcomeWouldDisable    = "would disable" // disable --dry-run
	OutcomeNotEnrolled     = "not enrolled"  // no 2FA: done for disable, exit 3 elsewhere
	OutcomeUnlocked        = "unlocked"
	OutcomeNotLocked       = "not locked" // unlock of a user who was not locked: done
	OutcomeRegenerated     = "regenerated"
	OutcomeNotFound        = "not found" // exit 3
	OutcomeAmbiguous       = "ambiguous" // the login matches several users: exit 2
	OutcomeRejected        = "rejected"  // exit 1
	OutcomeInvalid         = "invalid"   // an unusable input line: exit 2
	OutcomeDuplicate       = "duplicate" // import: the user is on an earlier line: exit 2
	OutcomeError           = "error"     // anything else: exit 5
	// OutcomeProtected (protected.go): a protected account refused: exit 4
	// OutcomeIssued (tempcode.go): temp-code issued a code
)

// usageError is bad input from the person at the keyboard.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// ExitCode classifies err into one of the documented exit codes. Anything
// unclassified is an environment failure: the safe assumption for a
// database or I/O error.
func ExitCode(err error) int {
	var usage usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrConfig), errors.Is(err, models.ErrRoleUnlimited):
		// A bad value from the environment or a configuration file is the
		// installation's problem, not the typist's, whatever it wraps.
		return ExitEnvironment
	case errors.As(err, &usage),
		errors.Is(err, models.ErrMalformedCode),
		errors.Is(err, models.ErrInvalidUserRef),
		errors.Is(err, models.ErrAmbiguousUser),
		errors.Is(err, models.ErrReasonRequired),
		errors.Is(err, models.ErrInvalidTTL),
		errors.Is(err, models.ErrSameKey),
		errors.Is(err, models.ErrInvalidURI):
		return ExitUsage
	case errors.Is(err, models.ErrCodeRejected):
		return ExitRejected
	case errors.Is(err, models.ErrUserNotFound), errors.Is(err, models.ErrNotEnrolled):
		return ExitNotFound
	case errors.Is(err, models.ErrAlreadyEnrolled), errors.Is(err, models.ErrProtected):
		return ExitConflict
	default:
		return ExitEnvironment
	}
}

// advice is what the person at the keyboard can do about a library error.
// The library's errors are neutral — an application's end users must not
// be told to pass --key-file — so the CLI adds the remedy here, beside
// the exit code it maps the error to. Each remedy starts with the
// punctuation that joins it to the message.
func advice(err error) string {
	var version *models.SchemaVersionError
	switch {
	case errors.Is(err, models.ErrNoKey):
		return ": pass --key-file with the key this database's secrets are sealed with, or set TOTPADM_KEY (a new installation makes one with `totpadm keygen --out totpadm.key`)"
	case errors.Is(err, models.ErrKeyFormat):
		return " (generate one with `totpadm keygen`)"
	case errors.Is(err, models.ErrWrongKey):
		return " (wrong TOTPADM_KEY or key file?)"
	case errors.Is(err, models.ErrCorruptCredential):
		return " (re-enroll the user with enroll --force)"
	case errors.Is(err, models.ErrAlreadyEnrolled):
		return "; use --force to replace the enrollment"
	case errors.Is(err, models.ErrSchemaMissing):
		return ": run `totpadm migrate`"
	case errors.As(err, &version) && version.Database > version.Code:
		return ": upgrade totpadm"
	case errors.As(err, &version):
		return ": run `totpadm migrate`"
	}
	return ""
}

// errorText is err's message with the CLI's advice, unless the message
// already gives a remedy of its own (import names --force and
// --skip-enrolled itself).
func errorText(err error) string {
	msg := err.Error()
	a := advice(err)
	if a == "" || strings.Contains(msg, "--force") || strings.Contains(msg, "totpadm migrate") {
		return msg
	}
	return msg + a
}
