package commands_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
)

// journalSum is the SHA-256 of the database file.
func journalSum(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// journalMode asks a fresh read-only connection for the file's journal
// mode. The main file stays as it is; a WAL file keeps the -wal and -shm
// files a reader creates.
func journalMode(t *testing.T, path string) string {
	t.Helper()
	db, err := config.Open(context.Background(), config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer config.Close(db)
	mode, err := config.JournalMode(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return mode
}

// journalDB is a test database in the given journal mode, with alice
// enrolled (so status, audit and doctor have rows and a secret to look
// at), and the test's own connection closed: the file is as an
// application that is not running left it, with no -wal or -shm beside it.
func journalDB(t *testing.T, mode string) *testutil.DB {
	t.Helper()
	db := testutil.NewSQLite(t)
	testutil.Enroll(t, db, "alice")
	var got string
	if err := db.Gorm.Raw("PRAGMA journal_mode=" + mode).Scan(&got).Error; err != nil || got != mode {
		t.Fatalf("PRAGMA journal_mode=%s: %q, %v", mode, got, err)
	}
	config.Close(db.Gorm)
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(db.Spec + suffix); err == nil {
			t.Fatalf("%s%s still exists after the test's connection closed", db.Spec, suffix)
		}
	}
	return db
}

// Read-only commands change no byte of the application's database, and no
// command changes its journal mode: opening used to switch every file to
// WAL for good, even for status.
func TestJournalReadOnlyCommandsLeaveTheFileByteIdentical(t *testing.T) {
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			db := journalDB(t, mode)
			before := journalSum(t, db.Spec)
			for _, args := range [][]string{
				{"status"},
				{"status", "alice"},
				{"status", "--summary"},
				{"-o", "json", "status", "--state", "pending"},
				{"audit"},
				{"audit", "alice"},
				{"doctor"},
				{"-o", "json", "doctor"},
				{"config", "show"},
			} {
				res := testutil.Run(t, testutil.Options{}, db.Args(args...)...)
				if res.Code != 0 {
					t.Fatalf("%v: exit %d: %s%s", args, res.Code, res.Stdout, res.Stderr)
				}
				if after := journalSum(t, db.Spec); after != before {
					t.Fatalf("%v changed the database file", args)
				}
				if got := journalMode(t, db.Spec); got != mode {
					t.Fatalf("%v: journal mode %q, want %q", args, got, mode)
				}
			}
		})
	}
}

func TestJournalWriteCommandsKeepTheJournalMode(t *testing.T) {
	db := journalDB(t, "delete")
	for _, args := range [][]string{
		{"enroll", "--no-confirm", "bob"},
		{"unlock", "alice"},
		{"backup-codes", "alice"},
		{"disable", "--yes", "--reason", "test", "bob"},
		{"migrate"},
	} {
		if res := testutil.Run(t, testutil.Options{}, db.Args(args...)...); res.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
		}
		if got := journalMode(t, db.Spec); got != "delete" {
			t.Fatalf("%v switched the journal mode to %q", args, got)
		}
	}
}

// migrate --wal is the one way to switch, and says what it did.
func TestJournalMigrateWAL(t *testing.T) {
	db := journalDB(t, "delete")
	res := testutil.Run(t, testutil.Options{}, db.Args("migrate", "--wal", "--dry-run")...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "PRAGMA journal_mode=WAL;") {
		t.Fatalf("--dry-run: exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}
	if got := journalMode(t, db.Spec); got != "delete" {
		t.Fatalf("--dry-run switched the journal mode to %q", got)
	}
	res = testutil.Run(t, testutil.Options{}, db.Args("migrate", "--wal")...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "switched the journal mode from delete to WAL") {
		t.Fatalf("exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}
	if got := journalMode(t, db.Spec); got != "wal" {
		t.Fatalf("journal mode %q after migrate --wal", got)
	}
	res = testutil.Run(t, testutil.Options{}, db.Args("migrate", "--wal")...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "already WAL") {
		t.Fatalf("again: exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}

	t.Run("postgres", func(t *testing.T) {
		pg := testutil.NewPostgres(t)
		res := testutil.Run(t, testutil.Options{}, pg.Args("migrate", "--wal")...)
		if res.Code != 2 || !strings.Contains(res.Stderr, "SQLite only") {
			t.Fatalf("exit %d, %q", res.Code, res.Stderr)
		}
	})
}

// The demo database is totpadm's own, created in WAL mode.
func TestJournalDemoDatabaseIsWAL(t *testing.T) {
	dir := t.TempDir()
	if res := demoHelperExec(t, dir, "status"); res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	if got := journalMode(t, filepath.Join(dir, "totpadm.db")); got != "wal" {
		t.Fatalf("demo database journal mode %q, want wal", got)
	}
}

// journalReadOnlyDir makes dir impossible to create files in: chmod for
// an ordinary user; for root, whom chmod does not stop, the immutable
// attribute, which it does.
func journalReadOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
	} else {
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Skipf("running as root, where chmod does not stop writes, and chattr +i failed: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	}
	probe := filepath.Join(dir, "probe")
	if f, err := os.Create(probe); err == nil {
		f.Close()
		os.Remove(probe)
		t.Fatalf("%s is still writable", dir)
	}
}

// A database in a directory totpadm cannot write to (a read-only mount, a
// directory without write permission) can still be inspected: SQLite can
// create no -journal, -wal or -shm there, and every command used to fail
// with "no such file or directory". Commands that write refuse up front,
// in one line, exit 5.
func TestJournalReadOnlyDirectory(t *testing.T) {
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			db := journalDB(t, mode)
			before := journalSum(t, db.Spec)
			journalReadOnlyDir(t, db.Dir)

			checks := doctorJSON(t, testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "doctor")...))
			if d := checks["database"].Detail; !checks["database"].OK || !strings.Contains(d, "is read-only") || !strings.Contains(d, "commands that change it refuse to run") {
				t.Errorf("doctor's database check does not say the database is read-only: %+v", checks["database"])
			}
			for _, args := range [][]string{{"status", "alice"}, {"audit", "alice"}, {"doctor"}} {
				res := testutil.Run(t, testutil.Options{}, db.Args(args...)...)
				if res.Code != 0 {
					t.Errorf("%v: exit %d: %s%s", args, res.Code, res.Stdout, res.Stderr)
				}
				if args[0] == "status" && !strings.Contains(res.Stdout, "pending") {
					t.Errorf("status does not show alice's pending enrollment: %q", res.Stdout)
				}
			}
			for _, args := range [][]string{
				{"enroll", "--no-confirm", "bob"},
				{"unlock", "alice"},
				{"disable", "--yes", "--reason", "test", "alice"},
				{"verify", "alice", "123456"},
				{"verify", "--diagnose", "alice", "123456"},
				{"migrate"},
			} {
				res := testutil.Run(t, testutil.Options{}, db.Args(args...)...)
				if res.Code != 5 {
					t.Errorf("%v: exit %d, want 5: %q", args, res.Code, res.Stderr)
				}
				lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "totpadm: ") || !strings.Contains(lines[0], "read-only") {
					t.Errorf("%v: want one line saying the database is read-only, got %q", args, res.Stderr)
				}
			}
			if after := journalSum(t, db.Spec); after != before {
				t.Error("the database file changed")
			}
		})
	}
}

// The same on a real read-only filesystem: the test directory bind-mounted
// read-only in a mount namespace of its own (root, util-linux's unshare),
// which disappears with the process.
func TestJournalReadOnlyMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	bin := testutil.Binary(t)
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			db := journalDB(t, mode)
			before := journalSum(t, db.Spec)
			script := `mount --bind -o ro "$DIR" "$DIR" || exit 99
touch "$DIR/probe" 2>/dev/null && exit 98
"$BIN" --db "$DB" --key-file "$KEY" status alice; echo "status=$?"
"$BIN" --db "$DB" --key-file "$KEY" unlock alice; echo "unlock=$?"`
			cmd := exec.Command("unshare", "-m", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "DIR="+db.Dir, "BIN="+bin, "DB="+db.Spec, "KEY="+db.KeyFile)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code == 99 || code == 98 || (err != nil && !strings.Contains(string(out), "status=")) {
				t.Skipf("cannot bind-mount read-only here: %v: %s", err, out)
			}
			text := string(out)
			if !strings.Contains(text, "status=0") || !strings.Contains(text, "pending") {
				t.Errorf("status on a read-only mount:\n%s", text)
			}
			if !strings.Contains(text, "unlock=5") || !strings.Contains(text, "read-only file system") {
				t.Errorf("unlock on a read-only mount:\n%s", text)
			}
			if after := journalSum(t, db.Spec); after != before {
				t.Error("the database file changed")
			}
		})
	}
}
