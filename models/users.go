package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	// ProtectedColumn, optional, marks protected accounts (is_superuser,
	// is_admin): true, 1, t, yes, y or on, in any case, means protected.
	ProtectedColumn string
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
	for _, v := range []string{u.Table, u.IDColumn, u.LoginColumn, u.EmailColumn, u.ProtectedColumn} {
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
	// Protected is set when the users table's protected-account column
	// (UsersTable.ProtectedColumn) says so; always false when unmapped.
	Protected bool
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
// id as text, login, email and the protected flag as text (each NULL
// when unmapped); scan them with userScan.
func (s *Service) userColumns(d dialect, alias string) string {
	col := func(c string) string { return alias + "." + d.quote(c) }
	email, protected := "NULL", "NULL"
	if s.cfg.Users.EmailColumn != "" {
		email = col(s.cfg.Users.EmailColumn)
	}
	if s.cfg.Users.ProtectedColumn != "" {
		protected = d.asText(col(s.cfg.Users.ProtectedColumn))
	}
	return fmt.Sprintf("%s, %s, %s, %s", d.asText(col(s.cfg.Users.IDColumn)), col(s.cfg.Users.LoginColumn), email, protected)
}

// userScan receives the columns of userColumns.
type userScan struct {
	id                      string
	login, email, protected sql.NullString
}

func (u *userScan) dest() []any { return []any{&u.id, &u.login, &u.email, &u.protected} }

func (u *userScan) user() User {
	return User{ID: u.id, Login: u.login.String, Email: u.email.String, Protected: u.protected.Valid && IsTruthy(u.protected.String)}
}

// IsTruthy is how a protected-account column's value reads: true, t, 1,
// yes, y or on, in any case and around spaces, is true; anything else
// (false, 0, NULL, empty) is false.
func IsTruthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "t", "1", "yes", "y", "on":
		return true
	}
	return false
}

// ErrAmbiguousUser: a reference matches more than one row of the users
// table (duplicate logins, or logins the database's collation compares
// equal). Nothing is done to any of them.
var ErrAmbiguousUser = errors.New("matches more than one user")

// AmbiguousUserError names the rows an ambiguous reference matched.
type AmbiguousUserError struct {
	Ref UserRef
	IDs []string // the matching users' ids, in the database's order
}

func (e *AmbiguousUserError) Error() string {
	const shown = 10
	ids := e.IDs
	more := ""
	if len(ids) > shown {
		ids, more = ids[:shown], fmt.Sprintf(" and %d more", len(e.IDs)-shown)
	}
	return fmt.Sprintf("%q %s (ids %s%s): name one as id:N", e.Ref.String(), ErrAmbiguousUser, strings.Join(ids, ", "), more)
}

func (e *AmbiguousUserError) Is(target error) bool { return target == ErrAmbiguousUser }

// lookupChunk bounds the values of one IN (…) list.
const lookupChunk = 500

// LookupUser finds the one user a reference names; see LookupUsers for
// the rule.
func (s *Service) LookupUser(ctx context.Context, db *gorm.DB, ref UserRef) (User, error) {
	users, errs, err := s.LookupUsers(ctx, db, []UserRef{ref})
	if err != nil {
		return User{}, err
	}
	return users[0], errs[0]
}

// LookupUsers resolves references to users by the one rule every command
// shares. A login is compared as the database compares it (its collation:
// "alice" may find "Alice"); an id is matched exactly as its text is
// stored ("id:01" is not user 1). A reference that matches no row gets
// ErrUserNotFound, one that matches several an *AmbiguousUserError: acting
// on one of them would act on a person nobody named.
//
// users[i] and errs[i] answer refs[i]. The returned error is for the run
// as a whole (the database failed, or ctx was cancelled). Logins and ids
// are looked up a chunk at a time, one query each; a value given several
// times is asked about once.
func (s *Service) LookupUsers(ctx context.Context, db *gorm.DB, refs []UserRef) ([]User, []error, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	// Each query reads a chunk's rows through an index; on SQLite it runs
	// uncancellable (rowContext), and a cancelled lookup stops between
	// chunks.
	sess.db = sess.db.WithContext(rowContext(ctx, sess.d))
	users := make([]User, len(refs))
	errs := make([]error, len(refs))
	// next chains the references to one value: next[i] is the next index
	// after i with refs[i]'s value, or -1. No slice per value: a bulk run
	// resolves a hundred thousand of them.
	next := make([]int, len(refs))
	for _, byID := range []bool{false, true} {
		n := 0
		for _, ref := range refs {
			if ref.ByID == byID {
				n++
			}
		}
		position := make(map[string]int, n) // value → its index into values
		values := make([]string, 0, n)
		first, last := make([]int, 0, n), make([]int, 0, n) // per value: its first and last index into refs
		for i, ref := range refs {
			if ref.ByID != byID {
				continue
			}
			next[i] = -1
			if p, seen := position[ref.Value]; seen {
				next[last[p]], last[p] = i, i
				continue
			}
			position[ref.Value] = len(values)
			values = append(values, ref.Value)
			first, last = append(first, i), append(last, i)
		}
		for lo := 0; lo < len(values); lo += lookupChunk {
			if err := ctx.Err(); err != nil {
				return nil, nil, fmt.Errorf("look up users in %s: %w", s.cfg.Users.Table, err)
			}
			chunk := values[lo:min(lo+lookupChunk, len(values))]
			matches, err := s.matchChunk(sess, byID, chunk)
			if err != nil {
				return nil, nil, err
			}
			for j, v := range chunk {
				u, err := s.oneMatch(UserRef{ByID: byID, Value: v}, matches[j])
				for i := first[lo+j]; i >= 0; i = next[i] {
					users[i], errs[i] = u, err
				}
			}
		}
	}
	return users, errs, nil
}

// oneMatch turns the rows a reference matched into its answer.
func (s *Service) oneMatch(ref UserRef, rows []User) (User, error) {
	switch len(rows) {
	case 1:
		return rows[0], nil
	case 0:
		column := s.cfg.Users.LoginColumn
		if ref.ByID {
			column = s.cfg.Users.IDColumn
		}
		return User{}, fmt.Errorf("%w: no row in %s with %s = %q", ErrUserNotFound, s.cfg.Users.Table, column, ref.Value)
	default:
		ids := make([]string, len(rows))
		for i, u := range rows {
			ids[i] = u.ID
		}
		return User{}, &AmbiguousUserError{Ref: ref, IDs: ids}
	}
}

// matchChunk returns, for each of values, every row it matches (in the
// database's order); the slices share one array and are read-only.
//
// Ids: the rows whose id text equals the value byte for byte. The IN
// list lets the index find the candidates; the databases coerce a text
// parameter to the column's type there, so "01" finds user 1, and the
// exact comparison in Go throws such a row out.
//
// Logins: the database decides what equals what. Besides the rows, the
// query numbers their equivalence classes under the column's collation
// (DENSE_RANK over ORDER BY login gives equal logins one rank), because a
// value that equals one row of a class equals all of them, so "alice"
// with rows "alice" and "Alice" under a case-insensitive collation
// matches both. A value that equals no returned row byte for byte
// matched, if at all, through the collation alone ("alice" finding only
// "Alice"); it is asked about on its own.
func (s *Service) matchChunk(sess session, byID bool, values []string) ([][]User, error) {
	d := sess.d
	column := s.cfg.Users.LoginColumn
	if byID {
		column = s.cfg.Users.IDColumn
	}
	quoted := "u." + d.quote(column)
	rank := "0"
	if !byID {
		rank = "DENSE_RANK() OVER (ORDER BY " + quoted + ")"
	}
	query := fmt.Sprintf("SELECT %s, %s FROM %s u WHERE %s IN ?", s.userColumns(d, "u"), rank, d.quote(s.cfg.Users.Table), quoted)
	rows, err := s.scanUsers(sess, query, values, len(values))
	if impossibleValue(err) && len(values) > 1 {
		// One value the column's type cannot hold ("x" for an integer id)
		// spoils the whole list on PostgreSQL: ask one by one.
		out := make([][]User, len(values))
		for j, v := range values {
			one, err := s.matchChunk(sess, byID, []string{v})
			if err != nil {
				return nil, err
			}
			out[j] = one[0]
		}
		return out, nil
	}
	out := make([][]User, len(values))
	if impossibleValue(err) {
		return out, nil // nobody can have such an id or login
	}
	if err != nil {
		return nil, fmt.Errorf("look up users in %s: %w", s.cfg.Users.Table, err)
	}
	if len(rows) == 0 {
		return out, nil // nothing matched anything: no value needs asking alone
	}
	// Number the groups of rows that answer a value alike — one id's
	// rows, one collation class's rows — and lay each group out in one
	// array, in the database's order.
	group := make([]int, len(rows))
	groups := 0
	ofKey := make(map[string]int, len(rows))  // id key, or login, → group
	ofClass := make(map[int64]int, len(rows)) // collation class → group
	for k, r := range rows {
		if byID {
			g, ok := ofKey[idKey(r.ID)]
			if !ok {
				g, groups = groups, groups+1
				ofKey[idKey(r.ID)] = g
			}
			group[k] = g
			continue
		}
		g, ok := ofClass[r.class]
		if !ok {
			g, groups = groups, groups+1
			ofClass[r.class] = g
		}
		group[k] = g
		ofKey[r.Login] = g
	}
	start := make([]int, groups+1)
	for _, g := range group {
		start[g+1]++
	}
	for g := range groups {
		start[g+1] += start[g]
	}
	fill := slices.Clone(start[:groups])
	grouped := make([]User, len(rows))
	for k, r := range rows {
		grouped[fill[group[k]]] = r.User
		fill[group[k]]++
	}
	members := func(g int) []User { return grouped[start[g]:start[g+1]:start[g+1]] }
	for j, v := range values {
		key := v
		if byID {
			key = idKey(v)
		}
		if g, ok := ofKey[key]; ok {
			out[j] = members(g)
			continue
		}
		if byID {
			continue
		}
		alone, err := s.scanUsers(sess, fmt.Sprintf("SELECT %s, 0 FROM %s u WHERE %s = ?", s.userColumns(d, "u"), d.quote(s.cfg.Users.Table), quoted), v, 1)
		if err != nil && !impossibleValue(err) {
			return nil, fmt.Errorf("look up users in %s: %w", s.cfg.Users.Table, err)
		}
		for _, r := range alone {
			out[j] = append(out[j], r.User)
		}
	}
	return out, nil
}

// idKey is the form of an id under which a typed id names a stored one:
// the same text, byte for byte, except that a UUID's hex digits match in
// either case, as RFC 4122 has them read ("case insensitive on input");
// PostgreSQL prints them in lower case. So a UUID's key is its lower
// case, any other id's key the id itself.
func idKey(id string) string {
	if isUUID(id) {
		return strings.ToLower(id)
	}
	return id
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}

type rankedUser struct {
	User
	class int64
}

// scanUsers runs a query of userColumns and a rank; expect is how many
// rows it likely returns.
func (s *Service) scanUsers(sess session, query string, arg any, expect int) ([]rankedUser, error) {
	rows, err := sess.db.Raw(query, arg).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		scan  userScan
		class int64
	)
	dest := append(scan.dest(), &class)
	out := make([]rankedUser, 0, expect)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, rankedUser{User: scan.user(), class: class})
	}
	return out, rows.Err()
}

// impossibleValue reports a PostgreSQL refusal of a value for the column's
// type ("x" for an integer id, a malformed UUID, an out-of-range number):
// no user can have such an id, so it means "not found".
func impossibleValue(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "22P02", "22003", "22021": // invalid_text_representation, numeric_value_out_of_range, character_not_in_repertoire
			return true
		}
	}
	return false
}
