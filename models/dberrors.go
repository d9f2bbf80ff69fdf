package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
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

// isEnvironmental reports a failure of the database itself rather than of
// one user's data: lost or refused connections, a lock held past the busy
// timeout, a read-only or full disk, I/O errors, cancellation. A failing
// batch is retried user by user only when the failure could be one
// user's (a constraint, a trigger), never for these.
func isEnvironmental(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources: disk full, out of memory
			strings.HasPrefix(pgErr.Code, "57"), // operator intervention: shutdown, terminated
			strings.HasPrefix(pgErr.Code, "58"), // system error: I/O
			pgErr.Code == "25006":               // read-only transaction
			return true
		}
		return false
	}
	if pgconn.Timeout(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1021, 1114, 1290, 1836, 2002, 2003, 2006, 2013: // disk full, table full, read-only, server gone
			return true
		}
		return false
	}
	if errors.Is(err, mysql.ErrInvalidConn) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		// SQLite (mattn/go-sqlite3), by text for the reason given above.
		"database is locked", "database table is locked", "readonly database", "read-only",
		"database or disk is full", "disk i/o error", "unable to open database",
		// Connection failures some drivers report only as text.
		"connection refused", "broken pipe", "connection reset", "bad connection",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
