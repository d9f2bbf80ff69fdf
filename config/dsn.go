// Package config turns flags, environment and files into a database
// connection, an encryption key and the rules models.Service enforces.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Target is a parsed --db value.
type Target struct {
	Driver string // "sqlite", "postgres" or "mysql"
	Path   string // SQLite file path
	URL    string // PostgreSQL or MySQL URL, as given
}

// ErrInvalidDSN marks a --db value that cannot be parsed.
var ErrInvalidDSN = errors.New("invalid --db")

// ParseTarget accepts a SQLite path, a sqlite: URL (sqlite:rel.db,
// sqlite:///abs.db), a postgres:// / postgresql:// URL, or a
// mysql://user:pass@host:port/db URL (MySQL or MariaDB).
func ParseTarget(spec string) (Target, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return Target{}, fmt.Errorf("%w: empty", ErrInvalidDSN)
	}
	lower := strings.ToLower(spec)
	switch {
	case isKeywordDSN(lower):
		// Never echoed: it may well hold password=….
		return Target{}, fmt.Errorf("%w: keyword/value connection strings (host=… dbname=…) are not supported; write it as a URL: postgres://user@host:5432/dbname", ErrInvalidDSN)
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		u, err := url.Parse(spec)
		if err != nil {
			// url.Parse errors quote the input, password included.
			return Target{}, fmt.Errorf("%w: not a valid PostgreSQL URL", ErrInvalidDSN)
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return Target{}, fmt.Errorf("%w: PostgreSQL URL %s has no host", ErrInvalidDSN, RedactURL(spec))
		}
		return Target{Driver: "postgres", URL: spec}, nil
	case strings.HasPrefix(lower, "mysql://"), strings.HasPrefix(lower, "mariadb://"):
		u, err := url.Parse(spec)
		if err != nil {
			return Target{}, fmt.Errorf("%w: not a valid MySQL URL", ErrInvalidDSN)
		}
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return Target{}, fmt.Errorf("%w: MySQL URL %s needs a host and a database: mysql://user@host:3306/dbname", ErrInvalidDSN, RedactURL(spec))
		}
		return Target{Driver: "mysql", URL: spec}, nil
	case hasServerScheme(lower):
		// "postgres:/…" or "mysql:user:pw@…": a mistyped URL, not a file
		// name; never echoed, as it may carry a password.
		scheme, _, _ := strings.Cut(lower, ":")
		return Target{}, fmt.Errorf("%w: malformed %s URL: write it as %s://user@host:port/dbname", ErrInvalidDSN, scheme, scheme)
	case strings.HasPrefix(lower, "sqlite:"):
		path := spec[len("sqlite:"):]
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return Target{}, fmt.Errorf("%w: sqlite: URL has no path", ErrInvalidDSN)
		}
		return Target{Driver: "sqlite", Path: path}, nil
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		return Target{}, fmt.Errorf("%w: unsupported scheme %q (want a SQLite path, sqlite:, postgres:// or mysql://)", ErrInvalidDSN, scheme)
	}
	return Target{Driver: "sqlite", Path: spec}, nil
}

// hasServerScheme reports a value that starts like a server URL.
func hasServerScheme(lower string) bool {
	for _, scheme := range []string{"postgres:", "postgresql:", "mysql:", "mariadb:"} {
		if strings.HasPrefix(lower, scheme) {
			return true
		}
	}
	return false
}

// isKeywordDSN recognises a libpq "host=… user=… password=…" string, which
// would otherwise be taken for an odd SQLite file name.
func isKeywordDSN(lower string) bool {
	for _, kw := range []string{"host=", "dbname=", "user=", "password=", "port=", "sslmode="} {
		if strings.HasPrefix(lower, kw) || strings.Contains(lower, " "+kw) {
			return true
		}
	}
	return false
}

// String is the target for messages, never with a password.
func (t Target) String() string {
	if t.Driver != "sqlite" {
		return RedactURL(t.URL)
	}
	return t.Path
}

// Password is the database password in the target, if any, so that it can
// be scrubbed from error text produced by drivers.
func (t Target) Password() string {
	if t.Driver == "sqlite" {
		return ""
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// RedactURL replaces the password of a URL, in the user info or in a
// password= parameter, with "xxxxx".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Redact removes secret from msg wherever it appears, including in every
// URL-escaped form a driver or net/url might echo back, and any
// password=… left in a message.
func Redact(msg, secret string) string {
	if secret != "" {
		_, userinfo, _ := strings.Cut(url.UserPassword("u", secret).String(), ":")
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), userinfo} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, "xxxxx")
			}
		}
	}
	return passwordParam.ReplaceAllString(msg, "${1}xxxxx")
}

// passwordParam matches password=value in a URL query or keyword string.
var passwordParam = regexp.MustCompile(`(?i)(password=)[^\s&'"]+`)
