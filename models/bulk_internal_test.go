package models

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func openInsertTestDB(t *testing.T) (*gorm.DB, *Service) {
	t.Helper()
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "insert.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	svc, err := NewService(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(context.Background(), db, svc.cfg.Tables, false); err != nil {
		t.Fatal(err)
	}
	return db, svc
}

// A timestamp bound as sqliteTime's text is stored exactly as the driver
// stores the time.Time itself: same text, same type, and it reads back
// as the same instant.
func TestSQLiteTimeIsTheDriversText(t *testing.T) {
	db, _ := openInsertTestDB(t)
	if err := db.Exec("CREATE TABLE times (driver DATETIME, text DATETIME)").Error; err != nil {
		t.Fatal(err)
	}
	for _, tm := range []time.Time{
		time.Date(2026, 12, 2, 6, 55, 42, 123456000, time.UTC),
		time.Date(2026, 12, 2, 6, 55, 42, 0, time.UTC),
		time.Date(2026, 12, 2, 6, 55, 42, 100000000, time.UTC),
		time.Date(1999, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 5000, time.FixedZone("CEST", 2*3600)),
		truncateTime(time.Now()),
	} {
		if err := db.Exec("DELETE FROM times").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("INSERT INTO times VALUES (?, ?)", tm, sqliteTime(tm)).Error; err != nil {
			t.Fatal(err)
		}
		var row struct {
			Driver, Text         string
			DriverType, TextType string
		}
		if err := db.Raw("SELECT CAST(driver AS TEXT) AS driver, CAST(text AS TEXT) AS text, typeof(driver) AS driver_type, typeof(text) AS text_type FROM times").Scan(&row).Error; err != nil {
			t.Fatal(err)
		}
		if row.Driver != row.Text || row.DriverType != row.TextType {
			t.Errorf("%v: the driver stores %q (%s), sqliteTime %q (%s)", tm, row.Driver, row.DriverType, row.Text, row.TextType)
		}
		var back struct{ Driver, Text time.Time }
		if err := db.Raw("SELECT driver, text FROM times").Scan(&back).Error; err != nil {
			t.Fatal(err)
		}
		if !back.Driver.Equal(tm) || !back.Text.Equal(tm) {
			t.Errorf("%v reads back as %v (driver) and %v (text)", tm, back.Driver, back.Text)
		}
	}
}

// SQLite's code-set statement stores exactly the rows the generic
// row-by-row INSERT stores, user after user in code order, across a
// prepared statement and its shorter tail, for any number of codes.
func TestCodeSetsStoreTheRowsOfTheirCodes(t *testing.T) {
	db, svc := openInsertTestDB(t)
	d, err := dialectOf(db)
	if err != nil {
		t.Fatal(err)
	}
	dump := func() []string {
		rows, err := db.Raw(`SELECT user_id, hex(salt), hex(hash), CAST(created_at AS TEXT), typeof(user_id), typeof(salt), typeof(hash), typeof(created_at), used_at IS NULL
			FROM ` + d.quote(svc.cfg.Tables.BackupCodes) + ` ORDER BY id`).Rows()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var f [9]string
			if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8]); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(f))
		}
		return out
	}
	for _, tc := range []struct{ users, codes int }{
		{1, 10}, {codeSetsPerInsert, 10}, {2*codeSetsPerInsert + 7, 10}, {3, 1}, {codeSetsPerInsert + 1, 3}, {2, 100},
	} {
		t.Run(fmt.Sprintf("%d users %d codes", tc.users, tc.codes), func(t *testing.T) {
			svc.cfg.BackupCodeCount = tc.codes
			now := truncateTime(time.Now())
			sets := make([]codeSet, tc.users)
			var rows [][]any
			var scratch []byte // reused, as a bulk run does
			for i := range sets {
				var err error
				_, sets[i], err = svc.newCodeSet(fmt.Sprintf("user %d 'x'", i), now.Add(time.Duration(i)*time.Microsecond), &scratch)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range sets[i].rows() {
					rows = append(rows, r.values())
				}
			}
			if err := db.Exec("DELETE FROM " + d.quote(svc.cfg.Tables.BackupCodes)).Error; err != nil {
				t.Fatal(err)
			}
			if err := insertRows(db, d, svc.cfg.Tables.BackupCodes, backupCodeColumns, rows); err != nil {
				t.Fatal(err)
			}
			want := dump()
			if len(want) != tc.users*tc.codes {
				t.Fatalf("%d rows stored row by row, want %d", len(want), tc.users*tc.codes)
			}
			if err := db.Exec("DELETE FROM " + d.quote(svc.cfg.Tables.BackupCodes)).Error; err != nil {
				t.Fatal(err)
			}
			if err := svc.insertCodeSets(db, d, sets); err != nil {
				t.Fatal(err)
			}
			got := dump()
			if len(got) != len(want) {
				t.Fatalf("code sets stored %d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("row %d: code sets stored %s, row by row %s", i, got[i], want[i])
				}
			}
		})
	}
}

// newCodeSet reads the randomness newBackupCode and newSalt would read,
// code after code, and each record holds the salt and hash of its code.
func TestNewCodeSetMatchesOneCodeAtATime(t *testing.T) {
	svc, err := NewService(Config{})
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, svc.cfg.BackupCodeCount*(backupCodeLen+saltLen))
	rand.Read(random)
	svc.cfg.Random = &fixedReader{b: random}
	plain, set, err := svc.newCodeSet("7", truncateTime(time.Now()), nil)
	if err != nil {
		t.Fatal(err)
	}
	one := &fixedReader{b: random}
	for i, r := range set.rows() {
		code, err := newBackupCode(one)
		if err != nil {
			t.Fatal(err)
		}
		salt, err := newSalt(one)
		if err != nil {
			t.Fatal(err)
		}
		norm, _ := NormalizeBackupCode(code)
		if plain[i] != code || string(r.Salt) != string(salt) || string(r.Hash) != string(hashBackupCode(salt, norm)) || r.UserID != "7" {
			t.Errorf("code %d: set gives %q %x %x, one at a time %q %x %x", i, plain[i], r.Salt, r.Hash, code, salt, hashBackupCode(salt, norm))
		}
	}
}

type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, fmt.Errorf("out of bytes")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// existingStates finds every enrolled id of a batch, whatever its text,
// through the JSON array SQLite gets or through the list it falls back to.
func TestExistingStatesFindsAnyID(t *testing.T) {
	db, svc := openInsertTestDB(t)
	d, err := dialectOf(db)
	if err != nil {
		t.Fatal(err)
	}
	odd := []string{"1", "01", `a"b`, `back\slash`, "<&>", "tab\there", "line\nbreak", "ünï", "😀", "\u2028", "x\x00y", "bad\xffutf8", " 1", "1 "}
	for i, id := range odd {
		if i%2 == 1 {
			continue // every other one stays unenrolled
		}
		state := StatePending
		if i%4 == 0 {
			state = StateActive
		}
		if err := db.Exec("INSERT INTO "+d.quote(svc.cfg.Tables.Credentials)+" (user_id, secret, key_id, algorithm, digits, period, state, created_at, enrolled_by) VALUES (?, x'00', 'k', 'SHA1', 6, 30, ?, ?, 'test')", id, state, time.Now()).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, ids := range [][]string{odd, odd[:10], {"nobody"}, {`a"b`, "ünï"}} {
		if _, ok := sqliteTextList(d, ids); ok != (len(ids) != len(odd)) {
			t.Errorf("sqliteTextList(%q) ok = %v", ids, ok)
		}
		got, err := svc.existingStates(db, d, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			i := -1
			for j, o := range odd {
				if o == id {
					i = j
				}
			}
			want, enrolled := "", i >= 0 && i%2 == 0
			if enrolled {
				want = StatePending
				if i%4 == 0 {
					want = StateActive
				}
			}
			if state, ok := got[id]; ok != enrolled || state != want {
				t.Errorf("id %q: state %q, found %v; want %q, %v", id, state, ok, want, enrolled)
			}
		}
		if len(got) > len(ids) {
			t.Errorf("%d states for %d ids", len(got), len(ids))
		}
	}
}

// SQLite's insert that binds shared values once stores exactly what the
// plain multi-row INSERT stores, whichever columns the rows of each
// statement have in common.
func TestInsertSharingStoresTheSameRows(t *testing.T) {
	db, _ := openInsertTestDB(t)
	d, err := dialectOf(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`CREATE TABLE mixed (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT, n INTEGER, b BLOB, at DATETIME, maybe DATETIME, flag INTEGER, big INTEGER)`).Error; err != nil {
		t.Fatal(err)
	}
	columns := []string{"s", "n", "b", "at", "maybe", "flag", "big"}
	t0 := truncateTime(time.Now())
	t1 := t0.Add(time.Second)
	var nilTime *time.Time
	row := func(i int) []any {
		r := []any{"actor", 6, []byte{1, 2}, t0, nilTime, true, int64(-1)}
		switch {
		case i%7 == 3:
			r[0] = fmt.Sprintf("user %d", i)
		case i%11 == 5:
			r[1], r[3] = i, t1
		case i%13 == 0:
			r[4], r[5] = &t1, false
		case i%17 == 2:
			r[0], r[6] = nil, int64(i)
		}
		if i >= 250 {
			r[2] = []byte(fmt.Sprint(i)) // and from here on some chunks share everything else
			r[0] = "actor"
		}
		return r
	}
	dump := func() []string {
		rows, err := db.Raw(`SELECT quote(s), quote(n), quote(b), quote(at), quote(maybe), quote(flag), quote(big), typeof(at) FROM mixed ORDER BY id`).Rows()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var f [8]string
			if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(f))
		}
		return out
	}
	for _, n := range []int{1, 2, rowsPerInsert, rowsPerInsert + 1, 437} {
		rows := make([][]any, n)
		for i := range rows {
			rows[i] = row(i)
		}
		if n == 437 {
			// A run of rows identical in every column but the blob.
			for i := 300; i < 400; i++ {
				rows[i] = []any{"same", 1, []byte{byte(i)}, t0, nilTime, true, int64(7)}
			}
		}
		if err := db.Exec("DELETE FROM mixed").Error; err != nil {
			t.Fatal(err)
		}
		if err := insertStatements(db, rowsPerInsert, rows, func(k int) string { return insertSQL(d, "mixed", columns, k) }); err != nil {
			t.Fatal(err)
		}
		want := dump()
		if err := db.Exec("DELETE FROM mixed").Error; err != nil {
			t.Fatal(err)
		}
		if err := insertRows(db, d, "mixed", columns, rows); err != nil {
			t.Fatal(err)
		}
		got := dump()
		if len(got) != n || len(want) != n {
			t.Fatalf("%d rows: %d stored sharing, %d plainly", n, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%d rows, row %d: sharing stored %s, plainly %s", n, i, got[i], want[i])
			}
		}
	}
	if got := sharedColumns([][]any{row(1), row(4)}, len(columns)); got != 0b1111011 {
		t.Errorf("sharedColumns of two ordinary rows = %b, want every column but the blob", got)
	}
	if q := sharingInsertSQL(d, "mixed", columns[:3], 2, 0b101); q != `INSERT INTO "mixed" ("s", "n", "b") VALUES (?3, ?1, ?4), (?3, ?2, ?4)` {
		t.Errorf("sharingInsertSQL = %s", q)
	}
}
