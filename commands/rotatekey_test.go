package commands_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

func rotateNewKeyFile(t *testing.T, dir, name string) (string, *models.Key) {
	t.Helper()
	text, err := models.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := keyfile.Write(path, text); err != nil {
		t.Fatal(err)
	}
	key, err := keyfile.Read(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return path, key
}

func rotateService(t *testing.T, db *testutil.DB, key *models.Key, old ...*models.Key) *models.Service {
	t.Helper()
	cfg := models.DefaultConfig()
	cfg.Key, cfg.OldKeys, cfg.Actor = key, old, "tester"
	svc, err := models.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestRotateKey(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		var enrolled []testutil.Enrolled
		for _, login := range testutil.Users {
			enrolled = append(enrolled, testutil.Enroll(t, db, login))
		}
		oldKey, err := keyfile.Read(db.KeyFile, "")
		if err != nil {
			t.Fatal(err)
		}
		newPath, newKey := rotateNewKeyFile(t, db.Dir, "new.key")

		// Interrupt a rotation after its first batch of one secret.
		ctx, cancel := context.WithCancel(context.Background())
		res, err := rotateService(t, db, oldKey).RotateKey(ctx, db.Gorm, newKey, 1, func(done, total int) { cancel() })
		if !errors.Is(err, context.Canceled) || res.Rotated != 1 {
			t.Fatalf("interrupted rotation: %+v, %v", res, err)
		}
		// Mid-rotation, an application holding both keys still verifies
		// every user, whichever key their row is under.
		both := rotateService(t, db, newKey, oldKey)
		for _, e := range enrolled {
			user, err := both.LookupUser(context.Background(), db.Gorm, models.UserRef{Value: e.Login})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := both.Verify(context.Background(), db.Gorm, user, testutil.Code(t, e.Secret, time.Now())); err != nil {
				t.Fatalf("verify %s mid-rotation with both keys: %v", e.Login, err)
			}
		}

		// Running it again resumes.
		r := testutil.Run(t, testutil.Options{}, db.Args("rotate-key", "--new-key-file", newPath, "--batch-size", "1")...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "re-encrypted 2 secrets") || !strings.Contains(r.Stdout, "(1 already were)") {
			t.Fatalf("resume: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
		if n := db.Count(t, "totp_credentials", "key_id = ?", newKey.ID()); n != 3 {
			t.Fatalf("%d secrets under the new key, want 3", n)
		}
		if n := db.Count(t, "totp_audit_log", "action = ?", "rotate-key"); n != 3 {
			t.Fatalf("%d rotate-key audit rows, want one per batch (3)", n)
		}

		// The old key opens nothing any more; the new one works.
		later := time.Now().Add(time.Minute)
		code := testutil.Code(t, enrolled[0].Secret, later)
		at := testutil.Options{Now: func() time.Time { return later }}
		before := db.Dump(t)
		if r := testutil.Run(t, at, db.Args("verify", "alice", code)...); r.Code != 5 || !strings.Contains(r.Stderr, "cannot decrypt") {
			t.Fatalf("old key after rotation: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if db.Dump(t) != before {
			t.Fatal("a refused old key changed the database")
		}
		args := append([]string{"--db", db.Spec, "--key-file", newPath}, "verify", "alice", code)
		if r := testutil.Run(t, at, args...); r.Code != 0 {
			t.Fatalf("new key after rotation: exit %d, stderr %q", r.Code, r.Stderr)
		}

		// A secret under a third key stops a rotation before any change.
		_, third := rotateNewKeyFile(t, db.Dir, "third.key")
		db.Exec(t, "UPDATE totp_credentials SET key_id = ? WHERE user_id = ?", third.ID(), enrolled[2].ID)
		before = db.Dump(t)
		rotateNewKeyFile(t, db.Dir, "fourth.key")
		r = testutil.Run(t, testutil.Options{}, "--db", db.Spec, "--key-file", newPath, "rotate-key", "--new-key-file", filepath.Join(db.Dir, "fourth.key"))
		if r.Code != 5 || !strings.Contains(r.Stderr, third.ID()) || !strings.Contains(r.Stderr, "nothing changed") {
			t.Fatalf("foreign key id: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if db.Dump(t) != before {
			t.Fatal("a refused rotation changed the database")
		}

		// Usage errors.
		for _, a := range [][]string{{"rotate-key"}, {"rotate-key", "--new-key-file", newPath, "--batch-size", "0"}} {
			if r := testutil.Run(t, testutil.Options{}, append([]string{"--db", db.Spec, "--key-file", newPath}, a...)...); r.Code != 2 {
				t.Errorf("%v: exit %d, want 2", a, r.Code)
			}
		}
		if r := testutil.Run(t, testutil.Options{}, "--db", db.Spec, "--key-file", newPath, "rotate-key", "--new-key-file", newPath); r.Code != 2 {
			t.Errorf("same key: exit %d, want 2", r.Code)
		}
	})
}
