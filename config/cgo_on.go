//go:build cgo

package config

// SQLiteSupported: mattn/go-sqlite3 is C, compiled in only when cgo is on.
const SQLiteSupported = true
