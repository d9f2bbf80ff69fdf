package config

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

// Demo database defaults (SPEC §4).
const (
	DemoDBPath  = "totpadm.db"
	DemoKeyFile = "totpadm.key"
)

// DemoUsers are the users of the demo database's users table.
var DemoUsers = []struct{ Login, Email string }{
	{"alice", "alice@example.com"},
	{"bob", "bob@example.com"},
	{"carol", "carol@example.com"},
}

// EnsureDemo creates the demo database at dbPath, with its key file at
// keyPath, unless the database exists. It reports whether it created
// anything. The database is built under a temporary name and linked into
// place, so a concurrent run, or one killed halfway, never leaves a
// half-built database behind.
func EnsureDemo(ctx context.Context, dbPath, keyPath string, tables models.Tables) (bool, error) {
	// Before anything is created: a cgo-less binary would otherwise leave
	// a key file behind and then fail on the database.
	if !SQLiteSupported {
		return false, noSQLite("without --db totpadm uses a SQLite demo database")
	}
	if _, err := os.Stat(dbPath); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%w: demo database %s: %w", ErrDatabase, dbPath, err)
	}
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		key, err := models.GenerateKey(rand.Reader)
		if err != nil {
			return false, err
		}
		if err := keyfile.Write(keyPath, key); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, err
		}
	}

	tmp, err := os.CreateTemp(filepath.Dir(dbPath), filepath.Base(dbPath)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("%w: create demo database: %w", ErrDatabase, err)
	}
	tmpPath := tmp.Name()
	tmp.Close() // CreateTemp makes it 0600, which the database keeps.
	defer os.Remove(tmpPath)

	if err := buildDemo(ctx, tmpPath, tables); err != nil {
		return false, fmt.Errorf("%w: create demo database: %w", ErrDatabase, err)
	}
	if err := os.Link(tmpPath, dbPath); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil // another process won the race; use its database
		}
		return false, fmt.Errorf("%w: create demo database: %w", ErrDatabase, err)
	}
	return true, nil
}

func buildDemo(ctx context.Context, path string, tables models.Tables) error {
	ctx = writableContext(ctx)
	db, err := Open(ctx, Target{Driver: "sqlite", Path: path}, OpenOptions{})
	if err != nil {
		return err
	}
	defer Close(db)
	// The demo database is totpadm's own, so it may have the journal mode
	// that suits concurrent use (readers do not block the writer), which
	// totpadm never imposes on an application's database.
	if _, err := SwitchToWAL(ctx, db); err != nil {
		return err
	}
	err = db.WithContext(ctx).Exec(`CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  email TEXT
)`).Error
	if err != nil {
		return err
	}
	for _, u := range DemoUsers {
		if err := db.WithContext(ctx).Exec("INSERT INTO users (username, email) VALUES (?, ?)", u.Login, u.Email).Error; err != nil {
			return err
		}
	}
	if _, err := models.Migrate(ctx, db, tables, false); err != nil {
		return err
	}
	// Fold the WAL back into the main file before it is linked into place.
	return db.WithContext(ctx).Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error
}
