package commands_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

type exportRecord struct {
	User    string   `json:"user"`
	Login   string   `json:"login"`
	ID      string   `json:"id"`
	Outcome string   `json:"outcome"`
	State   string   `json:"state"`
	URI     string   `json:"uri"`
	Secret  string   `json:"secret"`
	QRPNG   string   `json:"qr_png"`
	Codes   []string `json:"backup_codes"`
	Error   string   `json:"error"`
}

func exportRecords(t *testing.T, stdout string) []exportRecord {
	t.Helper()
	var out []exportRecord
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r exportRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// Export from one database, import into another: the user's existing
// authenticator entry keeps working there.
func TestExportImportRoundTrip(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, src *testutil.DB) {
		alice := testutil.Enroll(t, src, "alice")
		carol := testutil.Enroll(t, src, "carol")

		before := src.Dump(t)
		if r := testutil.Run(t, testutil.Options{}, src.Args("export", "alice")...); r.Code != 2 || strings.Contains(r.Stdout+r.Stderr, alice.Secret) {
			t.Fatalf("export without --yes: exit %d, out %q %q", r.Code, r.Stdout, r.Stderr)
		}
		if src.Dump(t) != before {
			t.Fatal("a refused export changed the database")
		}

		r := testutil.Run(t, testutil.Options{}, src.Args("-o", "json", "export", "--yes", "--all")...)
		if r.Code != 0 {
			t.Fatalf("export --all: exit %d: %s", r.Code, r.Stderr)
		}
		recs := exportRecords(t, r.Stdout)
		if len(recs) != 2 || recs[0].Login != "alice" || recs[1].Login != "carol" {
			t.Fatalf("export --all exported %+v, want alice and carol only", recs)
		}
		if recs[0].Secret != alice.Secret || recs[1].Secret != carol.Secret {
			t.Fatal("exported secrets differ from the enrolled ones")
		}
		if n := src.Count(t, "totp_audit_log", "action = ?", "export"); n != 2 {
			t.Fatalf("%d export audit rows, want 2", n)
		}

		dst := testutil.NewSQLite(t)
		file := filepath.Join(dst.Dir, "uris.txt")
		content := "# exported\n" + recs[0].URI + "\n\n" + recs[1].URI + "\n" +
			"otpauth://totp/Authelia:bob?algorithm=SHA1&digits=6&issuer=Authelia&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n"
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		dry := dst.Dump(t)
		if r := testutil.Run(t, testutil.Options{}, dst.Args("import", "--dry-run", file)...); r.Code != 0 || strings.Count(r.Stdout, "would import") != 3 {
			t.Fatalf("dry run: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
		}
		if dst.Dump(t) != dry {
			t.Fatal("import --dry-run changed the database")
		}
		r = testutil.Run(t, testutil.Options{}, dst.Args("-o", "json", "import", file)...)
		if r.Code != 0 {
			t.Fatalf("import: exit %d: %s", r.Code, r.Stderr)
		}
		for _, rec := range exportRecords(t, r.Stdout) {
			if rec.Outcome != "imported" || rec.State != "enabled" || len(rec.Codes) != 10 {
				t.Errorf("imported %+v", rec)
			}
		}
		later := time.Now().Add(30 * time.Second)
		at := testutil.Options{Now: func() time.Time { return later }}
		for login, secret := range map[string]string{"alice": alice.Secret, "carol": carol.Secret, "bob": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"} {
			if r := testutil.Run(t, at, dst.Args("verify", login, testutil.Code(t, secret, later))...); r.Code != 0 {
				t.Errorf("%s's existing app code after import: exit %d %s", login, r.Code, r.Stderr)
			}
		}
		if n := dst.Count(t, "totp_audit_log", "action = ?", "import"); n != 3 {
			t.Errorf("%d import audit rows, want 3", n)
		}
		// Importing again conflicts; --skip-enrolled makes it a no-op.
		if r := testutil.Run(t, testutil.Options{}, dst.Args("import", file)...); r.Code != 4 {
			t.Errorf("second import: exit %d, want 4", r.Code)
		}
		if r := testutil.Run(t, testutil.Options{}, dst.Args("import", "--skip-enrolled", file)...); r.Code != 0 || strings.Count(r.Stdout, "skipped") != 3 {
			t.Errorf("import --skip-enrolled: exit %d, %q", r.Code, r.Stdout)
		}
	})
}

func TestExportPNG(t *testing.T) {
	db := testutil.NewSQLite(t)
	testutil.Enroll(t, db, "alice")
	dir := filepath.Join(db.Dir, "qr")
	r := testutil.Run(t, testutil.Options{}, db.Args("export", "--yes", "--png", dir, "alice")...)
	if r.Code != 0 || strings.Contains(r.Stdout, "otpauth://") {
		t.Fatalf("exit %d, stdout %q (a PNG export must not print URIs)", r.Code, r.Stdout)
	}
	info, err := os.Stat(filepath.Join(dir, "alice.png"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("alice.png: %v, mode %v", err, info)
	}
}

// Bad lines are reported by number, never echoed (they hold secrets), and
// do not stop the good ones.
func TestImportBadLines(t *testing.T) {
	db := testutil.NewSQLite(t)
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	lines := []string{
		"otpauth://totp/Issuer:alice?secret=" + secret,
		"otpauth://hotp/Issuer:bob?secret=" + secret + "&counter=1",
		"otpauth://totp/Issuer:bob?secret=" + secret[:8],
		"otpauth://totp/Issuer:bob?secret=" + secret + "&digits=12",
		"otpauth://totp/Issuer:nobody?secret=" + secret,
		"https://example.com/?secret=" + secret,
	}
	r := testutil.Run(t, testutil.Options{Stdin: strings.Join(lines, "\n")}, db.Args("-o", "json", "import", "-")...)
	if r.Code != 2 {
		t.Fatalf("exit %d, want 2 (the first failure is an invalid line): %s", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stdout+r.Stderr, secret[:8]) {
		t.Fatal("import echoed a secret")
	}
	recs := exportRecords(t, r.Stdout)
	want := []string{"imported", "invalid", "invalid", "invalid", "not found", "invalid"}
	if len(recs) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		if recs[i].Outcome != w {
			t.Errorf("line %d: %s, want %s (%s)", i+1, recs[i].Outcome, w, recs[i].Error)
		}
	}
	for _, bad := range [][]string{{"import"}, {"import", "a", "b"}, {"import", filepath.Join(db.Dir, "missing.txt")}} {
		if r := testutil.Run(t, testutil.Options{}, db.Args(bad...)...); r.Code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, r.Code)
		}
	}
}

func TestParseKeyURIAuthelia(t *testing.T) {
	c, err := models.ParseKeyURI("otpauth://totp/Authelia:john%40example.com?algorithm=SHA256&digits=8&issuer=Authelia&period=60&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "Authelia" || c.Account != "john@example.com" || c.Params != (models.Params{Algorithm: "SHA256", Digits: 8, Period: 60}) || len(c.Secret) != 20 {
		t.Fatalf("%+v", c)
	}
}

// freshLike returns a new database on the same backend as db, with the
// same users table (alice, bob, carol as ids 1, 2, 3).
func freshLike(t *testing.T, db *testutil.DB) *testutil.DB {
	t.Helper()
	switch db.Backend {
	case "postgres":
		return testutil.NewPostgres(t)
	case "mysql":
		return testutil.NewMySQL(t)
	}
	return testutil.NewSQLite(t)
}

// verifiesAfterImport checks that each user's existing authenticator
// entry (the code the test computes from the original secret) gets in
// on db.
func verifiesAfterImport(t *testing.T, db *testutil.DB, secrets map[string]string) {
	t.Helper()
	later := time.Now().Add(30 * time.Second)
	at := testutil.Options{Now: func() time.Time { return later }}
	for login, secret := range secrets {
		if r := testutil.Run(t, at, db.Args("verify", login, testutil.Code(t, secret, later))...); r.Code != 0 {
			t.Errorf("%s's existing app code after import: exit %d %s", login, r.Code, r.Stderr)
		}
	}
}

// hostileLogins are logins a users table can hold that any transformation
// on the way out or back in — trimming, case folding, normalisation, line
// splitting, CSV or JSON quoting, spreadsheet neutralisation, percent
// decoding — would change or misplace: control characters, CR and LF,
// bidi and zero-width characters, leading and trailing whitespace, TAB,
// U+0085 and U+2028 first, quotes, commas, ':' and '%', formula
// characters first, logins that look like a comment, a JSON object, a
// user reference or a URI, composed and decomposed é, and the longest
// login the column holds. Per backend, only what its users table can hold
// and tell apart: MySQL's collation ignores case and trailing spaces (so
// "Admin" and "admin " would be the decoy admin) and its utf8mb4 refuses
// invalid UTF-8; PostgreSQL refuses NUL and invalid UTF-8.
func hostileLogins(backend string) []string {
	logins := []string{
		"ctl\x01\x1b[31mred\x07\x7f", "line\nbreak", "cr\rlf\r\n", "\r\nfirst",
		"admin\u202egnp.exe", "ad\u200bmin", "\u2066isolate\u2069", "\ufeffbom",
		" admin", "admin\t", "trailing ", " ", "\tadmin", "\u0085admin", "\u2028admin", "\u00a0nbsp",
		`"quoted"`, "it's", "a,b", `x","y`, "issuer:acct", "Old:admin", "100%", "%41%3A", "a%2Fb", "a b  c",
		"=1+2", "+cmd", "-2", "@SUM(A1)", "'quote", "''", `=HYPERLINK("http://x")`, "\t=tab", "\r=cr",
		"#hash", `{"uri":"x"}`, "id:1", "otpauth://totp/X:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
		"caf\u00e9", "cafe\u0301",
	}
	switch backend {
	case "mysql":
		logins = append(logins, strings.Repeat("€", 191)) // VARCHAR(191): 573 bytes
	case "postgres":
		logins = append(logins, "Admin", "admin ", strings.Repeat("ab€", 200)) // 1000 bytes
	default:
		logins = append(logins, "Admin", "admin ", strings.Repeat("ab€", 200),
			"bad\xff\xfeutf8", "\x9b2J", "nul\x00byte", "\xc3")
	}
	return logins
}

// addHostileUsers inserts the decoy "admin" (id 4, never enrolled: no
// look-alike may land on it) and then the hostile logins, ids 5 on, into
// db's users table, and returns the logins by id.
func addHostileUsers(t *testing.T, db *testutil.DB) map[string]string {
	t.Helper()
	db.Exec(t, "INSERT INTO users (id, username) VALUES (4, 'admin')")
	byID := map[string]string{}
	for i, login := range hostileLogins(db.Backend) {
		id := fmt.Sprint(5 + i)
		db.Exec(t, "INSERT INTO users (id, username) VALUES (?, ?)", 5+i, login)
		byID[id] = login
	}
	return byID
}

// What export prints, in each of its formats, is what import reads: the
// output goes from database A to database B unedited, and the users'
// authenticator apps keep working on B — also for every hostile login,
// each secret landing on the very user id it was exported from.
func TestExportImportEveryFormat(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, src *testutil.DB) {
		secrets := map[string]string{}
		for _, login := range []string{"alice", "carol"} {
			secrets[login] = testutil.Enroll(t, src, login).Secret
		}
		hostile := addHostileUsers(t, src)
		var ids []string
		for id := range hostile {
			ids = append(ids, "id:"+id)
		}
		r := testutil.Run(t, testutil.Options{Stdin: strings.Join(ids, "\n")}, src.Args("-o", "json", "enroll", "--no-confirm", "--from-file", "-")...)
		if r.Code != 0 {
			t.Fatalf("enroll the hostile logins: exit %d: %s", r.Code, r.Stderr)
		}
		byID := map[string]string{} // user id → its secret
		for _, rec := range exportRecords(t, r.Stdout) {
			login, ok := hostile[rec.ID]
			// JSON shows invalid UTF-8 as U+FFFD; the id names the user.
			if !ok || utf8.ValidString(login) && rec.Login != login || rec.Secret == "" {
				t.Fatalf("enrolled %+v", rec)
			}
			byID[rec.ID] = rec.Secret
		}
		if len(byID) != len(hostile) {
			t.Fatalf("enrolled %d hostile logins, want %d", len(byID), len(hostile))
		}
		total := 2 + len(hostile)
		r = testutil.Run(t, testutil.Options{}, src.Args("-o", "json", "export", "--yes", "--all")...)
		for _, rec := range exportRecords(t, r.Stdout) {
			if want, ok := byID[rec.ID]; ok && rec.Secret != want {
				t.Fatalf("export of id %s carries another secret", rec.ID)
			}
		}
		for _, format := range []string{"table", "json", "csv"} {
			t.Run(format, func(t *testing.T) {
				r := testutil.Run(t, testutil.Options{}, src.Args("-o", format, "export", "--yes", "--all")...)
				if r.Code != 0 {
					t.Fatalf("export: exit %d: %s", r.Code, r.Stderr)
				}
				exported := r.Stdout
				dst := freshLike(t, src)
				addHostileUsers(t, dst)
				file := filepath.Join(dst.Dir, "export."+format)
				if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
					t.Fatal(err)
				}

				before := dst.Dump(t)
				r = testutil.Run(t, testutil.Options{}, dst.Args("import", "--dry-run", file)...)
				if r.Code != 0 || strings.Count(r.Stdout, ": would import (dry run)\n") != total || !strings.Contains(r.Stdout, "alice: would import") || !strings.Contains(r.Stdout, "carol: would import") {
					t.Fatalf("import --dry-run of export -o %s: exit %d, %q %q", format, r.Code, r.Stdout, r.Stderr)
				}
				if dst.Dump(t) != before {
					t.Fatal("import --dry-run changed the database")
				}

				r = testutil.Run(t, testutil.Options{Stdin: exported}, dst.Args("-o", "json", "import", "-")...)
				if r.Code != 0 {
					t.Fatalf("import of export -o %s: exit %d: %s", format, r.Code, r.Stderr)
				}
				recs := exportRecords(t, r.Stdout)
				if len(recs) != total || recs[0].Login != "alice" || recs[1].Login != "carol" {
					t.Fatalf("imported %d users, want %d, alice and carol first: %+v", len(recs), total, recs[:min(2, len(recs))])
				}
				for _, rec := range recs {
					if rec.Outcome != "imported" || rec.State != "enabled" {
						t.Errorf("imported %+v", rec)
					}
				}
				verifiesAfterImport(t, dst, secrets)
				later := time.Now().Add(30 * time.Second)
				at := testutil.Options{Now: func() time.Time { return later }}
				for id, secret := range byID {
					if r := testutil.Run(t, at, dst.Args("verify", "id:"+id, testutil.Code(t, secret, later))...); r.Code != 0 {
						t.Errorf("%q (id %s): its exported secret does not verify on the same id after import: exit %d %s", hostile[id], id, r.Code, r.Stderr)
					}
				}
				if n := dst.Count(t, "totp_credentials", ""); n != total {
					t.Errorf("%d credentials after import, want %d", n, total)
				}
				if n := dst.Count(t, "totp_credentials", "user_id = ?", "4"); n != 0 {
					t.Errorf("a look-alike's secret landed on admin")
				}
			})
		}
	})
}

// The audit's reproduction: the default (table) export fed to import.
func TestImportReadsExportTable(t *testing.T) {
	src := testutil.NewSQLite(t)
	alice := testutil.Enroll(t, src, "alice")
	r := testutil.Run(t, testutil.Options{}, src.Args("export", "--yes", "--all")...)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "alice  otpauth://") {
		t.Fatalf("export: exit %d, %q", r.Code, r.Stdout)
	}
	dst := testutil.NewSQLite(t)
	file := filepath.Join(dst.Dir, "exp.txt")
	if err := os.WriteFile(file, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := testutil.Run(t, testutil.Options{}, dst.Args("import", "--dry-run", file)...); r.Code != 0 || r.Stdout != "alice: would import (dry run)\n" {
		t.Fatalf("import --dry-run exp.txt: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := testutil.Run(t, testutil.Options{}, dst.Args("import", file)...); r.Code != 0 {
		t.Fatalf("import exp.txt: exit %d, %q", r.Code, r.Stderr)
	}
	verifiesAfterImport(t, dst, map[string]string{"alice": alice.Secret})
}

// export --all names every user by login in the "user" field, as every
// other command's JSON and CSV do, with "login" and "id" beside it.
func TestExportAllNamesUsersByLogin(t *testing.T) {
	db := testutil.NewSQLite(t)
	alice := testutil.Enroll(t, db, "alice")
	testutil.Enroll(t, db, "carol")

	r := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "export", "--yes", "--all")...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	recs := exportRecords(t, r.Stdout)
	want := []exportRecord{{User: "alice", Login: "alice", ID: "1"}, {User: "carol", Login: "carol", ID: "3"}}
	if len(recs) != len(want) {
		t.Fatalf("%+v", recs)
	}
	for i, w := range want {
		if recs[i].User != w.User || recs[i].Login != w.Login || recs[i].ID != w.ID {
			t.Errorf("record %d: user %q login %q id %q, want %q %q %q", i, recs[i].User, recs[i].Login, recs[i].ID, w.User, w.Login, w.ID)
		}
	}
	if recs[0].User != alice.User {
		t.Errorf("export --all says user %q, enroll alice said %q", recs[0].User, alice.User)
	}

	r = testutil.Run(t, testutil.Options{}, db.Args("-o", "csv", "export", "--yes", "--all")...)
	rows, err := csv.NewReader(strings.NewReader(r.Stdout)).ReadAll()
	if r.Code != 0 || err != nil || len(rows) != 3 {
		t.Fatalf("exit %d, %v: %q", r.Code, err, r.Stdout)
	}
	if got := strings.Join(rows[0][:3], ","); got != "user,login,id" {
		t.Fatalf("CSV header %q", rows[0])
	}
	for i, w := range want {
		if got := rows[i+1][:3]; got[0] != w.User || got[1] != w.Login || got[2] != w.ID {
			t.Errorf("CSV row %d: %q, want %s,%s,%s", i+1, got, w.User, w.Login, w.ID)
		}
	}

	// Named as id:N on the command line, the user is reported as named.
	r = testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "export", "--yes", "id:1")...)
	if recs := exportRecords(t, r.Stdout); r.Code != 0 || recs[0].User != "id:1" || recs[0].Login != "alice" {
		t.Errorf("export id:1: exit %d, %+v", r.Code, recs)
	}
}

// A user named on two lines is imported once, from the first; the later
// line is reported once, with its number and the first one's — also by
// --dry-run, which must predict the real run.
func TestImportDuplicateLines(t *testing.T) {
	db := testutil.NewSQLite(t)
	const first, second = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	content := strings.Join([]string{
		"# two entries for alice",
		"otpauth://totp/Old:alice?secret=" + first + "&issuer=Old",
		"otpauth://totp/Old:carol?secret=" + second,
		"otpauth://totp/Other%3Aalice?secret=" + second,
		"otpauth://totp/alice?secret=" + second,
	}, "\n")
	file := filepath.Join(db.Dir, "dup.txt")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	before := db.Dump(t)
	r := testutil.Run(t, testutil.Options{}, db.Args("import", "--dry-run", file)...)
	if r.Code != 2 || r.Stdout != "alice: would import (dry run)\ncarol: would import (dry run)\n" {
		t.Fatalf("dry run: exit %d, %q", r.Code, r.Stdout)
	}
	for _, line := range []int{4, 5} {
		want := fmt.Sprintf("totpadm: import line %d: alice is already on line 2; a user is imported once\n", line)
		if strings.Count(r.Stderr, want) != 1 {
			t.Errorf("dry run stderr %q, want %q once", r.Stderr, want)
		}
	}
	if db.Dump(t) != before {
		t.Fatal("import --dry-run changed the database")
	}

	r = testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "import", file)...)
	if r.Code != 2 {
		t.Fatalf("import: exit %d, want 2: %s", r.Code, r.Stderr)
	}
	recs := exportRecords(t, r.Stdout)
	want := []string{"imported", "imported", "duplicate", "duplicate"}
	if len(recs) != len(want) {
		t.Fatalf("%+v", recs)
	}
	for i, w := range want {
		if recs[i].Outcome != w {
			t.Errorf("line %d: %+v, want %s", i+2, recs[i], w)
		}
	}
	if !strings.Contains(recs[2].Error, "import line 4: alice is already on line 2") {
		t.Errorf("duplicate's error %q", recs[2].Error)
	}
	if strings.Contains(r.Stderr, "enroll alice") {
		t.Errorf("stderr %q: a duplicate reached the enrollment", r.Stderr)
	}
	if n := db.Count(t, "totp_audit_log", "action = ?", "import"); n != 2 {
		t.Errorf("%d import audit rows, want 2", n)
	}
	verifiesAfterImport(t, db, map[string]string{"alice": first, "carol": second})
}

// Lines that are not what import reads say what it does read; the label's
// issuer may be separated by an encoded colon; a secret shorter than 128
// bits is refused.
func TestImportLineFormats(t *testing.T) {
	db := testutil.NewSQLite(t)
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	lines := []string{
		"otpauth://totp/Example%20App%3Acarol?secret=" + secret + "&issuer=Example%20App",
		"otpauth://totp/Example:bob?secret=" + secret[:16],
		"alice " + secret,
		`{"login":"alice","outcome":"not enrolled","uri":""}`,
		`{"login":"alice",`,
	}
	r := testutil.Run(t, testutil.Options{Stdin: strings.Join(lines, "\n")}, db.Args("-o", "json", "import", "-")...)
	if r.Code != 2 {
		t.Fatalf("exit %d, want 2: %s", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stdout+r.Stderr, secret[:16]) {
		t.Fatal("import echoed a secret")
	}
	recs := exportRecords(t, r.Stdout)
	want := []struct{ outcome, user, err string }{
		{"imported", "carol", ""},
		{"invalid", "line 2", "import line 2: invalid otpauth URI: the secret has only 80 bits; RFC 4226 requires at least 128"},
		{"invalid", "line 3", "import line 3: invalid otpauth URI: the line holds no otpauth:// URI; want one URI a line, or the output of totpadm export as it is (table, -o json or -o csv)"},
		{"invalid", "line 4", `import line 4: invalid otpauth URI: the JSON object has no "uri"`},
		{"invalid", "line 5", "import line 5: invalid otpauth URI: the line holds no otpauth:// URI; want one URI a line, or the output of totpadm export as it is (table, -o json or -o csv)"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		if recs[i].Outcome != w.outcome || recs[i].User != w.user || recs[i].Error != w.err {
			t.Errorf("line %d: %s %q %q, want %s %q %q", i+1, recs[i].Outcome, recs[i].User, recs[i].Error, w.outcome, w.user, w.err)
		}
	}
	verifiesAfterImport(t, db, map[string]string{"carol": secret})
}

// Logins that look like something else — "id:2" (a user reference), "#ops"
// (a comment), "{x}" (a JSON object) — import as the users they name, in
// every export format and in any line order: "id:2" never lands on the
// user whose id is 2, even when its line comes first.
func TestImportHostileLogins(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, src *testutil.DB) {
		hostile := []string{"id:2", "#ops", "{x}"}
		for _, login := range hostile { // ids 4, 5, 6 here
			src.Exec(t, "INSERT INTO users (username) VALUES (?)", login)
		}
		secrets := map[string]string{"bob": testutil.Enroll(t, src, "bob").Secret}
		for i, login := range hostile {
			secrets[login] = testutil.Enroll(t, src, fmt.Sprintf("id:%d", 4+i)).Secret
		}
		for _, format := range []string{"table", "json", "csv"} {
			t.Run(format, func(t *testing.T) {
				r := testutil.Run(t, testutil.Options{}, src.Args("-o", format, "export", "--yes", "--all")...)
				if r.Code != 0 {
					t.Fatalf("export: exit %d: %s", r.Code, r.Stderr)
				}
				// Newest first, so "id:2" comes before bob.
				lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
				body := lines
				if format == "csv" {
					body = lines[1:]
				}
				for i, j := 0, len(body)-1; i < j; i, j = i+1, j-1 {
					body[i], body[j] = body[j], body[i]
				}
				dst := freshLike(t, src)
				ids := map[string]string{"bob": "2"}
				for i := len(hostile) - 1; i >= 0; i-- { // other ids there
					dst.Exec(t, "INSERT INTO users (username) VALUES (?)", hostile[i])
				}
				for i, login := range hostile {
					ids[login] = fmt.Sprint(6 - i)
				}
				r = testutil.Run(t, testutil.Options{Stdin: strings.Join(lines, "\n") + "\n"}, dst.Args("import", "-")...)
				if r.Code != 0 || strings.Count(r.Stdout, ": imported") != 4 {
					t.Fatalf("import: exit %d\nstdout %q\nstderr %q", r.Code, r.Stdout, r.Stderr)
				}
				later := time.Now().Add(30 * time.Second)
				at := testutil.Options{Now: func() time.Time { return later }}
				for login, secret := range secrets {
					if r := testutil.Run(t, at, dst.Args("verify", "id:"+ids[login], testutil.Code(t, secret, later))...); r.Code != 0 {
						t.Errorf("%s (id %s): its own secret does not verify after import: exit %d %s", login, ids[login], r.Code, r.Stderr)
					}
				}
			})
		}
	})
}

// The account in a label names a login byte for byte, as the database
// stores it: a label that would match only after trimming, case folding
// or Unicode normalisation is "not found" for its exact value — refused
// with its line number and the value quoted, so a person sees the space —
// and its secret lands on nobody. Also where the database's own comparison
// would match (MySQL ignores case and trailing spaces).
func TestImportExactLogin(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "INSERT INTO users (username) VALUES (?)", "admin")      // id 4
		db.Exec(t, "INSERT INTO users (username) VALUES (?)", "cafe\u0301") // id 5, decomposed
		const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
		uri := func(label string) string { return "otpauth://totp/Old:" + label + "?secret=" + secret }
		lines := []string{
			uri("%20admin"),
			uri("admin%20"),
			uri("ADMIN"),
			uri("ad%E2%80%8Bmin"), // zero-width space
			uri("caf%C3%A9"),      // composed é
			"# the one that lands",
			uri("admin"),
		}
		want := []struct{ outcome, login, quoted string }{
			{"not found", "", `" admin"`},
			{"not found", "", `"admin "`},
			{"not found", "", `"ADMIN"`},
			{"not found", "", `"ad\u200bmin"`},
			{"not found", "", `"café"`},
			{"imported", "admin", ""},
		}
		before := db.Dump(t)
		r := testutil.Run(t, testutil.Options{Stdin: strings.Join(lines, "\n")}, db.Args("-o", "json", "import", "--dry-run", "-")...)
		if r.Code != 3 || strings.Count(r.Stdout, `"would import"`) != 1 {
			t.Fatalf("dry run: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
		}
		if db.Dump(t) != before {
			t.Fatal("import --dry-run changed the database")
		}
		r = testutil.Run(t, testutil.Options{Stdin: strings.Join(lines, "\n")}, db.Args("-o", "json", "import", "-")...)
		if r.Code != 3 {
			t.Fatalf("exit %d, want 3 (not found): %s", r.Code, r.Stderr)
		}
		recs := exportRecords(t, r.Stdout)
		if len(recs) != len(want) {
			t.Fatalf("%d results, want %d: %+v", len(recs), len(want), recs)
		}
		stderr := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
		if len(stderr) != 5 {
			t.Fatalf("stderr %q, want one line per refused label", r.Stderr)
		}
		for i, w := range want {
			if recs[i].Outcome != w.outcome || recs[i].Login != w.login {
				t.Errorf("line %d: %s %q (%s), want %s %q", i+1, recs[i].Outcome, recs[i].Login, recs[i].Error, w.outcome, w.login)
			}
			if w.quoted == "" {
				continue
			}
			msg := fmt.Sprintf("totpadm: import line %d: user not found: no user's login is exactly %s (", i+1, w.quoted)
			if !strings.HasPrefix(stderr[i], msg) {
				t.Errorf("stderr line %q, want it to start %q", stderr[i], msg)
			}
		}
		if n := db.Count(t, "totp_credentials", ""); n != 1 {
			t.Errorf("%d credentials, want only admin's", n)
		}
		if n := db.Count(t, "totp_credentials", "user_id = ?", "4"); n != 1 {
			t.Errorf("admin (id 4) has %d credentials, want 1", n)
		}
		if db.Backend == "mysql" && !strings.Contains(stderr[2], `the database's own comparison matches "admin"`) {
			t.Errorf("MySQL matches ADMIN to admin; the message should say so: %q", stderr[2])
		}
	})
}

// export -o csv neutralises cells for spreadsheets, and import undoes
// exactly one leading ' of a cell: a login starting with = is written '=…,
// and a uri cell a spreadsheet saved as 'otpauth://… still imports, while
// ”otpauth://… (two) is not a URI.
func TestImportCSVNeutralisedCells(t *testing.T) {
	src := testutil.NewSQLite(t)
	src.Exec(t, "INSERT INTO users (id, username) VALUES (4, '=1+2')")
	secret := testutil.Enroll(t, src, "id:4").Secret
	r := testutil.Run(t, testutil.Options{}, src.Args("-o", "csv", "export", "--yes", "--all")...)
	rows, err := csv.NewReader(strings.NewReader(r.Stdout)).ReadAll()
	if r.Code != 0 || err != nil || len(rows) != 2 || rows[1][0] != "'=1+2" || rows[1][1] != "'=1+2" {
		t.Fatalf("export -o csv: exit %d, %v, %q", r.Code, err, rows)
	}
	uri := rows[1][6]
	dst := testutil.NewSQLite(t)
	dst.Exec(t, "INSERT INTO users (id, username) VALUES (4, '=1+2')")
	in := "user,uri\nx,'" + uri + "\ny,''" + uri + "\n"
	r = testutil.Run(t, testutil.Options{Stdin: in}, dst.Args("-o", "json", "import", "-")...)
	recs := exportRecords(t, r.Stdout)
	if r.Code != 2 || len(recs) != 2 || recs[0].Outcome != "imported" || recs[0].ID != "4" || recs[1].Outcome != "invalid" {
		t.Fatalf("import: exit %d, %+v, %s", r.Code, recs, r.Stderr)
	}
	verifiesAfterImport(t, dst, map[string]string{"=1+2": secret})
}
