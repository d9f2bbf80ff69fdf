package commands

import (
	"errors"
	"fmt"

	"github.com/totpadm/totpadm/models"
)

// Exit codes (SPEC §3). Scripts branch on these, so they never change.
const (
	ExitOK          = 0 // success
	ExitRejected    = 1 // code wrong, replayed or locked out
	ExitUsage       = 2 // usage or invalid input, also a user reference that matches several users
	ExitNotFound    = 3 // user not found or not enrolled
	ExitConflict    = 4 // already enrolled without --force
	ExitEnvironment = 5 // database, configuration, key
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
	case errors.As(err, &usage),
		errors.Is(err, models.ErrMalformedCode),
		errors.Is(err, models.ErrInvalidUserRef),
		errors.Is(err, models.ErrAmbiguousUser),
		errors.Is(err, models.ErrReasonRequired),
		errors.Is(err, models.ErrSameKey),
		errors.Is(err, models.ErrInvalidURI):
		return ExitUsage
	case errors.Is(err, models.ErrCodeRejected):
		return ExitRejected
	case errors.Is(err, models.ErrUserNotFound), errors.Is(err, models.ErrNotEnrolled):
		return ExitNotFound
	case errors.Is(err, models.ErrAlreadyEnrolled):
		return ExitConflict
	default:
		return ExitEnvironment
	}
}
