package commands

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) doctorCommand() *cli.Command {
	return readOnly(&cli.Command{
		Name:  "doctor",
		Usage: "check configuration, database, users-table mapping, schema, key and clock",
		Description: `Runs every check totpadm depends on and prints one line per check, ✓ or ✗,
with the fix for each failure, after a first line with totpadm's version: the
configuration, that the database answers
(and its version), that the users-table mapping reads (and the id type), the
schema version, the key file's permissions, that the key opens a sample of the
stored secrets, and this machine's clock against the database server's (TOTP
codes fail when they differ by more than a time step). Changes nothing.
Exit 0 only when every check passes, 5 otherwise.

Examples:
   totpadm doctor
   totpadm --db postgres://admin@db/app --key-file /etc/totpadm/key doctor -o json`,
		Action: r.doctor,
	})
}

// checkResult is one line of doctor's report.
type checkResult struct {
	name, detail, fix string
	ok                bool
	warn              bool // ok, but worth a look: shown as "!", never fails doctor
}

// doctorReport prints checks as they finish, so a hang shows where.
type doctorReport struct {
	r      *runner
	rw     recordWriter
	failed bool
}

func (d *doctorReport) add(res checkResult) {
	if !res.ok {
		d.failed = true
	}
	// Details quote database errors: every format gets them redacted.
	res.detail = d.r.oneLine(res.detail)
	if d.rw != nil {
		d.rw.write(record{{"check", res.name}, {"ok", res.ok}, {"warning", res.warn}, {"detail", res.detail}, {"fix", res.fix}})
		return
	}
	mark, line := "✓", res.name+": "+res.detail
	if res.warn {
		mark = "!"
		if res.fix != "" {
			line += " — consider: " + res.fix
		}
	}
	if !res.ok {
		mark = "✗"
		if res.fix != "" {
			line += " — fix: " + res.fix
		}
	}
	fmt.Fprintln(d.r.streams.Out, mark+" "+d.r.oneLine(line))
}

// notChecked reports checks that could not run because an earlier one
// failed, so the report still has one line per check.
func (d *doctorReport) notChecked(reason string, names ...string) {
	for _, name := range names {
		d.add(checkResult{name: name, detail: "not checked: " + reason})
	}
}

func (d *doctorReport) finish() error {
	if d.rw != nil {
		if err := d.rw.flush(); err != nil {
			return err
		}
	}
	if d.failed {
		return exitStatus{ExitEnvironment}
	}
	return nil
}

func (r *runner) doctor(c *cli.Context) error {
	report := &doctorReport{r: r}
	afterConfig := []string{"database", "users table", "schema", "audit log", "key", "secrets", "clock"}
	if format, err := parseFormat(c.String(flagOutput)); err == nil && format != formatTable {
		report.rw = newRecordWriter(format, r.streams.Out, []string{"check", "ok", "warning", "detail", "fix"})
	}
	// First, so that a report pasted into a ticket says which binary wrote it.
	report.add(checkResult{name: "version", ok: true, detail: currentBuild().oneLine()})
	if r.configErr != nil {
		report.add(checkResult{name: "config", detail: r.configErr.Error(), fix: "fix the configuration file, or point --config at another"})
		report.notChecked("the configuration is invalid", afterConfig...)
		return report.finish()
	}
	st, err := r.settings(c)
	if err != nil {
		report.add(checkResult{name: "config", detail: err.Error(), fix: "see totpadm --help"})
		report.notChecked("the configuration is invalid", afterConfig...)
		return report.finish()
	}
	source := "no configuration file; flags, environment and defaults"
	if r.configFile != "" {
		source = "configuration file " + r.configFile
	}
	report.add(checkResult{name: "config", ok: true, detail: source})

	// Without a database the key can still be checked; the rest cannot.
	noDatabase := func(keyFile string) error {
		report.notChecked("no database", "users table", "schema", "audit log")
		r.doctorKey(c, report, st, nil, keyFile, false)
		report.notChecked("no database", "clock")
		return report.finish()
	}
	db, keyFile, err := r.connect(c, st.tables, &st.svc.Users)
	if err != nil {
		fix := "check --db, that the server runs, and the credentials"
		if errors.Is(err, config.ErrNoSQLite) {
			fix = "build totpadm with cgo (a C compiler installed, CGO_ENABLED unset or 1), or use PostgreSQL or MySQL"
		}
		report.add(checkResult{name: "database", detail: err.Error(), fix: fix})
		return noDatabase(c.String(flagKeyFile))
	}
	defer config.Close(db)
	version, err := models.DatabaseVersion(c.Context, db)
	if err != nil {
		report.add(checkResult{name: "database", detail: err.Error(), fix: "check --db and the server"})
		return noDatabase(keyFile)
	}
	if db.Dialector.Name() == "sqlite" {
		version += r.doctorSQLite(c, db)
	}
	report.add(checkResult{name: "database", ok: true, detail: version})

	svc, err := r.newService(c, db, st.svc)
	if errors.As(err, new(usageError)) {
		report.add(checkResult{name: "config", detail: err.Error()})
		report.notChecked("the configuration is invalid", "users table", "schema", "audit log", "key", "secrets", "clock")
		return report.finish()
	}
	if err != nil { // the users table cannot be read through the mapping
		report.add(checkResult{name: "users table", detail: err.Error(), fix: "set --users-table and the --user-*-column flags to the application's users table"})
		svc, _ = models.NewService(st.svc) // the other checks need no users table
	} else if info, err := svc.CheckUsersTable(c.Context, db); err != nil {
		report.add(checkResult{name: "users table", detail: err.Error(), fix: "set --users-table and the --user-*-column flags to the application's users table"})
	} else {
		u := svc.Config().Users
		email := r.doctorEmail(c, u)
		report.add(checkResult{name: "users table", ok: true, detail: fmt.Sprintf("%s: id %s (%s), login %s, %s", u.Table, u.IDColumn, info.IDType, u.LoginColumn, email)})
	}

	store, err := st.bareStore()
	if err != nil {
		report.add(checkResult{name: "config", detail: err.Error()})
		return report.finish()
	}
	info := store.Info()
	schemaOK := false
	switch err := store.CheckSchema(c.Context, db); {
	case err == nil && info.NeedsKey:
		schemaOK = true
		report.add(checkResult{name: "schema", ok: true, detail: fmt.Sprintf("version %d (%s, %s, %s)", models.SchemaVersion, st.tables.Credentials, st.tables.BackupCodes, st.tables.AuditLog)})
	case err == nil:
		schemaOK = true
		report.add(checkResult{name: "schema", ok: true, detail: fmt.Sprintf("%s store: %s readable; totpadm's audit log %s", info.Name, strings.Join(info.Tables, ", "), st.tables.AuditLog)})
	case errors.Is(err, models.ErrSchemaMissing) && err.Error() == models.ErrSchemaMissing.Error():
		report.add(checkResult{name: "schema", detail: "totpadm's tables do not exist", fix: "run `totpadm migrate`"})
	case errors.Is(err, models.ErrSchemaMissing):
		report.add(checkResult{name: "schema", detail: err.Error(), fix: "run the application's `manage.py migrate`, and `totpadm migrate` for totpadm's audit log"})
	default:
		report.add(checkResult{name: "schema", detail: err.Error(), fix: "run `totpadm migrate`, or upgrade totpadm if the database is newer"})
	}

	r.doctorAuditLog(c, report, db, st.tables, schemaOK)
	if info.NeedsKey {
		r.doctorKey(c, report, st, db, keyFile, schemaOK)
	} else {
		report.add(checkResult{name: "key", ok: true, detail: fmt.Sprintf("not needed: the %s store keeps its secrets itself", info.Name)})
		report.add(checkResult{name: "secrets", ok: true, warn: true,
			detail: fmt.Sprintf("not encrypted at rest: %s keeps TOTP keys and backup codes in plain text (%s)", info.Name, strings.Join(info.Tables, ", ")),
			fix:    "restrict who can read those tables and the database's backups; anyone who can read them can make codes"})
	}
	r.doctorClock(c, report, db)
	return report.finish()
}

// doctorAuditLog says whether the connected role could rewrite the audit
// log. Most admins connect as the tables' owner, who can; that is worth a
// look, not a failure: `totpadm grants` makes a role that cannot.
func (r *runner) doctorAuditLog(c *cli.Context, report *doctorReport, db *gorm.DB, t models.Tables, schemaOK bool) {
	if !schemaOK {
		report.notChecked("no schema", "audit log")
		return
	}
	rights, err := models.AuditLogRewriteRights(c.Context, db, t)
	switch {
	case errors.Is(err, models.ErrNoRoles):
		report.add(checkResult{name: "audit log", ok: true, detail: "SQLite has no roles: whoever can write the database file can rewrite the audit log"})
	case err != nil:
		report.add(checkResult{name: "audit log", ok: true, warn: true, detail: "could not check who may rewrite it: " + err.Error()})
	case len(rights) > 0:
		report.add(checkResult{name: "audit log", ok: true, warn: true,
			detail: fmt.Sprintf("the connected role can rewrite %s (%s)", t.AuditLog, strings.Join(rights, ", ")),
			fix:    "run totpadm as a role set up with `totpadm grants --role ROLE`, for which the audit log is append-only"})
	default:
		report.add(checkResult{name: "audit log", ok: true, detail: "append-only for the connected role"})
	}
}

// doctorSQLite adds to the database line what support asks about a
// SQLite file: its journal mode (when readers wait on a bulk run;
// switching is `migrate --wal`), and whether commands that write can.
func (r *runner) doctorSQLite(c *cli.Context, db *gorm.DB) string {
	var s string
	if config.Unlocked(db) {
		s = ", read without locking (SQLite cannot create its -shm file beside it), so its journal mode is not known"
	} else if mode, err := config.JournalMode(c.Context, db); err == nil {
		s = ", journal mode " + mode
	}
	target := config.Target{Driver: "sqlite", Path: config.DemoDBPath}
	if !usesDemoDatabase(c) {
		t, err := config.ParseTarget(c.String(flagDB))
		if err != nil {
			return s
		}
		target = t
	}
	if err := config.CheckWritable(target); err != nil {
		s += "; " + strings.TrimPrefix(err.Error(), config.ErrDatabase.Error()+": ")
	}
	return s
}

// doctorEmail says which email column is used and why, and points out an
// email column left unused.
func (r *runner) doctorEmail(c *cli.Context, u models.UsersTable) string {
	switch {
	case u.EmailColumn != "" && c.IsSet(flagEmailColumn):
		return "email " + u.EmailColumn
	case u.EmailColumn != "" && c.String(flagStore) != models.StoreTotpadm && u.EmailColumn == models.StoreUsersTable(c.String(flagStore)).EmailColumn:
		return "email " + u.EmailColumn + " (the " + c.String(flagStore) + " store's default)"
	case u.EmailColumn != "" && usesDemoDatabase(c):
		return "email " + u.EmailColumn + " (the demo users table's)"
	case u.EmailColumn != "":
		return fmt.Sprintf("email %s (detected: no --%s configured, and the table has a column named %s)", u.EmailColumn, flagEmailColumn, u.EmailColumn)
	}
	return "no email column"
}

// doctorKey checks the key file and that the key opens stored secrets (db
// is nil when the database did not answer), reporting both checks.
func (r *runner) doctorKey(c *cli.Context, report *doctorReport, st settings, db *gorm.DB, keyFile string, schemaOK bool) {
	secretsNotChecked := func(reason string) {
		if db == nil {
			reason = "no database"
		}
		report.notChecked(reason, "secrets")
	}
	key, err := keyfile.Read(keyFile, r.streams.Getenv("TOTPADM_KEY"))
	switch {
	case errors.Is(err, keyfile.ErrNoKey):
		report.add(checkResult{name: "key", detail: "no key configured", fix: "pass --key-file with the key the secrets are sealed with (a new installation: `totpadm keygen --out FILE`), or set TOTPADM_KEY"})
		secretsNotChecked("no key")
		return
	case err != nil:
		report.add(checkResult{name: "key", detail: err.Error(), fix: "fix the key file or TOTPADM_KEY"})
		secretsNotChecked("no usable key")
		return
	}
	where := "TOTPADM_KEY"
	if keyFile != "" {
		where = keyFile + " (mode 0600)"
	}
	report.add(checkResult{name: "key", ok: true, detail: fmt.Sprintf("key %s from %s", key.ID(), where)})
	if db == nil || !schemaOK {
		secretsNotChecked("totpadm's tables are missing or unreadable")
		return
	}
	cfg := st.svc
	cfg.Key = key
	keyed, err := models.NewService(cfg)
	if err != nil {
		report.add(checkResult{name: "secrets", detail: err.Error()})
		return
	}
	sample, err := keyed.SampleSecrets(c.Context, db, 20)
	if err != nil {
		report.add(checkResult{name: "secrets", detail: err.Error(), fix: "check the database"})
		return
	}
	var others []string
	for id, n := range sample.ByKey {
		if id != key.ID() {
			others = append(others, fmt.Sprintf("%d under key %s", n, id))
		}
	}
	sort.Strings(others)
	switch {
	case sample.Tried == 0:
		report.add(checkResult{name: "secrets", ok: true, detail: "none stored yet"})
	case sample.Opened < sample.Tried || len(others) > 0:
		detail := fmt.Sprintf("the key opened %d of %d sampled secrets", sample.Opened, sample.Tried)
		if len(others) > 0 {
			detail += "; " + strings.Join(others, ", ")
		}
		report.add(checkResult{name: "secrets", detail: detail, fix: "use the key the secrets were sealed with, or finish `totpadm rotate-key`"})
	default:
		report.add(checkResult{name: "secrets", ok: true, detail: fmt.Sprintf("the key opened %d of %d sampled secrets; all %d secrets are under it", sample.Opened, sample.Tried, sample.ByKey[key.ID()])})
	}
}

// doctorClock compares this machine's clock with the database server's:
// the application checks codes by its clock, totpadm by this one.
func (r *runner) doctorClock(c *cli.Context, report *doctorReport, db *gorm.DB) {
	before := r.streams.Now()
	server, ok, err := models.DatabaseClock(c.Context, db)
	after := r.streams.Now()
	switch {
	case err != nil:
		report.add(checkResult{name: "clock", detail: err.Error()})
		return
	case !ok:
		report.add(checkResult{name: "clock", ok: true, detail: "SQLite runs on this machine and shares its clock; " + before.UTC().Format(time.RFC3339)})
		return
	}
	local := before.Add(after.Sub(before) / 2)
	skew := local.Sub(server)
	if skew < 0 {
		skew = -skew
	}
	detail := fmt.Sprintf("this machine and the database server differ by %.1f s", skew.Seconds())
	switch {
	case skew > 30*time.Second:
		report.add(checkResult{name: "clock", detail: detail + ", more than a 30 s time step: codes will be rejected", fix: "synchronise both clocks with NTP (timedatectl set-ntp true)"})
	case skew > 5*time.Second:
		report.add(checkResult{name: "clock", ok: true, detail: detail + " (within a time step, but check NTP)"})
	default:
		report.add(checkResult{name: "clock", ok: true, detail: detail})
	}
}
