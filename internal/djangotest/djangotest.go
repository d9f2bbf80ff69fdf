// Package djangotest lets Django and django-otp themselves judge what
// totpadm's django-otp store does: each test gets a real Django project (a
// settings module in a temporary directory) migrated by Django onto a fresh
// database, and helpers that create users and devices, verify tokens and read
// devices back through Django's and django-otp's own code.
//
// Django runs as /usr/bin/python3, the Debian interpreter that has the
// python3-django, python3-django-otp, python3-psycopg2 and python3-mysqldb
// packages (.ci/run installs them); a `python3` earlier on PATH may be a
// different interpreter without them. Without Django a test skips, saying
// so.
package djangotest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
)

// Python is the interpreter with Django and django-otp installed.
const Python = "/usr/bin/python3"

//go:embed helper.py
var helperPy []byte

// Project is one test's Django project and its database.
type Project struct {
	Backend string // "sqlite", "postgres" or "mysql"
	// DB is totpadm's --db value for the project's database: the SQLite
	// file, or a postgres:// or mysql:// URL.
	DB  string
	Dir string // the project directory: settings, helper, the SQLite file

	env  []string
	srv  *server
	gorm *gorm.DB
}

// server is the project's long-running helper process (helper.py --serve).
type server struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

// Backends runs fn once per backend as a subtest, each with a fresh
// migrated project; PostgreSQL and MySQL are skipped, saying why, when
// their testutil variable is unset.
func Backends(t *testing.T, fn func(t *testing.T, p *Project)) {
	t.Helper()
	for _, b := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(b, func(t *testing.T) { fn(t, New(t, b)) })
	}
}

// versions says whether Django can run here, once per test process, and
// returns Django's and django-otp's versions.
var versions = sync.OnceValues(func() (string, error) {
	out, err := exec.Command(Python, "-c", "import django, django_otp, psycopg2, MySQLdb, importlib.metadata as m; print(django.__version__, m.version('django-otp'))").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s cannot import django, django_otp, psycopg2 and MySQLdb (apt-get install python3-django python3-django-otp python3-psycopg2 python3-mysqldb): %v: %s", Python, err, bytes.TrimSpace(out))
	}
	return strings.TrimSpace(string(out)), nil
})

// Skip skips t when Django and django-otp are not installed.
func Skip(t *testing.T) {
	t.Helper()
	if _, err := versions(); err != nil {
		t.Skipf("Django tests skipped: %v", err)
	}
}

// sqliteTemplate is a SQLite file that Django migrated, shared by the test
// processes of one Django version: each SQLite project starts from a copy
// of it, as if migrated itself, without the second and a half that migrate
// takes.
var sqliteTemplate = sync.OnceValues(func() (string, error) {
	v, err := versions()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(v + "\x00" + settingsText("{}")))
	path := filepath.Join(os.TempDir(), "djangotest-"+hex.EncodeToString(sum[:8])+".db")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	dir, err := os.MkdirTemp("", "djangotest-template-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	p := &Project{Backend: "sqlite", Dir: dir, DB: filepath.Join(dir, "app.db")}
	if err := p.write(sqliteSettings(p.DB)); err != nil {
		return "", err
	}
	// WAL, as an application sharing SQLite between processes runs it
	// (and as testutil's SQLite databases are); the mode is kept in the
	// file, and the last connection's close folds the WAL back in.
	for _, args := range [][]string{
		{"-m", "django", "migrate", "--noinput", "-v", "0"},
		{"-c", "import django; django.setup(); from django.db import connection; connection.cursor().execute('PRAGMA journal_mode=WAL'); connection.close()"},
	} {
		cmd := exec.Command(Python, args...)
		cmd.Dir, cmd.Env = p.Dir, p.env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("django %s: %v\n%s", args, err, out)
		}
	}
	// Rename: a concurrent test process sees the whole file or none.
	tmp := path + "." + filepath.Base(dir)
	if err := copyFile(p.DB, tmp); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
})

func sqliteSettings(path string) map[string]any {
	// A generous busy timeout, as a site sharing SQLite between processes
	// configures: Django then waits for totpadm's writes instead of
	// failing at once.
	return map[string]any{"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": map[string]any{"timeout": 20}}
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o600)
}

// New makes a Django project on a fresh database of the given backend
// ("sqlite", "postgres" or "mysql") as Django's migrate makes it: auth,
// contenttypes, django_otp, otp_totp and otp_static, nothing of
// totpadm's. (The database is a copy of one that Django migrated, see
// templates.go: migrate itself takes seconds.)
func New(t *testing.T, backend string) *Project {
	t.Helper()
	Skip(t)
	p := &Project{Backend: backend, Dir: t.TempDir()}
	var dbs map[string]any
	switch backend {
	case "sqlite":
		p.DB = filepath.Join(p.Dir, "app.db")
		dbs = sqliteSettings(p.DB)
	case "postgres":
		dbs = p.postgres(t)
	case "mysql":
		dbs = p.mysql(t)
	default:
		t.Fatalf("djangotest: unknown backend %q", backend)
	}
	if err := p.write(dbs); err != nil {
		t.Fatal(err)
	}
	if backend == "sqlite" {
		tpl, err := sqliteTemplate()
		if err != nil {
			t.Fatalf("migrate the SQLite template: %v", err)
		}
		if err := copyFile(tpl, p.DB); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after the database's own cleanup, so it runs before it:
	// the helper's connection is gone when the database is dropped.
	t.Cleanup(p.stop)
	return p
}

// postgres makes a fresh database on the PostgresEnv server from the
// migrated template (CREATE DATABASE … TEMPLATE), dropped when the test
// ends.
func (p *Project) postgres(t *testing.T) map[string]any {
	t.Helper()
	base := os.Getenv(testutil.PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test) to run them", testutil.PostgresEnv)
	}
	tpl, err := pgTemplate()
	if err != nil {
		t.Fatalf("migrate the PostgreSQL template: %v", err)
	}
	name := "djangotest_" + testutil.RandomHex(t, 6)
	admin := open(t, base)
	if err := admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + tpl).Error; err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		config.Close(admin)
	})
	u := parseURL(t, base)
	u.Path = "/" + name
	p.DB = u.String()
	return pgSettings(u)
}

func pgSettings(u *url.URL) map[string]any {
	pass, _ := u.User.Password()
	opts := map[string]any{}
	if m := u.Query().Get("sslmode"); m != "" {
		opts["sslmode"] = m
	}
	return map[string]any{
		"ENGINE": "django.db.backends.postgresql", "NAME": strings.TrimPrefix(u.Path, "/"),
		"USER": u.User.Username(), "PASSWORD": pass, "HOST": u.Hostname(), "PORT": u.Port(),
		"OPTIONS": opts,
	}
}

// mysql makes a fresh database on the MySQLEnv server (MySQL or MariaDB)
// as a copy of the migrated template (SHOW CREATE TABLE and its rows),
// dropped when the test ends.
func (p *Project) mysql(t *testing.T) map[string]any {
	t.Helper()
	base := os.Getenv(testutil.MySQLEnv)
	if base == "" {
		t.Skipf("MySQL tests skipped: set %s (e.g. mysql://root@127.0.0.1:3306/test) to run them", testutil.MySQLEnv)
	}
	tpl, err := myTemplate()
	if err != nil {
		t.Fatalf("migrate the MySQL template: %v", err)
	}
	name := "djangotest_" + testutil.RandomHex(t, 6)
	admin := open(t, base)
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name)
		config.Close(admin)
	})
	if err := myClone(admin, tpl, name); err != nil {
		t.Fatalf("copy the MySQL template: %v", err)
	}
	u := parseURL(t, base)
	u.Path = "/" + name
	p.DB = u.String()
	return mySettings(u)
}

func mySettings(u *url.URL) map[string]any {
	pass, _ := u.User.Password()
	return map[string]any{
		"ENGINE": "django.db.backends.mysql", "NAME": strings.TrimPrefix(u.Path, "/"),
		"USER": u.User.Username(), "PASSWORD": pass, "HOST": u.Hostname(), "PORT": u.Port(),
		"OPTIONS": map[string]any{"charset": "utf8mb4"},
	}
}

// write writes the settings module and the helper script.
func (p *Project) write(db map[string]any) error {
	dbJSON, err := json.Marshal(map[string]any{"default": db})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"djsettings.py": []byte(settingsText(string(dbJSON))), "djhelper.py": helperPy} {
		if err := os.WriteFile(filepath.Join(p.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	p.env = append(os.Environ(), "DJANGO_SETTINGS_MODULE=djsettings", "PYTHONPATH="+p.Dir, "PYTHONDONTWRITEBYTECODE=1")
	return nil
}

// settingsText is the settings module for the DATABASES value in JSON.
func settingsText(databases string) string {
	return `# Written by internal/djangotest.
import json
SECRET_KEY = "djangotest-not-secret"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = json.loads(` + pyString(databases) + `)
`
}

// Settings appends lines to the project's settings module (e.g.
// "OTP_TOTP_THROTTLE_FACTOR = 10", django-otp's settings) and restarts the
// helper, so that Django applies them from the next Batch on.
func (p *Project) Settings(t *testing.T, lines ...string) {
	t.Helper()
	path := filepath.Join(p.Dir, "djsettings.py")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.WriteString(f, strings.Join(lines, "\n")+"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
}

// pyString quotes s as a Python string literal (JSON's escapes are a
// subset of Python's).
func pyString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Op is one operation of the helper script.
type Op map[string]any

// Batch runs ops in one Python process (Django starts in about 0.3 s, so
// tests batch their queries) and returns each op's JSON result. An op that
// raised returns {"error": "..."}; callers that expect success use the
// typed helpers, which fail the test on an error.
func (p *Project) Batch(t *testing.T, ops ...Op) []json.RawMessage {
	t.Helper()
	data, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	if p.srv == nil {
		p.srv = &server{cmd: exec.Command(Python, filepath.Join(p.Dir, "djhelper.py"), "--serve")}
		s := p.srv
		s.cmd.Dir, s.cmd.Env, s.cmd.Stderr = p.Dir, p.env, &s.stderr
		if s.stdin, err = s.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := s.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		s.out = bufio.NewReaderSize(stdout, 1<<20)
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start the django helper: %v", err)
		}
	}
	s := p.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.stdin.Write(append(data, '\n')); err != nil {
		t.Fatalf("django helper %v: %v\n%s", ops, err, s.stderr.String())
	}
	line, err := s.out.ReadBytes('\n')
	if err != nil {
		t.Fatalf("django helper %v: %v\n%s", ops, err, s.stderr.String())
	}
	return parseResults(t, ops, line)
}

// stop ends the helper process: stdin closed, it exits.
func (p *Project) stop() {
	if p.srv != nil {
		_ = p.srv.stdin.Close()
		_ = p.srv.cmd.Wait()
		p.srv = nil
	}
}

func (p *Project) helper(t *testing.T, ops []Op, wait bool) *exec.Cmd {
	t.Helper()
	data, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(p.Dir, "djhelper.py"), string(data)}
	if wait {
		args = append(args, "--wait")
	}
	cmd := exec.Command(Python, args...)
	cmd.Dir, cmd.Env = p.Dir, p.env
	return cmd
}

func parseResults(t *testing.T, ops []Op, out []byte) []json.RawMessage {
	t.Helper()
	var res []json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil || len(res) != len(ops) {
		t.Fatalf("django helper %v: output %q: %v", ops, out, err)
	}
	return res
}

// Pending is a helper process started by Start, set up and connected, that
// runs its ops when Go is called.
type Pending struct {
	t     *testing.T
	ops   []Op
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	err   bytes.Buffer
}

// Start starts a helper process for ops and returns once Django is set up,
// connected and has loaded the users, so that Go runs the ops with no
// start-up delay: for races against totpadm processes.
func (p *Project) Start(t *testing.T, ops ...Op) *Pending {
	t.Helper()
	pd := &Pending{t: t, ops: ops, cmd: p.helper(t, ops, true)}
	pd.cmd.Stderr = &pd.err
	var err error
	if pd.stdin, err = pd.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := pd.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pd.out = bufio.NewReader(stdout)
	if err := pd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.cmd.Process.Kill(); _ = pd.cmd.Wait() })
	if line, err := pd.out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("django helper did not get ready: %q %v\n%s", line, err, pd.err.String())
	}
	return pd
}

// Go lets the ops run.
func (pd *Pending) Go() {
	_, _ = io.WriteString(pd.stdin, "go\n")
	_ = pd.stdin.Close()
}

// Wait returns the ops' results.
func (pd *Pending) Wait() []json.RawMessage {
	pd.t.Helper()
	out, _ := io.ReadAll(pd.out)
	if err := pd.cmd.Wait(); err != nil {
		pd.t.Fatalf("django helper %v: %v\n%s", pd.ops, err, pd.err.String())
	}
	return parseResults(pd.t, pd.ops, out)
}

// one runs a single op and decodes its result into v, failing the test
// when the op raised.
func (p *Project) one(t *testing.T, op Op, v any) {
	t.Helper()
	Decode(t, op, p.Batch(t, op)[0], v)
}

// Decode decodes one op's result into v, failing the test when the op
// raised.
func Decode(t *testing.T, op Op, raw json.RawMessage, v any) {
	t.Helper()
	var e struct{ Error string }
	_ = json.Unmarshal(raw, &e)
	if e.Error != "" {
		t.Fatalf("django %v: %s", op, e.Error)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("django %v: decode %s: %v", op, raw, err)
	}
}

// Verdict is the result of a verification through django-otp.
type Verdict struct {
	Accepted bool
	Device   string // the name of the device that accepted
	Error    string // what Django raised (e.g. "database is locked"), if anything
}

// Ops for Batch; the typed helpers below run one each.

func CreateUserOp(login, email string) Op {
	return Op{"op": "create_user", "login": login, "email": email}
}
func CreateTOTPDeviceOp(login, name string, confirmed bool) Op {
	return Op{"op": "create_totp", "login": login, "name": name, "confirmed": confirmed}
}
func CreateStaticDeviceOp(login string, tokens []string) Op {
	return Op{"op": "create_static", "login": login, "tokens": tokens}
}
func VerifyTOTPOp(login, token string) Op {
	return Op{"op": "verify_totp", "login": login, "token": token}
}
func VerifyStaticOp(login, token string) Op {
	return Op{"op": "verify_static", "login": login, "token": token}
}
func MatchTokenOp(login, token string) Op {
	return Op{"op": "match_token", "login": login, "token": token}
}
func DevicesOp(login string) Op         { return Op{"op": "devices", "login": login} }
func VerifyIsAllowedOp(login string) Op { return Op{"op": "verify_is_allowed", "login": login} }
func SetThrottleOp(login string, count int, secondsAgo float64) Op {
	return Op{"op": "set_throttle", "login": login, "count": count, "seconds_ago": secondsAgo}
}
func SchemaDumpOp() Op { return Op{"op": "schema"} }
func DataDumpOp(skip ...string) Op {
	if skip == nil {
		skip = []string{}
	}
	return Op{"op": "data", "skip": skip}
}
func SQLOp(sql string, params ...any) Op {
	if params == nil {
		params = []any{}
	}
	return Op{"op": "sql", "sql": sql, "params": params}
}

// CreateUser creates a Django user (auth_user) and returns its id.
func (p *Project) CreateUser(t *testing.T, login, email string) int {
	t.Helper()
	var r struct{ ID int }
	p.one(t, CreateUserOp(login, email), &r)
	return r.ID
}

// CreateTOTPDevice creates a TOTPDevice with django-otp's defaults
// (TOTPDevice.objects.create: its own random key, step 30, 6 digits) and
// returns the key in hex, as django-otp stores it.
func (p *Project) CreateTOTPDevice(t *testing.T, login, name string, confirmed bool) string {
	t.Helper()
	var r struct{ Key string }
	p.one(t, CreateTOTPDeviceOp(login, name, confirmed), &r)
	return r.Key
}

// CreateStaticDevice creates a StaticDevice named "backup" with tokens.
func (p *Project) CreateStaticDevice(t *testing.T, login string, tokens []string) {
	t.Helper()
	var r struct{ ID int }
	p.one(t, CreateStaticDeviceOp(login, tokens), &r)
}

// VerifyTOTP verifies token against each of the user's TOTP devices
// (confirmed or not) through django_otp.verify_token.
func (p *Project) VerifyTOTP(t *testing.T, login, token string) bool {
	t.Helper()
	var v Verdict
	p.one(t, VerifyTOTPOp(login, token), &v)
	return v.Accepted
}

// VerifyStatic verifies token against each of the user's static devices
// through django_otp.verify_token.
func (p *Project) VerifyStatic(t *testing.T, login, token string) bool {
	t.Helper()
	var v Verdict
	p.one(t, VerifyStaticOp(login, token), &v)
	return v.Accepted
}

// MatchToken is django_otp.match_token: every confirmed device.
func (p *Project) MatchToken(t *testing.T, login, token string) bool {
	t.Helper()
	var v Verdict
	p.one(t, MatchTokenOp(login, token), &v)
	return v.Accepted
}

// Device is one django-otp device as Django reads it.
type Device struct {
	Kind                       string   `json:"kind"` // "totp" or "static"
	ID                         int      `json:"id"`
	Name                       string   `json:"name"`
	Confirmed                  bool     `json:"confirmed"`
	Key                        string   `json:"key"`
	Step                       int      `json:"step"`
	T0                         int64    `json:"t0"`
	Digits                     int      `json:"digits"`
	Tolerance                  int      `json:"tolerance"`
	Drift                      int      `json:"drift"`
	LastT                      int64    `json:"last_t"`
	ThrottlingFailureCount     int      `json:"throttling_failure_count"`
	ThrottlingFailureTimestamp *string  `json:"throttling_failure_timestamp"`
	Tokens                     []string `json:"tokens"`
}

// Devices returns devices_for_user(user, confirmed=None), TOTP first.
func (p *Project) Devices(t *testing.T, login string) []Device {
	t.Helper()
	var r struct{ Devices []Device }
	p.one(t, DevicesOp(login), &r)
	return r.Devices
}

// DevicesOf decodes a DevicesOp result from a Batch.
func DevicesOf(t *testing.T, raw json.RawMessage) []Device {
	t.Helper()
	var r struct{ Devices []Device }
	Decode(t, DevicesOp(""), raw, &r)
	return r.Devices
}

// Allowed is one device's verify_is_allowed().
type Allowed struct {
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Allowed     bool   `json:"allowed"`
	LockedUntil string `json:"locked_until"`
}

// VerifyIsAllowed returns verify_is_allowed() of each of the user's devices.
func (p *Project) VerifyIsAllowed(t *testing.T, login string) []Allowed {
	t.Helper()
	var r struct{ Devices []Allowed }
	p.one(t, VerifyIsAllowedOp(login), &r)
	return r.Devices
}

// SetThrottle sets throttling_failure_count to count and the failure
// timestamp to secondsAgo before now on every device of the user (count 0
// clears the timestamp).
func (p *Project) SetThrottle(t *testing.T, login string, count int, secondsAgo float64) {
	t.Helper()
	var r struct{ Devices int }
	p.one(t, SetThrottleOp(login, count, secondsAgo), &r)
	if r.Devices == 0 {
		t.Fatalf("SetThrottle %s: the user has no devices", login)
	}
}

// SchemaDump renders the definition (columns, indexes, constraints) of
// every table but totpadm's own, so equal dumps mean Django's tables were
// not altered.
func (p *Project) SchemaDump(t *testing.T) string {
	t.Helper()
	var r struct{ Dump string }
	p.one(t, SchemaDumpOp(), &r)
	return r.Dump
}

// DataDump renders every row of every table but skip (totpadm's included
// unless skipped), so equal dumps mean no data changed.
func (p *Project) DataDump(t *testing.T, skip ...string) string {
	t.Helper()
	var r struct{ Dump string }
	p.one(t, DataDumpOp(skip...), &r)
	return r.Dump
}

// Tables lists every table of the project's database.
func (p *Project) Tables(t *testing.T) []string {
	t.Helper()
	var r struct{ Tables []string }
	p.one(t, Op{"op": "tables"}, &r)
	return r.Tables
}

// Gorm is a connection of the test's own to the project's database
// (totpadm's driver, opened as totpadm opens it), for holding locks and
// for assertions; closed before the database is dropped.
func (p *Project) Gorm(t *testing.T) *gorm.DB {
	t.Helper()
	if p.gorm == nil {
		p.gorm = open(t, p.DB)
		db := p.gorm
		t.Cleanup(func() { config.Close(db) })
	}
	return p.gorm
}

// SQL runs one statement through Django's connection and returns its rows.
func (p *Project) SQL(t *testing.T, sql string, params ...any) [][]any {
	t.Helper()
	var r struct{ Rows [][]any }
	p.one(t, SQLOp(sql, params...), &r)
	return r.Rows
}

// Args prefixes args with the global flags that point totpadm at this
// project's database with the django-otp store.
func (p *Project) Args(args ...string) []string {
	return append([]string{"--db", p.DB, "--store", "django-otp", "--actor", "tester"}, args...)
}

// Code is the TOTP code of a hex key at time at, computed by oathtool
// (an implementation independent of totpadm's and of django-otp's) with
// django-otp's defaults: 6 digits, 30 s, t0 0.
func Code(t *testing.T, hexKey string, at time.Time) string {
	t.Helper()
	return CodeWith(t, hexKey, at, 30, 6, 0)
}

// CodeWith is Code for a device with other parameters: step seconds,
// digits, and t0 (the Unix time steps count from).
func CodeWith(t *testing.T, hexKey string, at time.Time, step, digits int, t0 int64) string {
	t.Helper()
	if _, err := exec.LookPath("oathtool"); err != nil {
		t.Skip("oathtool not installed (apt-get install oathtool)")
	}
	out, err := exec.Command("oathtool", "--totp", "-d", fmt.Sprint(digits), "-s", fmt.Sprintf("%ds", step),
		"-S", fmt.Sprintf("@%d", t0), "-N", fmt.Sprintf("@%d", at.Unix()), hexKey).CombinedOutput()
	if err != nil {
		t.Fatalf("oathtool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// FreshStep waits, if needed, until at least margin is left in the
// current 30-second time step and returns now: codes computed for it stay
// the current step's while a test works with them.
func FreshStep(margin time.Duration) time.Time {
	now := time.Now()
	left := 30*time.Second - time.Duration(now.UnixNano()%int64(30*time.Second))
	if left < margin {
		time.Sleep(left + 50*time.Millisecond)
		now = time.Now()
	}
	return now
}

func open(t *testing.T, spec string) *gorm.DB {
	t.Helper()
	target, err := config.ParseTarget(spec)
	if err != nil {
		t.Fatal(err)
	}
	db, err := config.Open(context.Background(), target, config.OpenOptions{})
	if err != nil {
		t.Fatalf("open %s: %v", target.Driver, err)
	}
	return db
}

func parseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
