package models

import (
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// dialect holds the few places where SQLite, PostgreSQL and MySQL differ.
// Everything else is written once, in portable SQL.
type dialect struct {
	name   string
	quoteC byte // identifier quote character
}

func dialectOf(db *gorm.DB) (dialect, error) {
	switch name := db.Dialector.Name(); name {
	case "sqlite":
		return dialect{name: name, quoteC: '"'}, nil
	case "postgres":
		return dialect{name: name, quoteC: '"'}, nil
	case "mysql":
		return dialect{name: name, quoteC: '`'}, nil
	default:
		return dialect{}, fmt.Errorf("unsupported database %q (want sqlite, postgres or mysql)", name)
	}
}

// quote quotes a possibly schema-qualified identifier ("app.accounts"),
// doubling any quote character inside so that no configured name can
// break out of the identifier.
func (d dialect) quote(name string) string {
	parts := strings.Split(name, ".")
	q := string(d.quoteC)
	for i, p := range parts {
		parts[i] = q + strings.ReplaceAll(p, q, q+q) + q
	}
	return strings.Join(parts, ".")
}

// asText casts a user id expression (integer, UUID or text) to the text
// form totpadm stores in its own tables.
func (d dialect) asText(expr string) string {
	if d.name == "mysql" {
		return "CAST(" + expr + " AS CHAR)"
	}
	return "CAST(" + expr + " AS TEXT)"
}

// forUpdate locks the rows read in a transaction where the database can;
// SQLite needs no clause because its write transactions (BEGIN IMMEDIATE)
// are already exclusive.
func (d dialect) forUpdate() string {
	if d.name == "sqlite" {
		return ""
	}
	return " FOR UPDATE"
}

type columnTypes struct{ text, key, blob, ts, bigint, serial string }

func (d dialect) types() columnTypes {
	switch d.name {
	case "postgres":
		return columnTypes{text: "TEXT", key: "TEXT", blob: "BYTEA", ts: "TIMESTAMPTZ", bigint: "BIGINT", serial: "BIGSERIAL PRIMARY KEY"}
	case "mysql":
		return columnTypes{text: "TEXT", key: "VARCHAR(191)", blob: "VARBINARY(255)", ts: "DATETIME(6)", bigint: "BIGINT", serial: "BIGINT AUTO_INCREMENT PRIMARY KEY"}
	default:
		return columnTypes{text: "TEXT", key: "TEXT", blob: "BLOB", ts: "DATETIME", bigint: "INTEGER", serial: "INTEGER PRIMARY KEY AUTOINCREMENT"}
	}
}

// rfc3339 formats a timestamp column as 2006-01-02T15:04:05Z text in SQL,
// so a million rows need no time parsing in Go.
func (d dialect) rfc3339(expr string) string {
	switch d.name {
	case "postgres":
		return "to_char(" + expr + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`
	case "mysql":
		return "DATE_FORMAT(" + expr + ", '%Y-%m-%dT%H:%i:%sZ')"
	default:
		return "strftime('%Y-%m-%dT%H:%M:%SZ', " + expr + ")"
	}
}

// concat joins text expressions.
func (d dialect) concat(parts ...string) string {
	if d.name == "mysql" {
		return "CONCAT(" + strings.Join(parts, ", ") + ")"
	}
	return strings.Join(parts, " || ")
}
