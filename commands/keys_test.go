package commands_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// keysHelperArgs points at db without any key.
func keysHelperArgs(db *testutil.DB, args ...string) []string {
	return append([]string{"--db", db.Spec, "--actor", "tester"}, args...)
}

// keysHelperKeygen returns a new key printed by `totpadm keygen`.
func keysHelperKeygen(t *testing.T) string {
	t.Helper()
	res := testutil.Run(t, testutil.Options{}, "keygen")
	if res.Code != 0 {
		t.Fatalf("keygen: exit %d, %q", res.Code, res.Stderr)
	}
	return strings.TrimSuffix(res.Stdout, "\n")
}

// keysHelperFile writes a key file with the given mode.
func keysHelperFile(t *testing.T, key string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(path, []byte(key+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
	return path
}

// keysHelperRefused runs args and asserts exit 5, one error line
// mentioning every want, and an unchanged database.
func keysHelperRefused(t *testing.T, db *testutil.DB, opt testutil.Options, args []string, want ...string) testutil.Result {
	t.Helper()
	before := db.Dump(t)
	res := testutil.Run(t, opt, args...)
	if res.Code != 5 {
		t.Fatalf("%v: exit %d, want 5; stderr %q", args, res.Code, res.Stderr)
	}
	enrollHelperOneErrorLine(t, res.Stderr)
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("%v: stderr %q does not mention %q", args, res.Stderr, w)
		}
	}
	if strings.Contains(res.Stdout, "otpauth://") {
		t.Errorf("%v: a secret was printed: %q", args, res.Stdout)
	}
	if after := db.Dump(t); after != before {
		t.Errorf("%v: database changed:\nbefore %s\nafter %s", args, before, after)
	}
	return res
}

func TestKeysFileMode(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "bob")
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606} {
			t.Run(mode.String(), func(t *testing.T) {
				if err := os.Chmod(db.KeyFile, mode); err != nil {
					t.Fatal(err)
				}
				defer os.Chmod(db.KeyFile, 0o600)
				keysHelperRefused(t, db, testutil.Options{}, db.Args("enroll", "--no-confirm", "alice"), "chmod 600", db.KeyFile)
				keysHelperRefused(t, db, testutil.Options{Now: enrollHelperAt(enrollHelperT0)},
					db.Args("verify", "bob", testutil.Code(t, e.Secret, enrollHelperT0)), "chmod 600")
			})
		}
		// 0400 is as private as 0600.
		if err := os.Chmod(db.KeyFile, 0o400); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(db.KeyFile, 0o600)
		if res := testutil.Run(t, testutil.Options{}, db.Args("enroll", "--no-confirm", "alice")...); res.Code != 0 {
			t.Errorf("key file mode 0400: exit %d, %q", res.Code, res.Stderr)
		}
	})
}

func TestKeysMissingOrAbsent(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "bob")
		code := testutil.Code(t, e.Secret, enrollHelperT0)
		opt := testutil.Options{Now: enrollHelperAt(enrollHelperT0)}
		missing := filepath.Join(t.TempDir(), "nope.key")

		t.Run("missing key file", func(t *testing.T) {
			keysHelperRefused(t, db, opt, keysHelperArgs(db, "--key-file", missing, "enroll", "--no-confirm", "alice"),
				missing, "does not exist", "totpadm keygen --out")
			keysHelperRefused(t, db, opt, keysHelperArgs(db, "--key-file", missing, "verify", "bob", code), "does not exist")
		})
		t.Run("no key configured", func(t *testing.T) {
			keysHelperRefused(t, db, opt, keysHelperArgs(db, "enroll", "--no-confirm", "alice"),
				"no encryption key", "totpadm keygen", "TOTPADM_KEY")
			keysHelperRefused(t, db, opt, keysHelperArgs(db, "verify", "bob", code), "no encryption key", "totpadm keygen")
			keysHelperRefused(t, db, opt, keysHelperArgs(db, "enroll", "--code", code, "bob"), "no encryption key")
			// A command that reads no secret needs no key.
			if res := testutil.Run(t, opt, keysHelperArgs(db, "status", "bob")...); res.Code != 0 || !strings.Contains(res.Stdout, "pending") {
				t.Errorf("status without a key: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
			}
		})
		t.Run("invalid TOTPADM_KEY", func(t *testing.T) {
			short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
			for _, bad := range []string{"not base64 at all!", short} {
				res := keysHelperRefused(t, db, testutil.Options{Env: map[string]string{"TOTPADM_KEY": bad}},
					keysHelperArgs(db, "enroll", "--no-confirm", "alice"), "TOTPADM_KEY", "keygen")
				if strings.Contains(res.Stderr, bad) {
					t.Errorf("the key value is echoed in the error: %q", res.Stderr)
				}
			}
		})
		t.Run("invalid key file", func(t *testing.T) {
			bad := keysHelperFile(t, "c2hvcnQ=", 0o600)
			keysHelperRefused(t, db, opt, keysHelperArgs(db, "--key-file", bad, "enroll", "--no-confirm", "alice"), bad)
		})
	})
}

func TestKeysEnvAndWrongKey(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		key := keysHelperKeygen(t)
		env := testutil.Options{Env: map[string]string{"TOTPADM_KEY": key}, Now: enrollHelperAt(enrollHelperT0)}

		// Enroll and verify with the key from the environment.
		res := testutil.Run(t, env, keysHelperArgs(db, "-o", "json", "enroll", "--no-confirm", "alice")...)
		if res.Code != 0 {
			t.Fatalf("enroll with TOTPADM_KEY: exit %d, %q", res.Code, res.Stderr)
		}
		secret := enrollHelperLines(t, res.Stdout)[0]["secret"].(string)
		code := testutil.Code(t, secret, enrollHelperT0)

		// The key file of the test database is another key: refused,
		// nothing changed (no failure counted, no audit row).
		keysHelperRefused(t, db, env, db.Args("verify", "alice", code), "cannot decrypt", "wrong TOTPADM_KEY or key file")
		keysHelperRefused(t, db, env, db.Args("enroll", "--code", code, "alice"), "cannot decrypt")
		other := keysHelperFile(t, keysHelperKeygen(t), 0o600)
		keysHelperRefused(t, db, testutil.Options{Now: enrollHelperAt(enrollHelperT0)},
			keysHelperArgs(db, "--key-file", other, "verify", "alice", code), "cannot decrypt")
		if n := db.Count(t, "totp_credentials", "failures > 0"); n != 0 {
			t.Errorf("%d credentials count a failure after wrong-key runs", n)
		}

		// The right key in a file works as well as in the environment.
		same := keysHelperFile(t, key, 0o600)
		res = testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, keysHelperArgs(db, "--key-file", same, "verify", "alice", code)...)
		if res.Code != 0 {
			t.Fatalf("verify with the same key from a file: exit %d, %q", res.Code, res.Stderr)
		}
		if enrollHelperState(t, db, "1") != "active" {
			t.Errorf("not activated")
		}
		// And the environment key verifies the next code.
		next := enrollHelperT0.Add(30 * time.Second)
		env.Now = enrollHelperAt(next)
		if res := testutil.Run(t, env, keysHelperArgs(db, "verify", "alice", testutil.Code(t, secret, next))...); res.Code != 0 {
			t.Errorf("verify with TOTPADM_KEY: exit %d, %q", res.Code, res.Stderr)
		}
	})
}

func TestKeysKeygen(t *testing.T) {
	a, b := keysHelperKeygen(t), keysHelperKeygen(t)
	for _, k := range []string{a, b} {
		if len(k) != 44 {
			t.Errorf("key %q is %d characters, want 44", k, len(k))
		}
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 32 {
			t.Errorf("key %q decodes to %d bytes (%v), want 32", k, len(raw), err)
		}
		if _, err := models.ParseKey(k); err != nil {
			t.Errorf("key %q does not parse: %v", k, err)
		}
	}
	if a == b {
		t.Errorf("two keygen runs printed the same key %q", a)
	}
	if res := testutil.Run(t, testutil.Options{}, "keygen"); res.Stderr != "" || strings.Count(res.Stdout, "\n") != 1 {
		t.Errorf("keygen: stdout %q stderr %q, want one line and no stderr", res.Stdout, res.Stderr)
	}
	if res := testutil.Run(t, testutil.Options{}, "keygen", "extra"); res.Code != 2 {
		t.Errorf("keygen with an argument: exit %d, want 2", res.Code)
	}
}

func TestKeysKeygenOut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.key")
	res := testutil.Run(t, testutil.Options{}, "keygen", "--out", path)
	if res.Code != 0 {
		t.Fatalf("keygen --out: exit %d, %q", res.Code, res.Stderr)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(content))
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 32 || len(key) != 44 {
		t.Errorf("key file holds %q, want 44 base64 characters of 32 bytes", content)
	}
	if strings.Contains(res.Stdout, key) || strings.Contains(res.Stderr, key) {
		t.Errorf("keygen --out printed the key: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stderr, path) {
		t.Errorf("keygen --out does not say where the key went: %q", res.Stderr)
	}

	// Never overwrites.
	res = testutil.Run(t, testutil.Options{}, "keygen", "--out", path)
	if res.Code != 5 {
		t.Errorf("keygen --out over an existing file: exit %d, want 5", res.Code)
	}
	enrollHelperOneErrorLine(t, res.Stderr)
	if !strings.Contains(res.Stderr, "already exists") {
		t.Errorf("stderr %q", res.Stderr)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Errorf("keygen --out replaced an existing key")
	}
	// Not even through a symbolic link to an existing file.
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if res := testutil.Run(t, testutil.Options{}, "keygen", "--out", link); res.Code != 5 {
		t.Errorf("keygen --out through a symlink: exit %d, want 5", res.Code)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Errorf("keygen --out replaced an existing key through a symlink")
	}
	// A directory that does not exist: environment.
	if res := testutil.Run(t, testutil.Options{}, "keygen", "--out", filepath.Join(dir, "no", "such", "dir.key")); res.Code != 5 {
		t.Errorf("keygen --out in a missing directory: exit %d, want 5", res.Code)
	}

	// The written key is usable.
	db := testutil.NewSQLite(t)
	if res := testutil.Run(t, testutil.Options{}, keysHelperArgs(db, "--key-file", path, "enroll", "--no-confirm", "alice")...); res.Code != 0 {
		t.Errorf("enroll with the new key file: exit %d, %q", res.Code, res.Stderr)
	}
}

// keysHelperNeedles are the forms in which an enrollment's secrets could
// appear at rest.
func keysHelperNeedles(t *testing.T, e testutil.Enrolled) map[string][]byte {
	t.Helper()
	raw, err := models.DecodeSecret(e.Secret)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string][]byte{
		"raw secret":               raw,
		"base32 secret":            []byte(e.Secret),
		"lower-case base32":        []byte(strings.ToLower(e.Secret)),
		"hex secret":               []byte(hex.EncodeToString(raw)),
		"secret's first 10 base32": []byte(e.Secret[:10]),
	}
	for i, c := range e.BackupCodes {
		n["backup code "+strconv.Itoa(i)] = []byte(c)
		n["backup code "+strconv.Itoa(i)+" without dashes"] = []byte(strings.ReplaceAll(c, "-", ""))
	}
	return n
}

func TestKeysNoPlaintextAtRest(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		// Activate and use a backup code, so that more pages and log rows
		// are written.
		if r := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("verify", "alice", testutil.Code(t, e.Secret, enrollHelperT0))...); r.Code != 0 {
			t.Fatalf("verify: exit %d", r.Code)
		}
		if r := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("verify", "alice", e.BackupCodes[0])...); r.Code != 0 {
			t.Fatalf("verify backup: exit %d", r.Code)
		}
		needles := keysHelperNeedles(t, e)

		// Every row of every table, as the test reads it.
		dump := db.Dump(t)
		if !strings.Contains(dump, "alice") {
			t.Fatalf("dump does not contain alice; the check below could not fail")
		}
		for name, n := range needles {
			if strings.Contains(dump, string(n)) || strings.Contains(dump, hex.EncodeToString(n)) {
				t.Errorf("%s found in the database", name)
			}
		}

		if db.Backend != "sqlite" {
			return
		}
		// The files themselves: the database, its WAL and shared memory.
		names := map[string]bool{}
		entries, _ := os.ReadDir(db.Dir)
		for _, e := range entries {
			names[e.Name()] = true
		}
		if !names["app.db-wal"] {
			t.Errorf("no WAL file in %v; the WAL is part of what must hold no plaintext", names)
		}
		if hits := testutil.Contains(t, db.Dir, []byte("alice@example.com")); len(hits) == 0 {
			t.Fatalf("positive control: alice's email is in no file of %s", db.Dir)
		}
		for name, n := range needles {
			if hits := testutil.Contains(t, db.Dir, n); len(hits) > 0 {
				t.Errorf("%s found in %v", name, hits)
			}
		}
	})
}

// A key that opens none of the stored secrets never seals a new one: with
// it, enroll (new user, --force, bulk, interactive) would leave users under
// a key the application does not have. Refused before any secret is shown.
func TestKeysEnrollRefusesForeignKey(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		if res := testutil.Run(t, testutil.Options{}, db.Args("enroll", "--no-confirm", "alice")...); res.Code != 0 {
			t.Fatalf("enroll with the database's key: exit %d, %q", res.Code, res.Stderr)
		}
		foreign := keysHelperKeygen(t)
		file := keysHelperFile(t, foreign, 0o600)
		withFile := func(args ...string) []string {
			return keysHelperArgs(db, append([]string{"--key-file", file}, args...)...)
		}
		cases := []struct {
			name string
			opt  testutil.Options
			args []string
		}{
			{"new user", testutil.Options{}, withFile("enroll", "--no-confirm", "bob")},
			{"force over an existing enrollment", testutil.Options{}, withFile("enroll", "--no-confirm", "--force", "alice")},
			{"bulk from stdin", testutil.Options{Stdin: "bob\ncarol\n"}, withFile("enroll", "--no-confirm", "--from-file", "-")},
			{"key from the environment", testutil.Options{Env: map[string]string{"TOTPADM_KEY": foreign}}, keysHelperArgs(db, "enroll", "--no-confirm", "bob")},
			{"interactive, before the QR code", testutil.Options{Interactive: true, Stdin: "123456\n"}, withFile("enroll", "bob")},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				keysHelperRefused(t, db, c.opt, c.args, "sealed under key", "nothing was changed")
			})
		}
		// The right key still enrolls.
		if res := testutil.Run(t, testutil.Options{}, db.Args("enroll", "--no-confirm", "bob")...); res.Code != 0 {
			t.Fatalf("enroll bob with the database's key: exit %d, %q", res.Code, res.Stderr)
		}
	})
}
