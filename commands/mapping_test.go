package commands_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// mappingRows renders the rows of a query as lines, for before/after
// comparisons of the application's table.
func mappingRows(t *testing.T, db *testutil.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Gorm.Raw(query, args...).Rows()
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(&b, "%v|", v)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// mappingJSON decodes JSON-lines output.
func mappingJSON(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	for _, s := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("JSON line %q: %v", s, err)
		}
		rows = append(rows, m)
	}
	return rows
}

// mappingWrongCode is a well-formed code that secret does not produce
// anywhere near at.
func mappingWrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	good := map[string]bool{}
	for d := -5; d <= 5; d++ {
		good[testutil.Code(t, secret, at.Add(time.Duration(d)*30*time.Second))] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i*104729%1000000); !good[c] {
			return c
		}
	}
}

type mappingRun struct {
	t       *testing.T
	db      *testutil.DB
	mapping []string
	now     time.Time
}

func (m mappingRun) run(stdin string, args ...string) testutil.Result {
	m.t.Helper()
	all := append(m.db.Args(m.mapping...), args...)
	return testutil.Run(m.t, testutil.Options{Stdin: stdin, Now: func() time.Time { return m.now }}, all...)
}

// must runs args and fails the test unless the exit code is want.
func (m mappingRun) must(want int, args ...string) testutil.Result {
	m.t.Helper()
	res := m.run("", args...)
	if res.Code != want {
		m.t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, want, res.Stdout, res.Stderr)
	}
	return res
}

// A schema-qualified PostgreSQL table with a UUID primary key and other
// column names works for every command, and is never altered.
func TestMappingPostgresUUID(t *testing.T) {
	if os.Getenv(testutil.PostgresEnv) == "" {
		t.Skipf("PostgreSQL mapping test skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test) to run it", testutil.PostgresEnv)
	}
	db := testutil.NewPostgres(t)
	suffix := make([]byte, 6)
	rand.Read(suffix)
	schema := "app_" + hex.EncodeToString(suffix)
	db.Exec(t, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { db.Gorm.Exec("DROP SCHEMA " + schema + " CASCADE") })
	table := schema + ".accounts"
	db.Exec(t, "CREATE TABLE "+table+" (account_uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), handle text UNIQUE NOT NULL, mail text)")
	handles := []string{"ann", "ben", "cat", "dan", "eve"}
	for _, h := range handles {
		db.Exec(t, "INSERT INTO "+table+" (handle, mail) VALUES (?, ?)", h, h+"@corp.example")
	}
	uuid := map[string]string{}
	var rows []struct{ ID, Handle string }
	if err := db.Gorm.Raw("SELECT CAST(account_uuid AS TEXT) AS id, handle FROM " + table).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		uuid[r.Handle] = r.ID
	}

	definition := func() string {
		var b strings.Builder
		b.WriteString(mappingRows(t, db, `SELECT column_name, data_type, is_nullable, COALESCE(column_default, ''), ordinal_position, COALESCE(collation_name, '')
FROM information_schema.columns WHERE table_schema = ? AND table_name = 'accounts' ORDER BY ordinal_position`, schema))
		b.WriteString(mappingRows(t, db, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = ? AND tablename = 'accounts' ORDER BY indexname`, schema))
		b.WriteString(mappingRows(t, db, `SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = CAST(? AS regclass) ORDER BY conname`, table))
		b.WriteString(mappingRows(t, db, `SELECT tc.constraint_name, tc.constraint_type FROM information_schema.table_constraints tc WHERE tc.table_schema = ? AND tc.table_name = 'accounts' ORDER BY 1`, schema))
		b.WriteString(mappingRows(t, db, `SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(? AS regclass) ORDER BY 1`, table))
		b.WriteString(mappingRows(t, db, `SELECT COALESCE(CAST(relacl AS TEXT), ''), relowner, relkind, relrowsecurity FROM pg_class WHERE oid = CAST(? AS regclass)`, table))
		b.WriteString(mappingRows(t, db, `SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = ? ORDER BY 1`, schema))
		b.WriteString(mappingRows(t, db, `SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = ? ORDER BY 1`, schema))
		return b.String()
	}
	data := func() string {
		return mappingRows(t, db, "SELECT CAST(account_uuid AS TEXT), handle, mail FROM "+table+" ORDER BY account_uuid")
	}
	defBefore, dataBefore := definition(), data()
	if !strings.Contains(defBefore, "accounts_pkey") || !strings.Contains(defBefore, "accounts_handle_key") {
		t.Fatalf("definition snapshot misses the table's indexes:\n%s", defBefore)
	}

	m := mappingRun{t: t, db: db, now: time.Now(),
		mapping: []string{"--users-table", table, "--user-id-column", "account_uuid", "--user-login-column", "handle", "--user-email-column", "mail"}}
	upper := func(h string) string { return "id:" + strings.ToUpper(uuid[h]) }

	// enroll by login, by id, by upper-case id.
	secrets := map[string]string{}
	res := m.must(0, "-o", "json", "enroll", "--no-confirm", "ann", "id:"+uuid["ben"], upper("cat"))
	got := mappingJSON(t, res.Stdout)
	if len(got) != 3 {
		t.Fatalf("enroll: %d results: %s", len(got), res.Stdout)
	}
	for i, h := range []string{"ann", "ben", "cat"} {
		if got[i]["outcome"] != "enrolled" || got[i]["login"] != h || got[i]["id"] != uuid[h] {
			t.Errorf("enroll %s: %v, want enrolled with id %s", h, got[i], uuid[h])
		}
		secrets[h], _ = got[i]["secret"].(string)
		if n := db.Count(t, "totp_credentials", "user_id = ?", uuid[h]); n != 1 {
			t.Errorf("%s: %d credentials stored under the canonical uuid %s", h, n, uuid[h])
		}
	}
	if n := db.Count(t, "totp_credentials", ""); n != 3 {
		t.Errorf("%d credentials, want 3", n)
	}
	res = m.must(0, "-o", "json", "enroll", "--no-confirm", "--skip-enrolled", "cat", upper("ann"), "id:"+uuid["ben"])
	for _, r := range mappingJSON(t, res.Stdout) {
		if r["outcome"] != "skipped" {
			t.Errorf("enroll --skip-enrolled again: %v", r)
		}
	}
	res = m.must(4, "-o", "json", "enroll", "--no-confirm", upper("ann"))
	if !strings.Contains(res.Stderr, "already enrolled") {
		t.Errorf("enroll id:UPPER of an enrolled user: stderr %q", res.Stderr)
	}

	// verify activates ann; by upper-case id too.
	m.must(0, "verify", upper("ann"), testutil.Code(t, secrets["ann"], m.now))

	// status: every user, ordered by id, with emails.
	res = m.must(0, "-o", "json", "status")
	st := mappingJSON(t, res.Stdout)
	sorted := slices.Clone(handles)
	slices.SortFunc(sorted, func(a, b string) int { return strings.Compare(uuid[a], uuid[b]) })
	wantState := map[string]string{"ann": "enabled", "ben": "pending", "cat": "pending", "dan": "disabled", "eve": "disabled"}
	if len(st) != len(handles) {
		t.Fatalf("status: %d rows, want %d: %s", len(st), len(handles), res.Stdout)
	}
	for i, h := range sorted {
		if st[i]["login"] != h || st[i]["id"] != uuid[h] || st[i]["email"] != h+"@corp.example" || st[i]["state"] != wantState[h] {
			t.Errorf("status row %d: %v, want %s %s %s@corp.example %s (ordered by id)", i, st[i], uuid[h], h, h, wantState[h])
		}
	}
	res = m.must(0, "-o", "json", "status", upper("ben"), "dan")
	if st := mappingJSON(t, res.Stdout); len(st) != 2 || st[0]["login"] != "ben" || st[1]["login"] != "dan" {
		t.Errorf("status ben dan: %s", res.Stdout)
	}
	res = m.must(0, "-o", "json", "status", "--summary")
	var sum map[string]int
	if err := json.Unmarshal([]byte(res.Stdout), &sum); err != nil || sum["enabled"] != 1 || sum["pending"] != 2 || sum["disabled"] != 2 || sum["locked"] != 0 || sum["total"] != 5 {
		t.Errorf("status --summary: %q (%v)", res.Stdout, err)
	}

	// backup-codes
	res = m.must(0, "-o", "json", "backup-codes", "id:"+uuid["ben"])
	if bc := mappingJSON(t, res.Stdout); len(bc) != 1 || bc[0]["outcome"] != "regenerated" || len(bc[0]["backup_codes"].([]any)) != 10 {
		t.Errorf("backup-codes: %s", res.Stdout)
	}

	// lock ann with one wrong code, then unlock by upper-case id.
	wrong := mappingWrongCode(t, secrets["ann"], m.now)
	m.must(1, "--max-failures", "1", "verify", "ann", wrong)
	res = m.must(0, "-o", "json", "status", "ann")
	if st := mappingJSON(t, res.Stdout); len(st) != 1 || st[0]["state"] != "locked" {
		t.Errorf("status after lockout: %s", res.Stdout)
	}
	res = m.must(0, "-o", "json", "unlock", upper("ann"), "ben")
	if u := mappingJSON(t, res.Stdout); len(u) != 2 || u[0]["outcome"] != "unlocked" || u[1]["outcome"] != "not locked" {
		t.Errorf("unlock: %s", res.Stdout)
	}

	// disable
	res = m.must(0, "-o", "json", "disable", "--yes", "--reason", "offboarding", upper("cat"), "dan")
	if d := mappingJSON(t, res.Stdout); len(d) != 2 || d[0]["outcome"] != "disabled" || d[0]["id"] != uuid["cat"] || d[1]["outcome"] != "not enrolled" {
		t.Errorf("disable: %s", res.Stdout)
	}
	if n := db.Count(t, "totp_credentials", "user_id = ?", uuid["cat"]); n != 0 {
		t.Errorf("cat still has %d credentials", n)
	}

	// audit: all, and by user in each form.
	res = m.must(0, "-o", "json", "audit")
	all := mappingJSON(t, res.Stdout)
	if len(all) < 8 {
		t.Errorf("audit: %d entries: %s", len(all), res.Stdout)
	}
	for _, e := range all {
		h, _ := e["login"].(string)
		if id, ok := uuid[h]; !ok || e["user_id"] != id {
			t.Errorf("audit entry %v: user_id is not the user's uuid", e)
		}
	}
	for _, ref := range []string{"cat", "id:" + uuid["cat"], upper("cat")} {
		res = m.must(0, "-o", "json", "audit", ref)
		entries := mappingJSON(t, res.Stdout)
		var actions []string
		for _, e := range entries {
			if e["user_id"] != uuid["cat"] {
				t.Errorf("audit %s: entry about %v", ref, e["login"])
			}
			actions = append(actions, e["action"].(string))
		}
		if !slices.Equal(actions, []string{"disable", "enroll"}) {
			t.Errorf("audit %s: actions %v, want [disable enroll]", ref, actions)
		}
	}

	// An id that cannot be a uuid is a user not found (3), not a database
	// failure (5), in every command.
	t.Run("invalid uuid", func(t *testing.T) {
		m := m
		m.t = t
		before := db.Dump(t)
		for _, args := range [][]string{
			{"enroll", "--no-confirm", "id:zzz"},
			{"verify", "id:zzz", "123456"},
			{"status", "id:zzz"},
			{"status", "--summary", "id:zzz"},
			{"backup-codes", "id:zzz"},
			{"unlock", "id:zzz"},
			{"disable", "--yes", "--reason", "r", "id:zzz"},
			{"disable", "--dry-run", "--reason", "r", "id:zzz"},
			{"audit", "id:zzz"},
			{"enroll", "--no-confirm", "id:" + uuid["eve"] + "0"},
			{"status", "id:00000000-0000-0000-0000-000000000000"},
		} {
			res := m.run("", args...)
			if res.Code != 3 || !strings.Contains(res.Stderr, "not found") || strings.Count(res.Stderr, "\n") != 1 {
				t.Errorf("%s: exit %d, stderr %q; want 3 and one \"not found\" line", strings.Join(args, " "), res.Code, res.Stderr)
			}
		}
		if db.Dump(t) != before {
			t.Errorf("a failing command changed totpadm's tables")
		}
		// In a bulk list, the bad id does not spoil the good ones.
		res := m.run("ann\nid:zzz\n"+upper("dan")+"\nid:"+uuid["eve"]+"\n", "-o", "json", "status", "--from-file", "-")
		st := mappingJSON(t, res.Stdout)
		if res.Code != 3 || len(st) != 3 || st[0]["login"] != "ann" || st[1]["login"] != "dan" || st[2]["login"] != "eve" {
			t.Errorf("status of a list with id:zzz: exit %d, %s, stderr %q", res.Code, res.Stdout, res.Stderr)
		}
		res = m.run("ann\nid:zzz\n"+upper("dan")+"\n", "-o", "json", "enroll", "--no-confirm", "--skip-enrolled", "--from-file", "-")
		got := mappingJSON(t, res.Stdout)
		if res.Code != 3 || len(got) != 3 || got[0]["outcome"] != "skipped" || got[1]["outcome"] != "not found" || got[2]["outcome"] != "enrolled" || got[2]["id"] != uuid["dan"] {
			t.Errorf("enroll of a list with id:zzz: exit %d, %s, stderr %q", res.Code, res.Stdout, res.Stderr)
		}
	})

	if after := definition(); after != defBefore {
		t.Errorf("the application's table definition changed:\nbefore:\n%s\nafter:\n%s", defBefore, after)
	}
	if after := data(); after != dataBefore {
		t.Errorf("the application's rows changed:\nbefore:\n%s\nafter:\n%s", dataBefore, after)
	}
}

// SQLite: a mixed-case table name, column names with spaces and a dash,
// and a text primary key.
func TestMappingSQLiteCustomNames(t *testing.T) {
	db := testutil.NewSQLite(t)
	db.Exec(t, `CREATE TABLE "Accounts" ("Account ID" TEXT PRIMARY KEY, "user name" TEXT NOT NULL UNIQUE, "E-Mail" TEXT)`)
	accounts := [][3]any{{"acc-b", "Zed Q", "zed@corp.example"}, {"acc-a", "amy", "amy@corp.example"}, {"acc-c", "o'brien", nil}, {"acc-d", `say "hi"`, "hi@corp.example"}}
	for _, a := range accounts {
		db.Exec(t, `INSERT INTO "Accounts" VALUES (?, ?, ?)`, a[0], a[1], a[2])
	}
	snapshot := func() string {
		return mappingRows(t, db, `SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name = 'Accounts' ORDER BY name`) +
			mappingRows(t, db, `SELECT * FROM "Accounts" ORDER BY 1`)
	}
	before := snapshot()
	m := mappingRun{t: t, db: db, now: time.Now(),
		mapping: []string{"--users-table", "Accounts", "--user-id-column", "Account ID", "--user-login-column", "user name", "--user-email-column", "E-Mail"}}

	res := m.must(0, "-o", "json", "enroll", "--no-confirm", "Zed Q", "id:acc-a", `say "hi"`)
	got := mappingJSON(t, res.Stdout)
	if len(got) != 3 || got[0]["id"] != "acc-b" || got[1]["login"] != "amy" || got[2]["id"] != "acc-d" {
		t.Fatalf("enroll: %s", res.Stdout)
	}
	m.must(0, "verify", "id:acc-b", testutil.Code(t, got[0]["secret"].(string), m.now))
	res = m.must(0, "-o", "json", "status")
	st := mappingJSON(t, res.Stdout)
	want := [][3]string{{"acc-a", "amy", "pending"}, {"acc-b", "Zed Q", "enabled"}, {"acc-c", "o'brien", "disabled"}, {"acc-d", `say "hi"`, "pending"}}
	if len(st) != len(want) {
		t.Fatalf("status: %s", res.Stdout)
	}
	for i, w := range want {
		if st[i]["id"] != w[0] || st[i]["login"] != w[1] || st[i]["state"] != w[2] {
			t.Errorf("status row %d: %v, want %v", i, st[i], w)
		}
	}
	if st[0]["email"] != "amy@corp.example" || st[2]["email"] != "" {
		t.Errorf("emails: %v / %v", st[0]["email"], st[2]["email"])
	}
	res = m.must(0, "-o", "json", "status", "--summary")
	if !strings.Contains(res.Stdout, `"enabled":1`) || !strings.Contains(res.Stdout, `"total":4`) {
		t.Errorf("summary: %s", res.Stdout)
	}
	m.must(0, "backup-codes", "amy")
	m.must(3, "backup-codes", "o'brien")
	m.must(0, "unlock", "Zed Q")
	res = m.run("# leavers\nZed Q\n\nid:acc-c\nnobody\n", "-o", "json", "disable", "--yes", "--reason", "r", "--from-file", "-")
	d := mappingJSON(t, res.Stdout)
	if res.Code != 3 || len(d) != 3 || d[0]["outcome"] != "disabled" || d[1]["outcome"] != "not enrolled" || d[2]["outcome"] != "not found" {
		t.Errorf("disable: exit %d, %s", res.Code, res.Stdout)
	}
	res = m.must(0, "-o", "json", "audit", "Zed Q")
	if a := mappingJSON(t, res.Stdout); len(a) < 3 || a[0]["action"] != "disable" || a[0]["user_id"] != "acc-b" {
		t.Errorf("audit: %s", res.Stdout)
	}
	m.must(3, "status", "id:acc-zzz")
	if after := snapshot(); after != before {
		t.Errorf("the application's table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// A mapping to a table or column that does not exist is an environment
// error (5) with a message naming it, never "user not found".
func TestMappingMissingTable(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		before := db.Dump(t)
		for _, tc := range []struct {
			mapping []string
			name    string
		}{
			{[]string{"--users-table", "no_such_accounts"}, "no_such_accounts"},
			{[]string{"--users-table", "nosuchschema.accounts"}, "nosuchschema.accounts"},
			{[]string{"--user-login-column", "no_such_login"}, "no_such_login"},
			{[]string{"--user-id-column", "no_such_id"}, "no_such_id"},
		} {
			for _, args := range [][]string{
				{"status"},
				{"status", "alice"},
				{"status", "--summary"},
				{"enroll", "--no-confirm", "alice"},
				{"disable", "--yes", "--reason", "r", "alice"},
				{"unlock", "alice", "bob"},
				{"audit", "alice"},
			} {
				all := append(db.Args(tc.mapping...), args...)
				res := testutil.Run(t, testutil.Options{Stdin: ""}, all...)
				if res.Code != 5 || !strings.Contains(res.Stderr, tc.name) || !strings.HasPrefix(res.Stderr, "totpadm: ") || strings.Count(res.Stderr, "\n") != 1 {
					t.Errorf("%v %v: exit %d, stderr %q; want 5 and one line naming %s", tc.mapping, args, res.Code, res.Stderr, tc.name)
				}
			}
		}
		if db.Dump(t) != before {
			t.Errorf("a run against a missing table changed the database")
		}
	})
}
