package config_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/config"
)

// sqliteReadOnlyDir makes dir impossible to create files in, also for
// root (chattr +i), and undoes it when the test ends.
func sqliteReadOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("running as root, where chmod does not stop writes, and chattr +i failed: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
}

func sqliteFile(t *testing.T, journal string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	ctx := context.Background()
	db, err := config.Open(ctx, config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"PRAGMA journal_mode=" + journal, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	config.Close(db)
	return path
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	for _, journal := range []string{"delete", "wal"} {
		t.Run(journal, func(t *testing.T) {
			path := sqliteFile(t, journal)
			target := config.Target{Driver: "sqlite", Path: path}

			// Read-only even where the file could be written: SQLite
			// itself refuses the write.
			db, err := config.Open(ctx, target, config.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Exec("INSERT INTO t VALUES (2)").Error; err == nil || !strings.Contains(err.Error(), "readonly") {
				t.Errorf("write through a read-only connection: %v", err)
			}
			config.Close(db)
			for _, suffix := range []string{"-wal", "-shm"} {
				os.Remove(path + suffix) // what a WAL reader leaves; the directory below must have none
			}

			sqliteReadOnlyDir(t, filepath.Dir(path))
			for _, ctx := range []context.Context{ctx, config.ReadOnlyContext(ctx)} {
				opt := config.OpenOptions{ReadOnly: ctx == context.Background()}
				db, err := config.Open(ctx, target, opt)
				if err != nil {
					t.Fatalf("read-only open in a read-only directory: %v", err)
				}
				var n int
				if err := db.Raw("SELECT count(*) FROM t").Scan(&n).Error; err != nil || n != 1 {
					t.Errorf("read: %d, %v", n, err)
				}
				config.Close(db)
			}

			_, err = config.Open(ctx, target, config.OpenOptions{})
			if !errors.Is(err, config.ErrReadOnly) || !errors.Is(err, config.ErrDatabase) {
				t.Fatalf("writable open in a read-only directory: %v, want ErrReadOnly", err)
			}
			if !strings.Contains(err.Error(), "status, audit and doctor can still read it") {
				t.Errorf("error does not say what still works: %v", err)
			}
		})
	}
}

// Opening never switches the journal mode: it is a lasting property of
// the application's file.
func TestOpenKeepsJournalMode(t *testing.T) {
	ctx := context.Background()
	path := sqliteFile(t, "delete")
	db, err := config.Open(ctx, config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer config.Close(db)
	if mode, err := config.JournalMode(ctx, db); err != nil || mode != "delete" {
		t.Fatalf("journal mode %q, %v; want delete", mode, err)
	}
	if before, err := config.SwitchToWAL(ctx, db); err != nil || before != "delete" {
		t.Fatalf("SwitchToWAL: %q, %v", before, err)
	}
	if mode, _ := config.JournalMode(ctx, db); mode != "wal" {
		t.Fatalf("journal mode %q after SwitchToWAL", mode)
	}
}
