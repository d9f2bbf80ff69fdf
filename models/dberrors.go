package models

import (
	"errors"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// isUniqueViolation reports an insert that lost to a concurrent insert of
// the same key. Row locks cannot prevent it for a row that does not exist
// yet (two first enrollments of one user), so callers retry and then see
// the winner's row.
func isUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1062 // ER_DUP_ENTRY
	}
	// SQLite (mattn/go-sqlite3), matched by text so that models does not
	// force cgo on applications that only use PostgreSQL or MySQL.
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isTransient reports a transaction the database aborted only to resolve
// a conflict between concurrent transactions; running it again is correct
// and will succeed once the other side has finished.
func isTransient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01" // serialization_failure, deadlock_detected
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1213 || myErr.Number == 1205 // deadlock, lock wait timeout
	}
	return false
}

// maxTxAttempts bounds the retries of a transaction that keeps losing
// conflicts; each round at least one contender commits, so it ends.
const maxTxAttempts = 32

// transaction runs fn in a transaction, running it again when the
// database aborted it to break a deadlock or a serialization conflict, so
// that such internals never reach the person at the keyboard. fn must
// start from scratch each time (it does: every fn here re-reads what it
// decides on).
func (s *Service) transaction(sess session, fn func(tx *gorm.DB) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = sess.db.Transaction(fn)
		if err == nil || !isTransient(err) || attempt == maxTxAttempts || sess.db.Statement.Context.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt) * time.Millisecond)
	}
}
