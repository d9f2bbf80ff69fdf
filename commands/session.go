package commands

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/keyfile"
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
	store  models.Store // where the 2FA data lives (--store); svc for totpadm's own
	format string
	tables models.Tables
}

func (s *session) close() { config.Close(s.db) }

// settings are the global flags, validated, before anything is opened.
type settings struct {
	format string
	tables models.Tables
	store  string
	svc    models.Config
}

// settingChecks validate the global settings one by one, in the order
// settings reports them. Each returns the problem phrased for the flag;
// badSetting says where the value came from. A flag that sets a
// models.Config field has no rule of its own here: fieldCheck asks models
// (Config.Validate, the same check NewService makes), which names the
// field it refuses, and says models' rule under the flag's name. Only
// the flags that are no Config field (the store, the output format, the
// table prefix — by models.CheckStoreName and models.TablesWithPrefix —,
// SQLite's busy timeout, the hook's time limit) are checked here.
var settingChecks = []struct {
	name  string
	check func(r *runner, c *cli.Context) error
}{
	{flagStore, func(r *runner, c *cli.Context) error {
		return models.CheckStoreName(c.String(flagStore))
	}},
	{flagOutput, func(r *runner, c *cli.Context) error {
		_, err := parseFormat(c.String(flagOutput))
		return err
	}},
	{flagTablePrefix, func(r *runner, c *cli.Context) error {
		_, err := models.TablesWithPrefix(c.String(flagTablePrefix))
		return err
	}},
	{flagUsersTable, fieldCheck(flagUsersTable, "Users.Table")},
	{flagIDColumn, fieldCheck(flagIDColumn, "Users.IDColumn")},
	{flagLoginColumn, fieldCheck(flagLoginColumn, "Users.LoginColumn")},
	{flagEmailColumn, fieldCheck(flagEmailColumn, "Users.EmailColumn")},
	{flagProtected, fieldCheck(flagProtected, "Users.ProtectedColumn")},
	{flagMaxFailures, fieldCheck(flagMaxFailures, "MaxFailures")},
	{flagLockout, fieldCheck(flagLockout, "LockoutDuration")},
	{flagSkew, fieldCheck(flagSkew, "Skew")},
	{flagBackupCount, fieldCheck(flagBackupCount, "BackupCodeCount")},
	{flagIssuer, fieldCheck(flagIssuer, "Issuer")},
	{flagAlgorithm, fieldCheck(flagAlgorithm, "Params.Algorithm")},
	{flagDigits, fieldCheck(flagDigits, "Params.Digits")},
	{flagPeriod, fieldCheck(flagPeriod, "Params.Period")},
	{flagDjangoTOTPThrottle, fieldCheck(flagDjangoTOTPThrottle, "DjangoOTP.TOTPThrottleFactor")},
	{flagDjangoStaticThrottle, fieldCheck(flagDjangoStaticThrottle, "DjangoOTP.StaticThrottleFactor")},
	{flagBusyTimeout, func(r *runner, c *cli.Context) error {
		// SQLite counts the busy timeout in whole milliseconds, and
		// config.Open takes anything else as "use the default": refuse
		// what would not be in force as written.
		if c.Duration(flagBusyTimeout) < time.Millisecond {
			return fmt.Errorf("--%s must be at least 1ms, got %s", flagBusyTimeout, c.Duration(flagBusyTimeout))
		}
		return nil
	}},
	{flagOnChangeTimeout, checkHookTimeout},
}

// fieldCheck is the check of flag, which sets the models.Config field
// field: models' refusal of that field, if any, said under the flag's
// name ("--max-failures must be at least 1, got 0").
func fieldCheck(flag, field string) func(r *runner, c *cli.Context) error {
	return func(_ *runner, c *cli.Context) error {
		for _, e := range settingErrors(modelsConfig(c).Validate()) {
			if e.Field == field {
				return fmt.Errorf("--%s %s", flag, e.Rule)
			}
		}
		return nil
	}
}

// settingErrors are the *models.SettingError in err: the one
// Config.Validate returns, or each of the several it joins.
func settingErrors(err error) []*models.SettingError {
	var out []*models.SettingError
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			out = append(out, settingErrors(e)...)
		}
		return out
	}
	var e *models.SettingError
	if errors.As(err, &e) {
		out = append(out, e)
	}
	return out
}

// modelsConfig is the models.Config the global flags describe, unvalidated
// and without what is not a flag's (actor, host, clock, hook, key). A
// table prefix settings would refuse leaves Tables zero; a framework
// store's users table stands in for each column flag not set.
func modelsConfig(c *cli.Context) models.Config {
	tables, _ := models.TablesWithPrefix(c.String(flagTablePrefix))
	users := models.UsersTable{
		Table:       c.String(flagUsersTable),
		IDColumn:    c.String(flagIDColumn),
		LoginColumn: c.String(flagLoginColumn),
		EmailColumn: c.String(flagEmailColumn),

		ProtectedColumn: c.String(flagProtected),
	}
	for flag, dst := range map[string]*string{flagUsersTable: &users.Table, flagIDColumn: &users.IDColumn, flagLoginColumn: &users.LoginColumn, flagEmailColumn: &users.EmailColumn} {
		if def := storeUsersDefault(c, flag); def != "" && !c.IsSet(flag) {
			*dst = def
		}
	}
	return models.Config{
		Tables: tables,
		Users:  users,
		Issuer: c.String(flagIssuer),
		Params: models.Params{
			Algorithm: strings.ToUpper(c.String(flagAlgorithm)),
			Digits:    c.Int(flagDigits),
			Period:    c.Int(flagPeriod),
		},
		Skew:            c.Int(flagSkew),
		MaxFailures:     c.Int(flagMaxFailures),
		LockoutDuration: c.Duration(flagLockout),
		BackupCodeCount: c.Int(flagBackupCount),
		DjangoOTP: models.DjangoOTPSettings{
			TOTPThrottleFactor:   float64(c.Int(flagDjangoTOTPThrottle)),
			NoTOTPThrottling:     c.Int(flagDjangoTOTPThrottle) == 0,
			StaticThrottleFactor: float64(c.Int(flagDjangoStaticThrottle)),
			NoStaticThrottling:   c.Int(flagDjangoStaticThrottle) == 0,
			NoTOTPSync:           !c.Bool(flagDjangoTOTPSync),
		},
	}
}

// busyTimeout is the SQLite busy timeout in force: what settings accepted,
// in the whole milliseconds SQLite counts.
func busyTimeout(c *cli.Context) time.Duration {
	return c.Duration(flagBusyTimeout).Truncate(time.Millisecond)
}

// badSetting classifies an unusable setting by where its value came from.
// Typed as a flag it is a usage error (exit 2), reported as it always was;
// from the environment or the configuration file it is a configuration
// error (exit 5) that names the variable or the file, since the person at
// the keyboard did not type it and a fix goes there. A --db value is never
// repeated: it may hold a password.
func (r *runner) badSetting(c *cli.Context, name string, err error) error {
	var flag cli.Flag
	for _, f := range c.App.Flags {
		if f.Names()[0] == name {
			flag = f
		}
	}
	source := "flag"
	if flag != nil {
		source = r.sourceOf(c, flag)
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(source, "env "):
		variable := strings.TrimPrefix(source, "env ")
		where := variable
		if v := r.streams.Getenv(variable); name != flagDB {
			where += "=" + v
		}
		return fmt.Errorf("%w: %s: %s", ErrConfig, where, msg)
	case strings.HasPrefix(source, "file "):
		where := fmt.Sprintf("config file %s: %s", strings.TrimPrefix(source, "file "), name)
		if name != flagDB {
			v := c.Value(name)
			if s, ok := v.(string); ok {
				where += " = " + strconv.Quote(s)
			} else {
				where += " = " + plainValue(v)
			}
		}
		return fmt.Errorf("%w: %s: %s", ErrConfig, where, msg)
	}
	var usage usageError
	if errors.As(err, &usage) {
		return err
	}
	return usageError{err}
}

// settingProblem is the first setting settings would refuse, or nil.
func (r *runner) settingProblem(c *cli.Context) error {
	for _, s := range settingChecks {
		if err := s.check(r, c); err != nil {
			return r.badSetting(c, s.name, err)
		}
	}
	// Every field models refuses has its flag's check above; should one
	// ever lack it, models' own words still stop the run here, before
	// anything is opened, rather than NewService after.
	if err := modelsConfig(c).Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

func (r *runner) settings(c *cli.Context) (settings, error) {
	if err := r.settingProblem(c); err != nil {
		return settings{}, err
	}
	format, _ := parseFormat(c.String(flagOutput))
	cfg := modelsConfig(c)
	actor := c.String(flagActor)
	if actor == "" {
		actor = r.defaultActor()
	}
	cfg.Actor = actor
	cfg.Host = r.streams.Hostname
	cfg.Now = r.streams.Now
	cfg.OnChange = r.changeHook(c)
	return settings{format: format, tables: cfg.Tables, store: c.String(flagStore), svc: cfg}, nil
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
	// The schema is checked before the key is read, so that a database
	// without totpadm's tables says so first; the store that checks it
	// needs no key.
	schemaStore, err := st.bareStore()
	if err != nil {
		return fail(err)
	}
	if err := schemaStore.CheckSchema(c.Context, db); err != nil {
		return fail(err)
	}
	if !schemaStore.Info().NeedsKey {
		key = keyNone // the framework keeps its secrets itself
	}
	if key != keyNone {
		k, err := keyfile.Read(keyFile, r.streams.Getenv("TOTPADM_KEY"))
		switch {
		case errors.Is(err, keyfile.ErrNoKey) && key == keyOptional:
			// verify of a user without 2FA, say, needs no key
		case err != nil:
			return fail(err)
		default:
			st.svc.Key = k
		}
	}
	if sess.svc, err = r.newService(c, db, st.svc); err != nil {
		return fail(err)
	}
	if sess.store, err = models.NewStore(st.store, sess.svc); err != nil {
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
			return nil, "", r.badSetting(c, flagDB, err)
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
	db, err := config.Open(c.Context, target, config.OpenOptions{BusyTimeout: busyTimeout(c)})
	if err != nil {
		return nil, "", err
	}
	return db, keyFile, nil
}

// newService builds the run's service once the database is open. It first
// reads the mapped users table's columns: a table that is not there shows
// there, named, with how to map another, instead of a bare `relation
// "users" does not exist` later. A table with a column named email, when
// none is configured, shows it without a flag (doctor says so).
func (r *runner) newService(c *cli.Context, db *gorm.DB, cfg models.Config) (*models.Service, error) {
	svc, err := models.NewService(cfg)
	if err != nil {
		// Not reached: settings refused every field NewService would,
		// through the same Config.Validate, and said which flag it was.
		return nil, usageError{err}
	}
	if err := svc.ProbeUsersTable(c.Context, db); err != nil {
		return nil, fmt.Errorf("the users table %q cannot be read (map the application's table with --%s, --%s and --%s): %w",
			cfg.Users.Table, flagUsersTable, flagIDColumn, flagLoginColumn, err)
	}
	if cfg.Users.EmailColumn == "" && !c.IsSet(flagEmailColumn) && svc.HasReadableUsersColumn(c.Context, db, models.DefaultEmailColumn) {
		cfg.Users.EmailColumn = models.DefaultEmailColumn
		return models.NewService(cfg)
	}
	return svc, nil
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
