package models_test

import (
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// SecondFactor is how a login path learns whether to ask for a code; it
// follows the credential through its life and fails closed.
func TestSecondFactor(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.user("alice")
		check := func(when string, svc *models.Service, want models.Requirement, wantErr bool) {
			t.Helper()
			got, err := svc.SecondFactor(e.ctx, db.Gorm, alice)
			if (err != nil) != wantErr || got != want {
				t.Errorf("%s: SecondFactor = %v, %v; want %v (error: %v)", when, got, err, want, wantErr)
			}
		}
		check("before enrollment", e.svc, models.NoSecondFactor, false)
		e.enrollWith(e.svc, "alice", models.Params{}, models.EnrollOptions{}, false)
		check("pending enrollment", e.svc, models.SecondFactorRequired, false)
		en := e.enrollWith(e.svc, "alice", models.Params{}, models.EnrollOptions{Force: true}, true)
		check("active enrollment", e.svc, models.SecondFactorRequired, false)
		if err := e.svc.Disable(e.ctx, db.Gorm, en.user, "test"); err != nil {
			t.Fatal(err)
		}
		check("after disable", e.svc, models.NoSecondFactor, false)

		// A database that cannot answer (here: totpadm's tables under
		// another prefix do not exist) must never read as "no 2FA".
		broken := e.service(func(c *models.Config) { c.Tables, _ = models.TablesWithPrefix("missing_") })
		check("unreadable credentials", broken, models.SecondFactorRequired, true)
	})
}

func TestRequirementZeroValueRequiresACode(t *testing.T) {
	var r models.Requirement
	if r != models.SecondFactorRequired {
		t.Fatalf("the zero Requirement is %v; it must ask for a code", r)
	}
}
