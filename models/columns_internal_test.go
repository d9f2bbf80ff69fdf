package models

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// The column lists, the values each struct hands the INSERT, and the
// tables Migrate creates must agree column for column: they are matched
// by position, and a slip would store a hash in the salt column.
func TestColumnListsMatchSchema(t *testing.T) {
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "schema.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := TablesWithPrefix(DefaultTablePrefix)
	if _, err := Migrate(context.Background(), db, tables, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		table   string
		columns []string
		values  int
		serial  bool // the table has an id column the database fills
	}{
		{tables.Credentials, credentialColumns, len((&Credential{}).values()), false},
		{tables.BackupCodes, backupCodeColumns, len((&BackupCode{}).values()), true},
		{tables.AuditLog, auditColumns, len((&AuditEntry{}).values()), true},
	}
	for _, tc := range tests {
		var schema []string
		if err := db.Raw("SELECT name FROM pragma_table_info(?) ORDER BY cid", tc.table).Scan(&schema).Error; err != nil {
			t.Fatal(err)
		}
		if tc.serial {
			if schema[0] != "id" {
				t.Fatalf("%s: first column %q, want the serial id", tc.table, schema[0])
			}
			schema = schema[1:]
		}
		if !slices.Equal(schema, tc.columns) {
			t.Errorf("%s: columns %v, the list says %v", tc.table, schema, tc.columns)
		}
		if tc.values != len(tc.columns) {
			t.Errorf("%s: values() gives %d values for %d columns", tc.table, tc.values, len(tc.columns))
		}
	}
	var (
		c       Credential
		a, l, u sql.NullTime
	)
	if n := len(c.scanTargets(&a, &l, &u)); n != len(credentialColumns) {
		t.Errorf("credential scanTargets gives %d targets for %d columns", n, len(credentialColumns))
	}
}
