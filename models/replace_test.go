package models_test

import (
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// queuedOnLock opens a one-connection pool on the test database and
// returns it with a function that waits until that connection's session
// is blocked on a row lock (PostgreSQL, MySQL; on SQLite, whose busy wait
// shows nowhere, a pause). Other tests share the servers, so only this
// session is watched. The wait gives up early when done is closed.
func queuedOnLock(t *testing.T, db *testutil.DB) (*gorm.DB, func(done <-chan struct{}) bool) {
	t.Helper()
	conn := openConn(t, db)
	sqlDB, err := conn.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	if db.Backend == "sqlite" {
		return conn, func(<-chan struct{}) bool { time.Sleep(300 * time.Millisecond); return true }
	}
	idQuery, waitQuery := "SELECT pg_backend_pid()", "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ? AND wait_event_type = 'Lock'"
	if db.Backend == "mysql" {
		// A primary-key read waits on the lock while MariaDB's optimizer
		// reads the row ("Statistics"), where innodb_trx may show no LOCK
		// WAIT: the statement still running for 100 ms is the sign.
		idQuery, waitQuery = "SELECT CONNECTION_ID()", "SELECT COUNT(*) FROM information_schema.processlist WHERE id = ? AND info LIKE '%FOR UPDATE%' AND time_ms >= 100"
	}
	var session int64
	if err := conn.Raw(idQuery).Scan(&session).Error; err != nil {
		t.Fatal(err)
	}
	return conn, func(done <-chan struct{}) bool {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var waiting int
			if err := db.Gorm.Raw(waitQuery, session).Scan(&waiting).Error; err != nil {
				t.Error(err)
				return false
			}
			if waiting > 0 {
				return true
			}
			select {
			case <-done:
				return false
			default:
			}
		}
		return false
	}
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
				conn, waitQueued := queuedOnLock(t, db)
				var verifyErr error
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, verifyErr = e.svc.Verify(e.ctx, conn, old.user, code)
				}()
				queued := waitQueued(done)
				if err := tx.Commit().Error; err != nil {
					t.Fatal(err)
				}
				<-done
				if !queued {
					t.Fatalf("verify did not queue behind the replacing transaction: %v", verifyErr)
				}
				err = verifyErr
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
