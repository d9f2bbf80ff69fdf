package models_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

func (e *env) tempCode(en enrolled, ttl time.Duration) models.TempCode {
	e.t.Helper()
	tc, err := e.svc.IssueTempCode(e.ctx, e.db.Gorm, en.user, ttl, "ticket 99")
	if err != nil {
		e.t.Fatalf("issue temp code for %s: %v", en.user, err)
	}
	return tc
}

func TestTempCodeAcceptedOnceUntilExpiry(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		tc := e.tempCode(en, time.Hour)
		if _, ok := models.NormalizeBackupCode(tc.Code); !ok || len(tc.Code) != 14 {
			t.Errorf("temp code %q is not of the xxxx-xxxx-xxxx form", tc.Code)
		}
		if want := e.clock.Now().Add(time.Hour); !tc.ExpiresAt.Equal(want.Truncate(time.Microsecond)) {
			t.Errorf("expires at %v, want %v", tc.ExpiresAt, want)
		}
		// Stored only hashed.
		if n := db.Count(t, "totp_temp_codes", "user_id = ? AND used_at IS NULL", en.user.ID); n != 1 {
			t.Fatalf("%d temp code rows, want 1", n)
		}
		if strings.Contains(db.Dump(t), tc.Code) || strings.Contains(db.Dump(t), strings.ReplaceAll(tc.Code, "-", "")) {
			t.Error("the plaintext temp code is stored")
		}
		st, err := e.svc.UserStatus(e.ctx, db.Gorm, en.user)
		if err != nil || st.TempCodeUntil == nil || !st.TempCodeUntil.Equal(tc.ExpiresAt) {
			t.Errorf("status with a temp code: %+v, %v; want temp code until %v", st, err, tc.ExpiresAt)
		}
		var listed *time.Time
		if err := e.svc.EachStatus(e.ctx, db.Gorm, "", func(r models.StatusRow) error {
			if r.ID == en.user.ID {
				listed = r.TempCodeUntil
			}
			return nil
		}); err != nil || listed == nil || !listed.Equal(tc.ExpiresAt.Truncate(time.Second)) {
			t.Errorf("EachStatus temp code until %v, %v; want %v", listed, err, tc.ExpiresAt)
		}

		e.clock.Advance(59 * time.Minute)
		res, err := e.verify(en, strings.ToUpper(strings.ReplaceAll(tc.Code, "-", " ")))
		if err != nil || res.Method != models.MethodTempCode {
			t.Fatalf("verify with the temp code: %+v, %v; want accepted as a temporary code", res, err)
		}
		if _, err := e.verify(en, tc.Code); !errors.Is(err, models.ErrReplayed) {
			t.Errorf("temp code used twice: %v, want ErrReplayed", err)
		}
		if c := e.cred(en.user.ID); c.Failures != 0 {
			t.Errorf("a replayed temp code counted as a failure: %+v", c)
		}
		if got := e.unusedCodes(en.user.ID); got != 10 {
			t.Errorf("the temp code consumed a backup code: %d left", got)
		}
		if st, _ := e.svc.UserStatus(e.ctx, db.Gorm, en.user); st.TempCodeUntil != nil {
			t.Errorf("status shows a used temp code until %v", st.TempCodeUntil)
		}
		rows := e.audit()
		var issued, used bool
		for _, r := range rows {
			if r.Action == models.ActionTempCode && strings.HasPrefix(r.Outcome, "issued") && r.Reason.String == "ticket 99" && r.Actor == "tester" {
				issued = true
			}
			if r.Action == models.ActionVerify && r.Outcome == "ok (temporary code)" && strings.Contains(r.Reason.String, "ticket 99") && strings.Contains(r.Reason.String, "tester") {
				used = true
			}
		}
		if !issued || !used {
			t.Errorf("audit log lacks the issue (%v) or the use (%v) with actor and reason: %+v", issued, used, rows)
		}

		// Expiry: a fresh code is refused at its expiry time.
		tc = e.tempCode(en, time.Minute)
		e.clock.Advance(time.Minute)
		if _, err := e.verify(en, tc.Code); !errors.Is(err, models.ErrCodeRejected) || err == nil {
			t.Errorf("expired temp code: %v, want rejected", err)
		}
		if st, _ := e.svc.UserStatus(e.ctx, db.Gorm, en.user); st.TempCodeUntil != nil {
			t.Errorf("status shows an expired temp code until %v", st.TempCodeUntil)
		}
	})
}

func TestTempCodeReplacesOldAndValidates(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		before := db.Dump(t)
		for _, ttl := range []time.Duration{0, -time.Second, 24*time.Hour + time.Nanosecond} {
			if _, err := e.svc.IssueTempCode(e.ctx, db.Gorm, en.user, ttl, "x"); !errors.Is(err, models.ErrInvalidTTL) {
				t.Errorf("TTL %s: %v, want ErrInvalidTTL", ttl, err)
			}
		}
		if _, err := e.svc.IssueTempCode(e.ctx, db.Gorm, en.user, time.Hour, " "); !errors.Is(err, models.ErrReasonRequired) {
			t.Errorf("no reason: %v, want ErrReasonRequired", err)
		}
		e.assertUnchanged(before, "refused temp-code")

		old := e.tempCode(en, 24*time.Hour)
		fresh := e.tempCode(en, time.Hour)
		if n := db.Count(t, "totp_temp_codes", "user_id = ?", en.user.ID); n != 1 {
			t.Errorf("%d temp code rows after a second issue, want 1", n)
		}
		if _, err := e.verify(en, old.Code); !plainRejection(err) {
			t.Errorf("replaced temp code: %v, want a plain rejection", err)
		}
		e.mustVerify(en, fresh.Code)

		// Not enrolled, pending: refused, nothing written.
		before = db.Dump(t)
		if _, err := e.svc.IssueTempCode(e.ctx, db.Gorm, e.user("bob"), time.Hour, "x"); !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("temp code for bob without 2FA: %v, want ErrNotEnrolled", err)
		}
		e.assertUnchanged(before, "temp-code of a user without 2FA")
		carol := e.enroll("carol", false)
		if _, err := e.svc.IssueTempCode(e.ctx, db.Gorm, carol.user, time.Hour, "x"); !errors.Is(err, models.ErrEnrollmentPending) || !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("temp code for a pending enrollment: %v, want ErrEnrollmentPending", err)
		}
		if n := db.Count(t, "totp_temp_codes", "user_id = ?", carol.user.ID); n != 0 {
			t.Errorf("pending user got a temp code row")
		}
	})
}

func TestTempCodeWhileLockedOutClearsLockout(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		e.clock.Advance(30 * time.Second)
		e.lockOut(en)
		tc := e.tempCode(en, time.Hour)
		if _, err := e.verify(en, tc.Code); err != nil {
			t.Fatalf("temp code while locked out: %v, want accepted", err)
		}
		if c := e.cred(en.user.ID); c.Failures != 0 || c.LockedUntil != nil {
			t.Errorf("lockout not cleared by the temp code: %+v", c)
		}
	})
}

func TestTempCodeDeletedByDisableAndForceEnroll(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", true)
		e.tempCode(alice, time.Hour)
		if err := e.svc.Disable(e.ctx, db.Gorm, alice.user, "offboarding"); err != nil {
			t.Fatal(err)
		}
		if n := db.Count(t, "totp_temp_codes", "user_id = ?", alice.user.ID); n != 0 {
			t.Errorf("disable left %d temp codes", n)
		}
		bob := e.enroll("bob", true)
		tc := e.tempCode(bob, time.Hour)
		bob = e.enrollWith(e.svc, "bob", models.Params{}, models.EnrollOptions{Force: true}, true)
		if n := db.Count(t, "totp_temp_codes", "user_id = ?", bob.user.ID); n != 0 {
			t.Errorf("enroll --force left %d temp codes", n)
		}
		if _, err := e.verify(bob, tc.Code); err == nil {
			t.Error("temp code accepted after enroll --force")
		}
	})
}

// TestConcurrentTempCodeExactlyOneWins: of racers with the same temporary
// code, exactly one is let in.
func TestConcurrentTempCodeExactlyOneWins(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		conns := openConns(t, db, racers)
		for round := range 2 {
			tc := e.tempCode(en, time.Hour)
			errs := race(t, conns, func(_ int, conn *gorm.DB) error {
				_, err := e.svc.Verify(e.ctx, conn, en.user, tc.Code)
				return err
			})
			ok, replayed := tally(t, "same temp code", errs)
			if ok != 1 || replayed != racers-1 {
				t.Errorf("round %d: %d accepted, %d replayed; want exactly 1 and %d", round, ok, replayed, racers-1)
			}
			if n := db.Count(t, "totp_temp_codes", "user_id = ? AND used_at IS NOT NULL", en.user.ID); n != 1 {
				t.Errorf("round %d: %d used temp codes, want 1", round, n)
			}
		}
	})
}

// TestIssueTempCodesBulk: one result per user, in order; a user without
// 2FA fails alone.
func TestIssueTempCodesBulk(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", true)
		carol := e.enroll("carol", true)
		users := []models.User{alice.user, e.user("bob"), carol.user}
		got := make([]models.TempCode, len(users))
		errs := make([]error, len(users))
		err := e.svc.IssueTempCodes(e.ctx, db.Gorm, users, time.Hour, "bulk", models.BulkOptions{}, func(i int, tc models.TempCode, err error) {
			got[i], errs[i] = tc, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], models.ErrNotEnrolled) || got[1].Code != "" {
			t.Fatalf("bulk results %v %+v", errs, got)
		}
		if got[0].Code == got[2].Code {
			t.Error("two users got the same code")
		}
		e.mustVerify(alice, got[0].Code)
		e.mustVerify(carol, got[2].Code)
		if _, err := e.verify(carol, got[0].Code); err == nil {
			t.Error("alice's temp code let carol in")
		}
	})
}
