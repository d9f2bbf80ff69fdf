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

// What export prints, in each of its formats, is what import reads: the
// output goes from database A to database B unedited, and the users'
// authenticator apps keep working on B.
func TestExportImportEveryFormat(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, src *testutil.DB) {
		secrets := map[string]string{}
		for _, login := range []string{"alice", "carol"} {
			secrets[login] = testutil.Enroll(t, src, login).Secret
		}
		for _, format := range []string{"table", "json", "csv"} {
			t.Run(format, func(t *testing.T) {
				r := testutil.Run(t, testutil.Options{}, src.Args("-o", format, "export", "--yes", "--all")...)
				if r.Code != 0 {
					t.Fatalf("export: exit %d: %s", r.Code, r.Stderr)
				}
				exported := r.Stdout
				dst := freshLike(t, src)
				file := filepath.Join(dst.Dir, "export."+format)
				if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
					t.Fatal(err)
				}

				before := dst.Dump(t)
				r = testutil.Run(t, testutil.Options{}, dst.Args("import", "--dry-run", file)...)
				if r.Code != 0 || strings.Count(r.Stdout, "would import") != 2 || !strings.Contains(r.Stdout, "alice: would import") || !strings.Contains(r.Stdout, "carol: would import") {
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
				if len(recs) != 2 || recs[0].Login != "alice" || recs[1].Login != "carol" {
					t.Fatalf("imported %+v, want alice and carol", recs)
				}
				for _, rec := range recs {
					if rec.Outcome != "imported" || rec.State != "enabled" {
						t.Errorf("imported %+v", rec)
					}
				}
				verifiesAfterImport(t, dst, secrets)
				if n := dst.Count(t, "totp_credentials", ""); n != 2 {
					t.Errorf("%d credentials after import, want 2", n)
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
