package commands_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

type exportRecord struct {
	Login   string   `json:"login"`
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
