package commands

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

// keyUse says whether a command needs the encryption key.
type keyUse int

const (
	keyNone     keyUse = iota // never reads or writes a secret
	keyOptional               // loads the key when one is configured
	keyRequired               // fails early without one
	keySeal                   // keyRequired, and refuses a key that opens none of the stored secrets
)

// session is an open database and the service bound to the run's flags.
type session struct {
	db     *gorm.DB
	svc    *models.Service
	format string
	tables models.Tables
}

func (s *session) close() { config.Close(s.db) }

// settings are the global flags, validated, before anything is opened.
type settings struct {
	format string
	tables models.Tables
	svc    models.Config
}

// stringFlag is c.String(name), except that an environment variable set
// to "" (TOTPADM_OUTPUT= totpadm …) counts as unset and yields the default.
// An empty value given on the command line stays empty, to be refused.
func (r *runner) stringFlag(c *cli.Context, name, def string) string {
	v := c.String(name)
	if v != "" {
		return v
	}
	envName := "TOTPADM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if envValue, inEnv := lookupEnv(envName); inEnv && envValue == "" && !r.typed(name) {
		return def
	}
	return v
}

// lookupEnv reads the process environment, where urfave/cli itself reads
// every flag's variable.
func lookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

// typed reports whether --name (or -name) is on the command line.
func (r *runner) typed(name string) bool {
	for _, a := range r.args {
		if a == "--"+name || a == "-"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

func (r *runner) settings(c *cli.Context) (settings, error) {
	format, err := parseFormat(r.stringFlag(c, flagOutput, formatTable))
	if err != nil {
		return settings{}, err
	}
	tables, err := models.TablesWithPrefix(r.stringFlag(c, flagTablePrefix, models.DefaultTablePrefix))
	if err != nil {
		return settings{}, usageError{err}
	}
	users := models.UsersTable{
		Table:       r.stringFlag(c, flagUsersTable, models.DefaultUsersTable.Table),
		IDColumn:    r.stringFlag(c, flagIDColumn, models.DefaultUsersTable.IDColumn),
		LoginColumn: r.stringFlag(c, flagLoginColumn, models.DefaultUsersTable.LoginColumn),
		EmailColumn: c.String(flagEmailColumn),
	}
	if err := users.Validate(); err != nil {
		return settings{}, usageError{err}
	}
	actor := c.String(flagActor)
	if actor == "" {
		actor = r.defaultActor()
	}
	if c.Int(flagMaxFailures) < 1 {
		return settings{}, usagef("--%s must be at least 1", flagMaxFailures)
	}
	if c.Duration(flagLockout) <= 0 {
		return settings{}, usagef("--%s must be positive", flagLockout)
	}
	if s := c.Int(flagSkew); s < 0 || s > 10 {
		return settings{}, usagef("--%s must be 0 to 10 time steps", flagSkew)
	}
	if n := c.Int(flagBackupCount); n < 1 || n > 100 {
		return settings{}, usagef("--%s must be 1 to 100", flagBackupCount)
	}
	issuer := r.stringFlag(c, flagIssuer, "totpadm")
	if strings.TrimSpace(issuer) == "" {
		// Apps show the issuer to tell accounts apart, and without one a
		// label like "id:42" would read back as issuer "id".
		return settings{}, usagef("--%s must not be empty: authenticator apps show it above the account", flagIssuer)
	}
	params := models.Params{
		Algorithm: strings.ToUpper(r.stringFlag(c, flagAlgorithm, models.DefaultParams.Algorithm)),
		Digits:    c.Int(flagDigits),
		Period:    c.Int(flagPeriod),
	}
	if err := params.Validate(); err != nil {
		return settings{}, usageError{err}
	}
	cfg := models.Config{
		Tables:          tables,
		Users:           users,
		Issuer:          issuer,
		Params:          params,
		Skew:            c.Int(flagSkew),
		MaxFailures:     c.Int(flagMaxFailures),
		LockoutDuration: c.Duration(flagLockout),
		BackupCodeCount: c.Int(flagBackupCount),
		Actor:           actor,
		Host:            r.streams.Hostname,
		Now:             r.streams.Now,
	}
	return settings{format: format, tables: tables, svc: cfg}, nil
}

// open validates the global flags, connects, checks the schema and builds
// the service. Usage errors come first, so a typo never touches the
// database.
func (r *runner) open(c *cli.Context, key keyUse) (*session, error) {
	st, err := r.settings(c)
	if err != nil {
		return nil, err
	}
	db, keyFile, err := r.connect(c, st.tables, &st.svc.Users)
	if err != nil {
		return nil, err
	}
	sess := &session{db: db, format: st.format, tables: st.tables}
	fail := func(err error) (*session, error) {
		sess.close()
		return nil, err
	}
	if err := models.CheckSchema(c.Context, db, st.tables); err != nil {
		return fail(err)
	}
	if key != keyNone {
		k, err := config.LoadKey(keyFile, r.streams.Getenv("TOTPADM_KEY"))
		if err != nil {
			return fail(err)
		}
		if k == nil && key >= keyRequired {
			return fail(models.ErrNoKey)
		}
		st.svc.Key = k
	}
	if sess.svc, err = models.NewService(st.svc); err != nil {
		return fail(usageError{err})
	}
	if key == keySeal {
		if err := sess.svc.CheckSealingKey(c.Context, db); err != nil {
			return fail(err)
		}
	}
	return sess, nil
}

// connect opens --db, or the embedded demo database when --db is unset,
// and returns the key file to use.
func (r *runner) connect(c *cli.Context, tables models.Tables, users *models.UsersTable) (*gorm.DB, string, error) {
	keyFile := c.String(flagKeyFile)
	var target config.Target
	if !usesDemoDatabase(c) {
		t, err := config.ParseTarget(c.String(flagDB))
		if err != nil {
			return nil, "", usageError{err}
		}
		target = t
	} else {
		created, err := config.EnsureDemo(c.Context, config.DemoDBPath, config.DemoKeyFile, tables)
		if err != nil {
			return nil, "", err
		}
		if created {
			fmt.Fprintf(r.streams.Err, "totpadm: created demo database ./%s (users %s) and key file ./%s; pass --db to use a real database\n",
				config.DemoDBPath, demoUserList(), config.DemoKeyFile)
		}
		target = config.Target{Driver: "sqlite", Path: config.DemoDBPath}
		if keyFile == "" && r.streams.Getenv("TOTPADM_KEY") == "" {
			keyFile = config.DemoKeyFile
		}
		if !c.IsSet(flagEmailColumn) {
			users.EmailColumn = "email" // the demo users table has one
		}
	}
	if p := target.Password(); p != "" {
		r.secrets = append(r.secrets, p)
	}
	db, err := config.Open(c.Context, target, config.OpenOptions{BusyTimeout: c.Duration(flagBusyTimeout)})
	if err != nil {
		return nil, "", err
	}
	return db, keyFile, nil
}

// usesDemoDatabase: no --db was given (flag, environment or file), so the
// embedded demo database is used.
func usesDemoDatabase(c *cli.Context) bool { return !c.IsSet(flagDB) }

func demoUserList() string {
	s := ""
	for i, u := range config.DemoUsers {
		if i > 0 {
			s += ", "
		}
		s += u.Login
	}
	return s
}
