package models

import (
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// rowsPerInsert is how many rows one INSERT statement carries: enough to
// amortise a statement's round trip, few enough to stay far below every
// database's limit on bound parameters.
const rowsPerInsert = 100

// insertRows writes rows into table with multi-row INSERTs of a fixed
// size, prepared once and reused, so the database parses the statement
// once per call instead of once per batch, and nothing is reflected or
// returned. Bulk enrollment writes a million backup-code rows this way.
func insertRows(tx *gorm.DB, d dialect, table string, columns []string, rows [][]any) error {
	return insertStatements(tx, rowsPerInsert, rows, func(n int) string { return insertSQL(d, table, columns, n) })
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
