package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// UsersTable maps the application's users table, which totpadm only reads.
type UsersTable struct {
	Table       string // may be schema-qualified: app.accounts
	IDColumn    string // integer, UUID or text
	LoginColumn string
	EmailColumn string // optional
}

// DefaultUsersTable is the mapping used when none is configured.
var DefaultUsersTable = UsersTable{Table: "users", IDColumn: "id", LoginColumn: "username"}

// Validate rejects a mapping that cannot name a table.
func (u UsersTable) Validate() error {
	for _, f := range []struct{ name, value string }{
		{"users table", u.Table}, {"user id column", u.IDColumn}, {"user login column", u.LoginColumn},
	} {
		if strings.TrimSpace(f.value) == "" {
			return fmt.Errorf("%s must not be empty", f.name)
		}
	}
	for _, v := range []string{u.Table, u.IDColumn, u.LoginColumn, u.EmailColumn} {
		if strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
			return fmt.Errorf("users-table mapping %q is not a valid identifier", v)
		}
	}
	return nil
}

// User is one row of the application's users table. ID is always the text
// form of the id column, which is what totpadm's own tables store.
type User struct {
	ID    string
	Login string
	Email string
}

// String names the user for messages: the login, or id:… without one.
func (u User) String() string {
	if u.Login != "" {
		return u.Login
	}
	return "id:" + u.ID
}

// UserRef is how a person names a user: by login, or by id as "id:42".
type UserRef struct {
	ByID  bool
	Value string
}

// maxRefLen bounds a user reference; no login column holds more, and it
// keeps hostile input from reaching the database as a multi-megabyte query.
const maxRefLen = 1024

// ParseUserRef parses "alice" or "id:42".
func ParseUserRef(s string) (UserRef, error) {
	if s == "" || strings.TrimSpace(s) == "" {
		return UserRef{}, fmt.Errorf("%w: empty user", ErrInvalidUserRef)
	}
	if len(s) > maxRefLen {
		return UserRef{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidUserRef, maxRefLen)
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return UserRef{}, fmt.Errorf("%w: not valid UTF-8 text", ErrInvalidUserRef)
	}
	if id, ok := strings.CutPrefix(s, "id:"); ok {
		if id == "" {
			return UserRef{}, fmt.Errorf("%w: %q has no id after \"id:\"", ErrInvalidUserRef, s)
		}
		return UserRef{ByID: true, Value: id}, nil
	}
	return UserRef{Value: s}, nil
}

func (r UserRef) String() string {
	if r.ByID {
		return "id:" + r.Value
	}
	return r.Value
}

// userColumns is the SELECT list shared by every read of the users table:
// id as text, login, email (NULL when unmapped).
func (s *Service) userColumns(d dialect, alias string) string {
	col := func(c string) string { return alias + "." + d.quote(c) }
	email := "NULL"
	if s.cfg.Users.EmailColumn != "" {
		email = col(s.cfg.Users.EmailColumn)
	}
	return fmt.Sprintf("%s, %s, %s", d.asText(col(s.cfg.Users.IDColumn)), col(s.cfg.Users.LoginColumn), email)
}

// LookupUser finds the user a reference names.
func (s *Service) LookupUser(ctx context.Context, db *gorm.DB, ref UserRef) (User, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return User{}, err
	}
	d := sess.d
	column := s.cfg.Users.LoginColumn
	if ref.ByID {
		column = s.cfg.Users.IDColumn
	}
	// The id is passed as text even for integer and UUID columns: the
	// databases coerce a text parameter to the column's type, so the
	// primary-key index is used, whatever the type.
	query := fmt.Sprintf("SELECT %s FROM %s u WHERE u.%s = ?", s.userColumns(d, "u"), d.quote(s.cfg.Users.Table), d.quote(column))
	args := []any{ref.Value}
	if ref.ByID && d.name == "mysql" {
		// MySQL turns '1abc' into 1 when comparing with an integer column:
		// keep the indexed comparison but demand the exact text as well, so
		// a mistyped id never acts on another user.
		query += " AND " + d.asText("u."+d.quote(column)) + " = ?"
		args = append(args, ref.Value)
	}
	var (
		u     User
		login sql.NullString
		email sql.NullString
	)
	row := sess.db.Raw(query, args...).Row()
	if err := row.Scan(&u.ID, &login, &email); err != nil {
		if errors.Is(err, sql.ErrNoRows) || impossibleValue(err) {
			return User{}, fmt.Errorf("%w: no row in %s with %s = %q", ErrUserNotFound, s.cfg.Users.Table, column, ref.Value)
		}
		return User{}, fmt.Errorf("look up user in %s: %w", s.cfg.Users.Table, err)
	}
	u.Login, u.Email = login.String, email.String
	return u, nil
}

// impossibleValue reports a PostgreSQL refusal of a value for the column's
// type ("x" for an integer id, a malformed UUID, an out-of-range number):
// no user can have such an id, so it means "not found".
func impossibleValue(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "22P02", "22003": // invalid_text_representation, numeric_value_out_of_range
			return true
		}
	}
	return false
}
