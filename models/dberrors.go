package models

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// isUniqueViolation reports an insert that lost to a concurrent insert of
// the same key. Row locks cannot prevent it for a row that does not exist
// yet (two first enrollments of one user on PostgreSQL), so callers retry
// and then see the winner's row.
func isUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	// SQLite (mattn/go-sqlite3), matched by text so that models does not
	// force cgo on applications that only use PostgreSQL.
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}
