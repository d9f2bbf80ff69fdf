package config

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// AutoEmailColumn is the users-table column used for email when none is
// configured and the table has one by exactly this name.
const AutoEmailColumn = "email"

// DetectEmailColumn returns AutoEmailColumn when table has a column of
// that name, else "". It reads the column names of an empty result, which
// every database answers the same way and which, unlike a catalogue
// query, needs no knowledge of schemas or of how each database folds
// case.
func DetectEmailColumn(ctx context.Context, db *gorm.DB, table string) (string, error) {
	rows, err := db.WithContext(ctx).Table(table).Where("1 = 0").Rows()
	if err != nil {
		return "", fmt.Errorf("read the columns of %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", fmt.Errorf("read the columns of %s: %w", table, err)
	}
	for _, c := range cols {
		if c == AutoEmailColumn {
			return c, nil
		}
	}
	return "", rows.Err()
}
