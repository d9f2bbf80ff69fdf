package models_test

import (
	"errors"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// waitForLockWaiters blocks until n sessions of the test database wait on
// a row lock (PostgreSQL, MySQL), or briefly on SQLite, whose busy wait
// shows nowhere.
func waitForLockWaiters(t *testing.T, db *testutil.DB, n int) {
	t.Helper()
	if db.Backend == "sqlite" {
		time.Sleep(300 * time.Millisecond)
		return
	}
	q := "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
	if db.Backend == "mysql" {
		q = "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := db.Gorm.Raw(q).Scan(&waiting).Error; err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
	}
	t.Fatalf("no session waited on the lock within 10 s")
}

// A verification that waits on the credential row while a re-enrollment
// replaces it must see the replacement, never "not enrolled": the user is
// enrolled before and after, and a login path that took ErrNotEnrolled as
// "no 2FA" would let a password holder in without a second factor. The
// replacing transaction is the caller's, held open until Verify is queued
// behind it.
func TestVerifyWaitingOnReEnrollmentSeesTheReplacement(t *testing.T) {
	for _, opt := range []struct {
		name string
		opt  models.EnrollOptions
	}{
		{"enroll --force", models.EnrollOptions{Force: true}},
		{"import over an enrollment", models.EnrollOptions{Force: true, Imported: true}},
	} {
		t.Run(opt.name, func(t *testing.T) {
			testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
				e := newEnv(t, db)
				old := e.enroll("alice", true)

				replacement, err := e.svc.NewEnrollment(old.user, models.Params{})
				if err != nil {
					t.Fatal(err)
				}
				secret := decodeB32(t, replacement.Secret())
				tx := db.Gorm.Begin()
				if tx.Error != nil {
					t.Fatal(tx.Error)
				}
				if _, err := e.svc.Enroll(e.ctx, tx, replacement, opt.opt); err != nil {
					tx.Rollback()
					t.Fatalf("replace inside the caller's transaction: %v", err)
				}

				e.clock.Advance(30 * time.Second)
				code := refTOTP(secret, e.clock.Now(), replacement.Params)
				conn := openConn(t, db)
				verified := make(chan error, 1)
				go func() {
					_, err := e.svc.Verify(e.ctx, conn, old.user, code)
					verified <- err
				}()
				waitForLockWaiters(t, db, 1)
				if err := tx.Commit().Error; err != nil {
					t.Fatal(err)
				}
				err = <-verified
				if errors.Is(err, models.ErrNotEnrolled) {
					t.Fatalf("verify queued behind a re-enrollment said the user is not enrolled: %v", err)
				}
				if err != nil && !errors.Is(err, models.ErrPending) {
					t.Fatalf("verify with the replacement's code: %v, want it accepted", err)
				}
			})
		})
	}
}
