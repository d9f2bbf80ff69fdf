//go:build !cgo

package config

// SQLiteSupported: mattn/go-sqlite3 is C, compiled in only when cgo is on.
// Without it the driver is a stub whose error names go-sqlite3, not
// totpadm's way out, so Open and EnsureDemo refuse first.
const SQLiteSupported = false
