package models_test

import (
	"strings"
	"testing"

	"github.com/totpadm/totpadm/models"
)

// The library's errors reach an application's end users: they state what
// went wrong and give no command-line advice, which the CLI adds.
func TestErrorsAreNeutral(t *testing.T) {
	for _, err := range []error{
		models.ErrUserNotFound, models.ErrNotEnrolled, models.ErrAlreadyEnrolled, models.ErrAmbiguousUser,
		models.ErrCodeRejected, models.ErrReplayed, models.ErrLocked, models.ErrPending, models.ErrMalformedCode,
		models.ErrInvalidURI, models.ErrInvalidUserRef, models.ErrReasonRequired, models.ErrNoKey, models.ErrKeyFormat,
		models.ErrWrongKey, models.ErrCorruptCredential, models.ErrSchemaMissing, models.ErrSchemaVersion,
		&models.SchemaVersionError{Database: 2, Code: 1}, &models.SchemaVersionError{Database: 0, Code: 1},
	} {
		for _, advice := range []string{"--", "totpadm migrate", "totpadm keygen", "TOTPADM_", "upgrade totpadm"} {
			if strings.Contains(err.Error(), advice) {
				t.Errorf("%q gives CLI advice (%q)", err, advice)
			}
		}
	}
	if _, err := models.ParseKey("not a key"); err == nil || strings.Contains(err.Error(), "totpadm keygen") {
		t.Errorf("ParseKey(junk) = %v, want a neutral ErrKeyFormat", err)
	}
}
