package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// ErrReadOnly: a command that writes was pointed at a SQLite database it
// cannot write to.
var ErrReadOnly = errors.New("read-only")

type readOnlyKey struct{}

// ReadOnlyContext marks ctx as a read-only command's: Open then treats it
// as if OpenOptions.ReadOnly were set. It lets a command declare that it
// only reads where the OpenOptions are built by shared code.
func ReadOnlyContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, readOnlyKey{}, true)
}

// writableContext undoes ReadOnlyContext for what totpadm writes on its
// own account, such as the demo database a read-only command creates.
func writableContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, readOnlyKey{}, false)
}

func readOnly(ctx context.Context, opt OpenOptions) bool {
	marked, _ := ctx.Value(readOnlyKey{}).(bool)
	return (opt.ReadOnly || marked) && !opt.Create
}

// openSQLite opens the file as the application left it: it never sets
// journal_mode (WAL is a persistent property of the file, and switching
// it is `migrate --wal`'s business), and every pragma it does set —
// busy_timeout, synchronous, foreign_keys, the transaction lock — lasts
// only as long as the connection.
func openSQLite(ctx context.Context, path string, opt OpenOptions) (*gorm.DB, error) {
	if !opt.Create {
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("no such file (totpadm never creates a database at a --db path; check the path)")
		}
		if err != nil {
			return nil, err
		}
		if info.IsDir() {
			return nil, errors.New("is a directory")
		}
	}
	busy := opt.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	q := url.Values{"_busy_timeout": {strconv.FormatInt(busy.Milliseconds(), 10)}}
	if !readOnly(ctx, opt) {
		// mode=rw stops SQLite from creating a file we were not asked to
		// create. _txlock=immediate takes the write lock at BEGIN, so a
		// read-then-write transaction waits on the busy timeout instead of
		// failing with "database is locked" when it upgrades.
		q.Set("mode", "rw")
		if opt.Create {
			q.Set("mode", "rwc")
		}
		q.Set("_txlock", "immediate")
		q.Set("_foreign_keys", "1")
		// In rollback-journal mode only synchronous=FULL survives a power
		// cut without risk to the file; WAL mode is safe with NORMAL, which
		// saves an fsync per commit (https://www.sqlite.org/pragma.html#pragma_synchronous).
		// FULL is the DSN's, so a connection database/sql opens anew is
		// safe; NORMAL is set once the mode is known.
		q.Set("_synchronous", "FULL")
		db, err := connect(ctx, sqlite.Open(sqliteDSN(path, q)), 1)
		if err != nil {
			return nil, err
		}
		if mode, err := JournalMode(ctx, db); err == nil && mode == "wal" {
			if err := db.WithContext(ctx).Exec("PRAGMA synchronous=NORMAL").Error; err != nil {
				Close(db)
				return nil, err
			}
		}
		return db, nil
	}

	// Read-only: SQLite itself refuses every write, so the file stays
	// byte-identical whatever the command does. A deferred BEGIN, since an
	// immediate one asks for the write lock a read-only connection cannot
	// have.
	q.Set("mode", "ro")
	q.Set("_txlock", "deferred")
	db, err := openProbed(ctx, path, q)
	if err == nil || !strings.Contains(err.Error(), "unable to open database file") || dirWritable(path) == nil {
		return db, err
	}
	// A WAL database in a directory that cannot be written to (a read-only
	// mount, a directory without write permission): SQLite cannot create
	// the -shm file a WAL reader coordinates through. immutable=1 reads
	// the file without it; it also stops SQLite from seeing another
	// process's changes, which nobody can make in such a directory anyway.
	q.Set("immutable", "1")
	db, err = openProbed(ctx, path, q)
	if err == nil {
		if sqlDB, err := db.DB(); err == nil {
			unlocked.Store(sqlDB, true)
		}
	}
	return db, err
}

// unlocked holds the pools opened with immutable=1, until Close.
var unlocked sync.Map // *sql.DB → true

// Unlocked reports a SQLite database read with immutable=1: without
// locks, and with SQLite reporting its journal mode as "delete" whatever
// the file's is.
func Unlocked(db *gorm.DB) bool {
	sqlDB, err := db.DB()
	if err != nil {
		return false
	}
	_, ok := unlocked.Load(sqlDB)
	return ok
}

// CheckWritable returns ErrReadOnly, with the reason, for a SQLite
// database that a command writing to it would be refused; nil for any
// other.
func CheckWritable(t Target) error {
	if t.Driver != "sqlite" {
		return nil
	}
	return checkWritableHint(t.Path, "commands that change it refuse to run")
}

// openProbed opens and reads the schema once: SQLite opens the -shm and
// -wal files only on the first read, so that is where a read-only open
// fails.
func openProbed(ctx context.Context, path string, q url.Values) (*gorm.DB, error) {
	db, err := connect(ctx, sqlite.Open(sqliteDSN(path, q)), 1)
	if err != nil {
		return nil, err
	}
	var n int64
	if err := db.WithContext(ctx).Raw("SELECT count(*) FROM sqlite_master").Scan(&n).Error; err != nil {
		Close(db)
		return nil, err
	}
	return db, nil
}

// sqliteDSN builds a file: URI; the path is escaped where SQLite's URI
// parser would otherwise cut it.
func sqliteDSN(path string, q url.Values) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + q.Encode()
}

// checkWritable refuses, before anything is opened, a database a command
// could not change: the file is not writable, or its directory is not,
// where SQLite creates the journal of every write. Failing halfway
// through would be worse, and SQLite's own words ("unable to open
// database file", about a journal) do not say what is wrong.
func checkWritable(path string) error {
	return checkWritableHint(path, "this command changes it; status, audit and doctor can still read it")
}

func checkWritableHint(path, hint string) error {
	switch err := fileWritable(path); {
	case errors.Is(err, fs.ErrNotExist):
		return nil // Open says so
	case err != nil:
		return fmt.Errorf("%w: %s is %w (%s): %s", ErrDatabase, path, ErrReadOnly, reason(err), hint)
	}
	if err := dirWritable(path); err != nil {
		dir := filepath.Dir(path)
		if dir == "." {
			dir = "the current directory"
		}
		return fmt.Errorf("%w: %s is %w: SQLite cannot create its journal in %s (%s): %s", ErrDatabase, path, ErrReadOnly, dir, reason(err), hint)
	}
	return nil
}

func dirWritable(path string) error { return fileWritable(filepath.Dir(path)) }

// reason is the system's own words, without the path already named.
func reason(err error) string {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	return err.Error()
}

// JournalMode returns the SQLite database's journal mode ("delete",
// "wal", …). Asking changes nothing.
func JournalMode(ctx context.Context, db *gorm.DB) (string, error) {
	var mode string
	if err := db.WithContext(ctx).Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		return "", fmt.Errorf("read the journal mode: %w", err)
	}
	return mode, nil
}

// SwitchToWAL puts the SQLite database in WAL mode, a lasting property of
// the file, and returns the mode it had.
func SwitchToWAL(ctx context.Context, db *gorm.DB) (string, error) {
	before, err := JournalMode(ctx, db)
	if err != nil {
		return "", err
	}
	var after string
	if err := db.WithContext(ctx).Raw("PRAGMA journal_mode=WAL").Scan(&after).Error; err != nil {
		return before, fmt.Errorf("switch to WAL: %w", err)
	}
	if !strings.EqualFold(after, "wal") {
		return before, fmt.Errorf("switch to WAL: SQLite kept journal mode %q", after)
	}
	return before, nil
}
