package models_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

const racers = 16

// race runs fn once per connection, all released at the same instant, and
// returns each call's error. Every connection is a separate pool, as if
// each attempt came from its own process.
func race(t *testing.T, conns []*gorm.DB, fn func(i int, conn *gorm.DB) error) []error {
	t.Helper()
	errs := make([]error, len(conns))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i, conn := range conns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = fn(i, conn)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return errs
}

func openConns(t *testing.T, db *testutil.DB, n int) []*gorm.DB {
	t.Helper()
	conns := make([]*gorm.DB, n)
	for i := range conns {
		conns[i] = openConn(t, db)
	}
	return conns
}

// tally counts successes and replays and reports anything else.
func tally(t *testing.T, what string, errs []error) (ok, replayed int) {
	t.Helper()
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, models.ErrReplayed):
			replayed++
		default:
			t.Errorf("%s: racer %d: %v, want success or ErrReplayed", what, i, err)
		}
	}
	return ok, replayed
}

func TestConcurrentTOTPVerifyExactlyOneWins(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		e.clock.Advance(30 * time.Second)
		conns := openConns(t, db, racers)
		for round := range 2 {
			code := e.code(en, 0)
			errs := race(t, conns, func(_ int, conn *gorm.DB) error {
				_, err := e.svc.Verify(e.ctx, conn, en.user, code)
				return err
			})
			ok, replayed := tally(t, "same TOTP code", errs)
			if ok != 1 || replayed != racers-1 {
				t.Errorf("round %d: %d accepted, %d replayed; want exactly 1 and %d", round, ok, replayed, racers-1)
			}
			if c := e.cred(en.user.ID); c.LastStep != e.step(en) || c.Failures != 0 {
				t.Errorf("round %d: credential %+v, want last step %d and no failures", round, c, e.step(en))
			}
			e.clock.Advance(30 * time.Second)
		}
	})
}

func TestConcurrentBackupCodeExactlyOneWins(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		conns := openConns(t, db, racers)
		for round := range 2 {
			code := en.codes[round]
			errs := race(t, conns, func(_ int, conn *gorm.DB) error {
				_, err := e.svc.Verify(e.ctx, conn, en.user, code)
				return err
			})
			ok, replayed := tally(t, "same backup code", errs)
			if ok != 1 || replayed != racers-1 {
				t.Errorf("round %d: %d accepted, %d replayed; want exactly 1 and %d", round, ok, replayed, racers-1)
			}
			if got := e.unusedCodes(en.user.ID); got != 10-round-1 {
				t.Errorf("round %d: %d unused codes, want %d", round, got, 10-round-1)
			}
			if c := e.cred(en.user.ID); c.Failures != 0 || c.LockedUntil != nil {
				t.Errorf("round %d: duplicate submissions counted as failures: %+v", round, c)
			}
		}
	})
}

// TestConcurrentDifferentBackupCodes: racers with different valid codes
// all succeed; none is lost or double-counted.
func TestConcurrentDifferentBackupCodes(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		conns := openConns(t, db, 10)
		errs := race(t, conns, func(i int, conn *gorm.DB) error {
			_, err := e.svc.Verify(e.ctx, conn, en.user, en.codes[i])
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("code %d: %v", i, err)
			}
		}
		if got := e.unusedCodes(en.user.ID); got != 0 {
			t.Errorf("%d unused codes after using all 10", got)
		}
	})
}

// TestConcurrentWrongCodesEachCount: concurrent failures queue and each
// one counts, so a burst of guesses cannot outrun the lockout.
func TestConcurrentWrongCodesEachCount(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		e.clock.Advance(30 * time.Second)
		wrong := e.wrong(en)
		conns := openConns(t, db, 12)
		errs := race(t, conns, func(_ int, conn *gorm.DB) error {
			_, err := e.svc.Verify(e.ctx, conn, en.user, wrong)
			return err
		})
		var plain, justLocked, locked int
		for i, err := range errs {
			var le *models.LockedError
			switch {
			case errors.As(err, &le) && le.JustLocked:
				justLocked++
			case errors.As(err, &le):
				locked++
			case plainRejection(err):
				plain++
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		}
		if plain != 4 || justLocked != 1 || locked != 7 {
			t.Errorf("%d plain rejections, %d lockouts, %d refused while locked; want 4, 1, 7", plain, justLocked, locked)
		}
		if c := e.cred(en.user.ID); c.Failures != 5 || c.LockedUntil == nil {
			t.Errorf("credential %+v, want 5 failures and locked", c)
		}
		if _, err := e.verify(en, e.code(en, 0)); !errors.Is(err, models.ErrLocked) {
			t.Errorf("right code after the burst: %v, want ErrLocked", err)
		}
	})
}

// TestConcurrentRegenerateVersusBackupVerify: a verify with an old code
// racing a regeneration either consumed the code before the regeneration
// or finds it gone — never both, and afterwards the old code is dead.
func TestConcurrentRegenerateVersusBackupVerify(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		conns := openConns(t, db, 2)
		current := en.codes
		outcomes := map[string]int{}
		for round := range 6 {
			old := current[0]
			auditBefore := len(e.audit())
			var fresh []string
			errs := race(t, conns, func(i int, conn *gorm.DB) error {
				if i == 0 {
					_, err := e.svc.Verify(e.ctx, conn, en.user, old)
					return err
				}
				var err error
				fresh, err = e.svc.RegenerateBackupCodes(e.ctx, conn, en.user)
				return err
			})
			if errs[1] != nil {
				t.Fatalf("round %d: regenerate: %v", round, errs[1])
			}
			// Which came first, by the audit log's order.
			var order []string
			for _, r := range e.audit()[auditBefore:] {
				order = append(order, r.Action+":"+r.Outcome)
			}
			switch {
			case errs[0] == nil:
				outcomes["verify first"]++
				if len(order) != 2 || order[0] != models.ActionVerify+":ok (backup code)" || order[1] != models.ActionBackupCodes+":regenerated" {
					t.Errorf("round %d: verify succeeded but the audit order is %q", round, order)
				}
			case errors.Is(errs[0], models.ErrCodeRejected):
				outcomes["regenerate first"]++
				if len(order) != 2 || order[0] != models.ActionBackupCodes+":regenerated" || order[1][:len(models.ActionVerify)] != models.ActionVerify {
					t.Errorf("round %d: verify refused but the audit order is %q", round, order)
				}
			default:
				t.Errorf("round %d: verify: %v", round, errs[0])
			}
			if got := e.unusedCodes(en.user.ID); got != 10 {
				t.Errorf("round %d: %d unused codes after regeneration, want the 10 new ones", round, got)
			}
			if _, err := e.verify(en, old); !errors.Is(err, models.ErrCodeRejected) {
				t.Errorf("round %d: old code after the race: %v, want rejected", round, err)
			}
			if _, err := e.svc.Unlock(e.ctx, db.Gorm, en.user); err != nil {
				t.Fatal(err)
			}
			current = fresh
		}
		t.Logf("outcomes: %v", outcomes)
	})
}

// TestConcurrentEnroll: racing enrollments of one user without --force
// end with exactly one enrollment and every loser told "already enrolled".
func TestConcurrentEnroll(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		u := e.user("alice")
		const n = 8
		enrs := make([]*models.Enrollment, n)
		for i := range enrs {
			var err error
			if enrs[i], err = e.svc.NewEnrollment(u, models.Params{}); err != nil {
				t.Fatal(err)
			}
		}
		conns := openConns(t, db, n)
		results := make([]models.EnrollResult, n)
		errs := race(t, conns, func(i int, conn *gorm.DB) error {
			var err error
			results[i], err = e.svc.Enroll(e.ctx, conn, enrs[i], models.EnrollOptions{})
			return err
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("enrollments %d and %d both succeeded", winner, i)
				}
				winner = i
			case !errors.Is(err, models.ErrAlreadyEnrolled):
				t.Errorf("racer %d: %v, want ErrAlreadyEnrolled", i, err)
			}
		}
		checkSingleEnrollment(t, e, u, enrs, results, winner)
	})
}

// TestConcurrentForceEnroll: racing forced enrollments each replace the
// previous one; the survivor is whole (its secret and its ten codes).
func TestConcurrentForceEnroll(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		u := e.user("alice")
		e.enroll("alice", true)
		const n = 8
		enrs := make([]*models.Enrollment, n)
		for i := range enrs {
			var err error
			if enrs[i], err = e.svc.NewEnrollment(u, models.Params{}); err != nil {
				t.Fatal(err)
			}
		}
		conns := openConns(t, db, n)
		results := make([]models.EnrollResult, n)
		errs := race(t, conns, func(i int, conn *gorm.DB) error {
			var err error
			results[i], err = e.svc.Enroll(e.ctx, conn, enrs[i], models.EnrollOptions{Force: true})
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("forced enroll %d: %v, want success", i, err)
			}
		}
		checkSingleEnrollment(t, e, u, enrs, results, -1)
	})
}

// checkSingleEnrollment asserts one credential row and ten codes for u,
// that the credential's secret is one of enrs' (the winner's if known),
// and that the stored backup codes are that same enrollment's.
func checkSingleEnrollment(t *testing.T, e *env, u models.User, enrs []*models.Enrollment, results []models.EnrollResult, winner int) {
	t.Helper()
	if n := e.db.Count(t, "totp_credentials", "user_id = ?", u.ID); n != 1 {
		t.Fatalf("%d credential rows, want 1", n)
	}
	if n := e.db.Count(t, "totp_backup_codes", "user_id = ?", u.ID); n != 10 {
		t.Errorf("%d backup-code rows, want 10", n)
	}
	// Try each candidate's code; a patient service so that the wrong
	// candidates do not lock the user out.
	patient := e.service(func(c *models.Config) { c.MaxFailures = 100 })
	var matches []int
	for i, enr := range enrs {
		secret := decodeB32(t, enr.Secret())
		code := refTOTP(secret, e.clock.Now(), enr.Params)
		if _, err := patient.Verify(e.ctx, e.db.Gorm, u, code); err == nil {
			matches = append(matches, i)
		} else if !plainRejection(err) {
			t.Errorf("candidate %d: %v", i, err)
		}
	}
	if len(matches) != 1 || (winner >= 0 && matches[0] != winner) {
		t.Fatalf("the stored secret is that of enrollments %v, want exactly one (the winner %d)", matches, winner)
	}
	survivor := results[matches[0]]
	if len(survivor.BackupCodes) != 10 {
		t.Fatalf("survivor reported %d backup codes", len(survivor.BackupCodes))
	}
	for _, c := range survivor.BackupCodes {
		if _, err := patient.Verify(e.ctx, e.db.Gorm, u, c); err != nil {
			t.Errorf("the surviving enrollment's backup code %q: %v", c, err)
		}
	}
}
