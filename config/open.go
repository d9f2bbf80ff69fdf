package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrDatabase marks a failure to reach or open the database.
var ErrDatabase = errors.New("database")

// ErrNoSQLite: this binary was built without cgo, so it has no SQLite
// driver (go-sqlite3 is C).
var ErrNoSQLite = errors.New("SQLite support is not compiled into this totpadm")

// noSQLite says why SQLite was wanted and how to get it. It wraps
// ErrDatabase: an environment failure, exit 5.
func noSQLite(why string) error {
	return fmt.Errorf("%w: %s, but %w (it was built with CGO_ENABLED=0): rebuild it with cgo and a C compiler "+
		"(Debian/Ubuntu: apt-get install gcc), or use --db postgres://… or --db mysql://…", ErrDatabase, why, ErrNoSQLite)
}

// DefaultBusyTimeout is how long a SQLite writer waits for another one.
const DefaultBusyTimeout = 10 * time.Second

// OpenOptions tune the connection.
type OpenOptions struct {
	BusyTimeout time.Duration // SQLite; default DefaultBusyTimeout
	// Create allows a missing SQLite file to be created (demo database
	// only): a mistyped --db must fail, not yield an empty database.
	Create bool
	// ReadOnly: the caller only reads. SQLite is then opened read-only,
	// so that not a byte of the file can change, and a database on a
	// read-only filesystem or in a directory totpadm cannot write to can
	// still be inspected. Without it, Open refuses a SQLite database it
	// cannot write (ErrReadOnly) rather than fail halfway through a
	// change. See also ReadOnlyContext.
	ReadOnly bool
}

// Open connects to the target. Errors never contain the password: the
// whole message is redacted, not only the driver's part, since callers
// such as doctor -o json print it without further redaction.
func Open(ctx context.Context, t Target, opt OpenOptions) (*gorm.DB, error) {
	if t.Driver == "sqlite" && !SQLiteSupported {
		return nil, noSQLite(t.Path + " is a SQLite database")
	}
	if t.Driver == "sqlite" && !opt.Create && !readOnly(ctx, opt) {
		if err := checkWritable(t.Path); err != nil {
			return nil, err
		}
	}
	db, err := open(ctx, t, opt)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrDatabase, Redact(fmt.Sprintf("open %s: %s", t, err), t.Password()))
	}
	return db, nil
}

func open(ctx context.Context, t Target, opt OpenOptions) (*gorm.DB, error) {
	var dialector gorm.Dialector
	switch t.Driver {
	case "sqlite":
		return openSQLite(ctx, t.Path, opt)
	case "postgres":
		dialector = postgres.New(postgres.Config{DSN: postgresDSN(t.URL)})
	case "mysql":
		dsn, err := mysqlDSN(t.URL)
		if err != nil {
			return nil, err
		}
		dialector = mysql.Open(dsn)
	default:
		return nil, fmt.Errorf("unsupported driver %q", t.Driver)
	}
	return connect(ctx, dialector, 0)
}

// connect opens a pool through dialector and pings it once with ctx;
// maxConns 0 leaves the pool unbounded.
func connect(ctx context.Context, dialector gorm.Dialector, maxConns int) (*gorm.DB, error) {
	db, err := gorm.Open(dialector, &gorm.Config{
		// GORM's logger prints SQL with its arguments: ciphertexts, hashes,
		// and on failure whatever the statement held. Nothing may leak.
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		// Pinged below, with the caller's context.
		DisableAutomaticPing: true,
	})
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		sqlDB.SetMaxOpenConns(maxConns)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return db, nil
}

// postgresDSN adds a connect timeout unless one is given, so an unreachable
// server fails in seconds rather than hanging a support session.
func postgresDSN(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", "5")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// mysqlDSN turns mysql://user:pass@host:port/db?params into the
// go-sql-driver form. Times are read and written as UTC; clientFoundRows
// makes UPDATE report matched rows, as SQLite and PostgreSQL do, so a
// conditional update's row count means the same on every database.
func mysqlDSN(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a valid MySQL URL")
	}
	cfg := mysqldriver.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.Trim(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.ClientFoundRows = true
	cfg.Timeout = 5 * time.Second
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	if err := checkMySQLParams(u.Query()); err != nil {
		return "", err
	}
	for k, v := range u.Query() {
		if _, fixed := mysqlFixedParams[k]; fixed {
			continue // set above
		}
		if len(v) > 0 {
			cfg.Params[k] = v[0]
		}
	}
	return cfg.FormatDSN(), nil
}

// Close releases the connection pool.
func Close(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		unlocked.Delete(sqlDB)
		sqlDB.Close()
	}
}
