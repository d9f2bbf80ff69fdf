// Package config turns flags, environment and files into a database
// connection, an encryption key and the rules models.Service enforces.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
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
// mysql://user:pass@host:port/db URL (MySQL or MariaDB). It refuses, with
// ErrInvalidDSN, what would otherwise pass for an odd SQLite file name but
// is a connection string: libpq keyword/value strings, misspelt server
// URLs, and user:password@host values such as go-sql-driver's DSNs. Its
// errors never quote a password.
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
		if err := checkUserinfoEncoded(u); err != nil {
			return Target{}, err
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
		if err := checkUserinfoEncoded(u); err != nil {
			return Target{}, err
		}
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return Target{}, fmt.Errorf("%w: MySQL URL %s needs a host and a database: mysql://user@host:3306/dbname", ErrInvalidDSN, RedactURL(spec))
		}
		if err := checkMySQLParams(u.Query()); err != nil {
			return Target{}, err
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
		if looksLikeUserinfoDSN(path) {
			return Target{}, errUserinfoDSN
		}
		return Target{Driver: "sqlite", Path: path}, nil
	case strings.Contains(spec, "://"):
		// The scheme is echoed only when it is one (RFC 3986 syntax): what
		// precedes "://" in "bob:pw@host/db?next=http://…" is no scheme
		// and holds a password.
		if scheme, _, _ := strings.Cut(spec, "://"); uriScheme.MatchString(scheme) {
			return Target{}, fmt.Errorf("%w: unsupported scheme %q (want a SQLite path, sqlite:, postgres:// or mysql://)", ErrInvalidDSN, scheme)
		}
		if looksLikeUserinfoDSN(spec) {
			return Target{}, errUserinfoDSN
		}
		return Target{}, fmt.Errorf("%w: unsupported URL (want a SQLite path, sqlite:, postgres:// or mysql://)", ErrInvalidDSN)
	case looksLikeUserinfoDSN(spec):
		return Target{}, errUserinfoDSN
	}
	return Target{Driver: "sqlite", Path: spec}, nil
}

// errUserinfoDSN refuses a user:password@host value without a scheme, such
// as go-sql-driver's bob:pw@tcp(127.0.0.1:3306)/app. Taken for a SQLite
// file name it would be echoed, password and all, in "no such file"
// errors; so it is refused, and never quoted. Messages pass through
// Redact, which shows the examples below as user:xxxxx@host: still clear.
var errUserinfoDSN = fmt.Errorf("%w: a user:password@host connection string (such as the MySQL driver's user:password@tcp(host:3306)/dbname) is not a SQLite path; write it as a URL: mysql://user:password@host:3306/dbname (MySQL, MariaDB) or postgres://user:password@host:5432/dbname; for a SQLite file of that name, start the path with ./", ErrInvalidDSN)

// uriScheme is the syntax of a URL scheme (RFC 3986 §3.1).
var uriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*$`)

// userinfoDSN matches a value that starts with user:password@ (the user
// name holding no '/', so that no file path in a directory matches), and
// goSQLDriverNet a go-sql-driver address such as @tcp(…) or @unix(…).
var (
	userinfoDSN    = regexp.MustCompile(`^[^/\\:@]*:[^@]*@`)
	goSQLDriverNet = regexp.MustCompile(`(?i)@(tcp|tcp4|tcp6|udp|unix|unixgram|unixpacket)\(`)
)

// looksLikeUserinfoDSN reports a value that is a connection string with
// user info rather than a SQLite path: user:pass@host…, :pass@host…, or
// any go-sql-driver DSN (user@tcp(host)/db). A value written as a path
// (/…, ./…, ../…, C:\… or C:/…) is a path, whatever it holds: the way to
// name a SQLite file that happens to look like a DSN.
func looksLikeUserinfoDSN(spec string) bool {
	if explicitPath(spec) {
		return false
	}
	return userinfoDSN.MatchString(spec) || goSQLDriverNet.MatchString(spec)
}

// explicitPath reports a value that is unmistakably a file path.
func explicitPath(spec string) bool {
	for _, prefix := range []string{"/", "./", "../", `.\`, `..\`, `\`} {
		if strings.HasPrefix(spec, prefix) {
			return true
		}
	}
	// A Windows drive letter: C:\… or C:/…
	return len(spec) >= 3 && spec[1] == ':' && (spec[2] == '\\' || spec[2] == '/') &&
		('a' <= spec[0]|0x20 && spec[0]|0x20 <= 'z')
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

// String is the target for messages, never with a password. A SQLite path
// holds none, unless it is a connection string that ParseTarget could not
// tell from a path (./bob:pw@host/db); RedactValue hides that part.
func (t Target) String() string {
	if t.Driver != "sqlite" {
		return RedactURL(t.URL)
	}
	return RedactValue(t.Path)
}

// RedactValue hides the user-info password a single --db value could hold:
// everything between its first ':' and its last '@' becomes "xxxxx"
// ("bob:pw@tcp(h)/app" → "bob:xxxxx@tcp(h)/app"). It is deliberately
// coarse: a password may itself hold ':', '@', '/' or spaces, and a value
// that did not parse gives no grammar to rely on; the first ':' and the
// last '@' bracket any password the value can hold, so nothing of one can
// survive, while the user, host and database names stay readable. A value
// with no ':' before an '@' is returned unchanged.
func RedactValue(v string) string {
	i := strings.IndexByte(v, ':')
	j := strings.LastIndexByte(v, '@')
	if i < 0 || j <= i+1 {
		return v
	}
	return v[:i+1] + "xxxxx" + v[j:]
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
// URL-escaped form a driver or net/url might echo back, and any password
// left in a message: a password=… parameter (quoted or not) and the
// password of any user:password@ user info, in a URL or not
// ("open bob:pw@tcp(h)/app" → "open bob:xxxxx@tcp(h)/app").
func Redact(msg, secret string) string {
	if secret != "" {
		_, userinfo, _ := strings.Cut(url.UserPassword("u", secret).String(), ":")
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), userinfo} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, "xxxxx")
			}
		}
	}
	msg = passwordParam.ReplaceAllString(msg, "${1}xxxxx")
	return userinfoPassword.ReplaceAllString(msg, "${1}:xxxxx@")
}

// passwordParam matches password=value in a URL query or a libpq
// keyword/value string, where the value may be quoted ('S3cret PW', with
// \' and \\ escapes) and '=' may have blanks around it. An unterminated
// quote runs to the end of the message.
var passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s&'"]+)`)

// userinfoPassword matches user:password@ in free text, whether or not it
// sits in a well-formed URL. The rules keep ordinary messages readable:
//   - the password is one word (no blank), so "at 12:30 alice@example.com"
//     is left alone, and a time (12:30:00) or an e-mail address
//     (alice@example.com) has no ':' … '@' in one word;
//   - it does not start with "//", so in scheme://user:pw@host the match
//     is user:pw@, not scheme:…@, and https://alice@example.com stays;
//   - it runs to the last '@' of the word, as drivers read a password
//     that holds an '@' (bob:p@ss@tcp(h)/app hides "p@ss").
//
// What it cannot tell from a password is a word shaped alike:
// "ACME:alice@example.com" or "id:7@x" become "ACME:xxxxx@example.com"
// and "id:xxxxx@x". Hiding a password matters more.
var userinfoPassword = regexp.MustCompile(`([^\s:/@]*):(?:/?[^\s/]\S*|/)@`)

// mysqlParams are the MySQL URL parameters handed to the driver. The rest
// are refused: some would break what totpadm relies on (parseTime, loc,
// clientFoundRows — a conditional update's row count must mean "matched"
// on every database), and some widen what the server may do to the client
// (allowAllFiles lets it read any local file through LOAD DATA LOCAL).
var mysqlParams = []string{"tls", "timeout", "readTimeout", "writeTimeout", "charset", "collation", "allowCleartextPasswords", "allowNativePasswords"}

// mysqlFixedParams are settings totpadm makes itself; a URL copied from an
// application's configuration may repeat them, with these values only.
var mysqlFixedParams = map[string]string{"parseTime": "true", "loc": "UTC", "clientFoundRows": "true"}

func checkMySQLParams(q url.Values) error {
	for key, values := range q {
		if fixed, ok := mysqlFixedParams[key]; ok {
			if len(values) != 1 || !strings.EqualFold(values[0], fixed) {
				return fmt.Errorf("%w: MySQL URL parameter %s must be %s if given: totpadm relies on it", ErrInvalidDSN, key, fixed)
			}
			continue
		}
		if !slices.Contains(mysqlParams, key) {
			return fmt.Errorf("%w: MySQL URL parameter %q is not supported (supported: %s)", ErrInvalidDSN, key, strings.Join(mysqlParams, ", "))
		}
	}
	return nil
}

// checkUserinfoEncoded refuses a server URL with an @ after its host. That
// is a password holding an unencoded / ? or #: postgres://app:7/kQ9@db/app
// parses as host "app", port 7 and path "/kQ9@db/app", so the password is
// neither found nor redacted, and would be shown as part of a database
// name. The error never quotes the URL.
func checkUserinfoEncoded(u *url.URL) error {
	if strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "@") || strings.Contains(u.Fragment, "@") {
		return fmt.Errorf("%w: the URL has an @ after its host: a user name or password holding / ? # or @ must be percent-encoded (%%2F %%3F %%23 %%40)", ErrInvalidDSN)
	}
	return nil
}
