package models

import (
	"database/sql"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// rowsPerInsert is how many rows one INSERT statement carries: enough to
// amortise a statement's round trip, few enough to stay far below every
// database's limit on bound parameters.
const rowsPerInsert = 100

// sqliteRowsPerInsert is rowsPerInsert for SQLite, where a statement costs
// no round trip but is parsed anew in every batch (its transaction ends
// the prepared statement): a shorter one parses in proportion faster, and
// running it more often costs a few microseconds a time.
const sqliteRowsPerInsert = 20

// insertRows writes rows into table with multi-row INSERTs of a fixed
// size, prepared once and reused, so the database parses the statement
// once per call instead of once per batch, and nothing is reflected or
// returned. Bulk runs write their credential and audit rows this way.
func insertRows(tx *gorm.DB, d dialect, table string, columns []string, rows [][]any) error {
	if d.name == "sqlite" && len(columns) <= 64 {
		return insertSharing(tx, d, table, columns, rows)
	}
	return insertStatements(tx, rowsPerInsert, rows, func(n int) string { return insertSQL(d, table, columns, n) })
}

// insertSharing is insertRows for SQLite, where every bound value is a
// call into the driver's C library: a value that all rows of a statement
// have in common (the actor, the key id, a NULL) is bound once, as a
// numbered parameter (?NNN) that each row names. A bulk enrollment binds
// 3 of a credential's 14 values per row this way, and 3 of an audit
// row's 8. The full-size statement of each set of shared columns is
// prepared once.
func insertSharing(tx *gorm.DB, d dialect, table string, columns []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	ctx := tx.Statement.Context
	full := min(sqliteRowsPerInsert, len(rows))
	prepared := map[uint64]*sql.Stmt{} // by shared columns
	defer func() {
		for _, stmt := range prepared {
			stmt.Close()
		}
	}()
	args := make([]any, 0, full*len(columns))
	for lo := 0; lo < len(rows); lo += full {
		chunk := rows[lo:min(lo+full, len(rows))]
		shared := sharedColumns(chunk, len(columns))
		args = args[:0]
		for _, r := range chunk {
			for c, v := range r {
				if shared&(1<<c) == 0 {
					args = append(args, v)
				}
			}
		}
		for c := range columns {
			if shared&(1<<c) != 0 {
				args = append(args, chunk[0][c])
			}
		}
		var err error
		if len(chunk) == full {
			stmt := prepared[shared]
			if stmt == nil {
				if stmt, err = tx.Statement.ConnPool.PrepareContext(ctx, sharingInsertSQL(d, table, columns, full, shared)); err != nil {
					return err
				}
				prepared[shared] = stmt
			}
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.Statement.ConnPool.ExecContext(ctx, sharingInsertSQL(d, table, columns, len(chunk), shared), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sharedColumns returns the columns (bit c for column c) in which every
// row holds the same value, of a type == compares safely; none for a
// single row, where there is nothing to share.
func sharedColumns(rows [][]any, columns int) uint64 {
	if len(rows) < 2 {
		return 0
	}
	var shared uint64
	for c := range columns {
		v := rows[0][c]
		switch v.(type) {
		case nil, string, int, int64, bool, time.Time, *time.Time:
		default:
			continue // []byte and the like: never shared
		}
		same := true
		for _, r := range rows[1:] {
			// Interfaces of different dynamic types compare unequal; of
			// v's type, they compare without panicking.
			if r[c] != v {
				same = false
				break
			}
		}
		if same {
			shared |= 1 << c
		}
	}
	return shared
}

// sharingInsertSQL is the SQLite INSERT of n rows whose shared columns
// name one parameter each, numbered after the rows' own values.
func sharingInsertSQL(d dialect, table string, columns []string, n int, shared uint64) string {
	var b strings.Builder
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = d.quote(c)
	}
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", d.quote(table), strings.Join(quoted, ", "))
	param := make([]int, len(columns)) // a shared column's parameter number
	last := n * (len(columns) - bits.OnesCount64(shared))
	for c := range columns {
		if shared&(1<<c) != 0 {
			last++
			param[c] = last
		}
	}
	next := 0
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range columns {
			if c > 0 {
				b.WriteString(", ")
			}
			p := param[c]
			if shared&(1<<c) == 0 {
				next++
				p = next
			}
			b.WriteByte('?')
			b.WriteString(strconv.Itoa(p))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// insertStatements executes the statement query(n) for each run of n
// rows, n = perStatement but for the last run, binding the values of its
// rows in order. The full-size statement is prepared once.
func insertStatements(tx *gorm.DB, perStatement int, rows [][]any, query func(n int) string) error {
	if len(rows) == 0 {
		return nil
	}
	ctx := tx.Statement.Context
	full := min(perStatement, len(rows))
	stmt, err := tx.Statement.ConnPool.PrepareContext(ctx, query(full))
	if err != nil {
		return err
	}
	defer stmt.Close()
	args := make([]any, 0, full*len(rows[0]))
	for lo := 0; lo < len(rows); lo += full {
		chunk := rows[lo:min(lo+full, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		if len(chunk) == full {
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.Statement.ConnPool.ExecContext(ctx, query(len(chunk)), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sqliteTimeLayout is how mattn/go-sqlite3 stores a bound time.Time
// (its SQLiteTimestampFormats[0]). Binding the text instead stores the
// same value (TestSQLiteTimeIsTheDriversText) and lets a value shared by
// many rows be formatted once.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

func sqliteTime(t time.Time) string { return t.Format(sqliteTimeLayout) }

func insertSQL(d dialect, table string, columns []string, n int) string {
	var b strings.Builder
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = d.quote(c)
	}
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", d.quote(table), strings.Join(quoted, ", "))
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	q := b.String()
	if d.name == "postgres" {
		q = numberPlaceholders(q)
	}
	return q
}

// numberPlaceholders rewrites ? as $1, $2, … for PostgreSQL, which this
// path reaches without GORM's rewriting. The statements are built here
// from identifiers and ?s only, so no ? can sit inside a literal.
func numberPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
