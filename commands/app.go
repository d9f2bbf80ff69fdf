// Package commands defines totpadm's command-line interface: flags,
// argument parsing and output. The rules live in models; the connection
// and key handling in config.
package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

// Streams is everything a run reads from or writes to outside the
// database, injected so commands run in-process under test.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// Interactive: stdin and stderr are a terminal, so totpadm may prompt.
	Interactive bool
	// Color: stdout is a terminal that may receive ANSI colours.
	Color bool
	// ProgressTTY: stderr is a terminal, so long bulk runs show progress.
	ProgressTTY bool
	// LookupEnv is the environment, the only one a run reads (os.LookupEnv
	// in main): every TOTPADM_* setting comes through it.
	LookupEnv func(string) (string, bool)
	Hostname  string
	Now       func() time.Time
}

// Getenv is the variable's value, "" when unset.
func (s Streams) Getenv(name string) string {
	v, _ := s.LookupEnv(name)
	return v
}

func (s *Streams) defaults() {
	if s.LookupEnv == nil {
		s.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.In == nil {
		s.In = strings.NewReader("")
	}
}

// Run executes totpadm with args (args[0] is the program name) and
// returns the exit code. Errors are printed as one line on stderr.
func Run(ctx context.Context, args []string, s Streams) (code int) {
	s.defaults()
	r := &runner{display: newDisplay(&s), args: args}
	r.streams = s
	// A bug must not dump a stack (and whatever it holds) on a support
	// engineer's terminal either: one line, exit 5. TOTPADM_TRACEBACK=1
	// brings the stack back for whoever debugs it.
	defer func() {
		if v := recover(); v != nil {
			if s.Getenv("TOTPADM_TRACEBACK") != "" {
				panic(v)
			}
			fmt.Fprintf(s.Err, "totpadm: internal error: %s (please report it with the command that caused it; TOTPADM_TRACEBACK=1 shows where)\n", r.oneLine(fmt.Sprint(v)))
			code = ExitEnvironment
		}
	}()
	app := r.newApp()
	err := app.RunContext(ctx, hoistGlobalFlags(args, app.Flags, app.Commands))
	if err == nil {
		return ExitOK
	}
	var exit exitStatus
	if errors.As(err, &exit) {
		return exit.code // already reported, user by user
	}
	fmt.Fprintf(s.Err, "totpadm: %s\n", r.oneLine(errorText(err)))
	return ExitCode(err)
}

// exitStatus ends a bulk run whose failures were reported per user.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// runner holds the state of one invocation; nothing outlives it.
type runner struct {
	streams    Streams
	args       []string          // the command line as given
	configFile string            // the configuration file applied, if any
	configErr  error             // an unusable configuration file, kept for doctor to report
	secrets    []string          // scrubbed from every message
	display    *display          // the terminal as stdout, stderr and the progress bar share it
	envVars    map[string]string // global flag name → its TOTPADM_* variable
	sources    map[string]string // global flag name → "flag", "env VAR" or "file PATH", once Before ran
	stdin      *bufio.Reader
}

// stdinReader is the one buffered reader of stdin that every prompt of a
// run shares, so that no prompt's buffer swallows the next one's answer.
func (r *runner) stdinReader() *bufio.Reader {
	if r.stdin == nil {
		r.stdin = bufio.NewReader(r.streams.In)
	}
	return r.stdin
}

// oneLine makes msg a single line with no secret in it.
func (r *runner) oneLine(msg string) string {
	msg = config.Redact(msg, "")
	for _, s := range r.secrets {
		msg = config.Redact(msg, s)
	}
	msg = joinAttempts(msg)
	// Escape what is left, line breaks too, exactly as tables escape a
	// login: a user reference crafted with terminal escape sequences must
	// not reach a support engineer's terminal through an error message,
	// and "ops\nadmin" must read the same in an error as in status and the
	// audit listing, not as "ops admin", which is another login.
	return terminalSafe(msg)
}

// joinAttempts turns a driver's multi-line error — pgx lists each
// connection attempt on a line of its own starting with a tab, and with
// sslmode=prefer the same failure twice — into one clause per distinct
// attempt.
func joinAttempts(msg string) string {
	parts := strings.Split(msg, "\n\t")
	if len(parts) == 1 {
		return msg
	}
	out := parts[0]
	seen := map[string]bool{}
	for i, p := range parts[1:] {
		if seen[p] {
			continue
		}
		seen[p] = true
		if i == 0 && strings.HasSuffix(out, ":") {
			out += " " + p
		} else {
			out += "; " + p
		}
	}
	return out
}

func (r *runner) newApp() *cli.App {
	flags := fileBackedFlags(globalFlags())
	r.envVars = takeEnvVars(flags)
	app := &cli.App{
		Name:    "totpadm",
		Usage:   "manage TOTP two-factor authentication in an application's user database",
		Version: appVersion(),
		Description: `totpadm enrolls users in TOTP 2FA (printing the QR code in the terminal), verifies
codes, lists 2FA status, regenerates backup codes and disables 2FA for locked-out
users, working directly on the application's database (SQLite, PostgreSQL or
MySQL/MariaDB).

With no --db and no configuration it uses ./totpadm.db, creating a demo database
with users alice, bob and carol on first use:

   totpadm enroll alice
   totpadm verify alice 123456
   totpadm status

Exit codes: 0 ok, 1 code rejected, 2 usage, 3 user not found or not enrolled,
4 already enrolled, 5 environment (database, configuration, key).`,
		Reader:               r.streams.In,
		Writer:               r.streams.Out,
		ErrWriter:            r.streams.Err,
		Flags:                flags,
		Before:               r.loadConfigFile(flags),
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Suggest:              true,
		OnUsageError:         onUsageError,
		// cli must not call os.Exit: Run maps errors to exit codes.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q (see `totpadm --help`)", c.Args().First())
			}
			cli.ShowAppHelp(c)
			return usagef("no command given")
		},
		Commands: []*cli.Command{
			r.enrollCommand(),
			r.verifyCommand(),
			readOnly(r.statusCommand()),
			r.backupCodesCommand(),
			r.disableCommand(),
			r.unlockCommand(),
			r.tempCodeCommand(),
			readOnly(r.auditCommand()),
			r.migrateCommand(),
			r.grantsCommand(),
			r.keygenCommand(),
			r.rotateKeyCommand(),
			r.exportCommand(),
			r.importCommand(),
			r.doctorCommand(),
			readOnly(r.configCommand()),
			r.completionCommand(),
			r.manCommand(),
			r.versionCommand(),
			r.completeCommand(),
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		// cli adds a `help` (alias `h`) subcommand to every command, which
		// would swallow users named "help" or "h": `verify h 123456` must
		// verify user h. --help and -h still show a command's help.
		cmd.HideHelpCommand = true
		refuseArguments(cmd, cmd.Name)
	}
	return app
}

// refuseArguments makes a command that declares no arguments (no
// ArgsUsage) refuse them: `totpadm migrate --dry-run` typed as `totpadm
// migrate dry-run` must not quietly migrate for real.
func refuseArguments(cmd *cli.Command, name string) {
	for _, sub := range cmd.Subcommands {
		sub.OnUsageError = onUsageError
		refuseArguments(sub, name+" "+sub.Name)
	}
	if cmd.ArgsUsage != "" || cmd.Action == nil || len(cmd.Subcommands) > 0 {
		return
	}
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usagef("%s: takes no arguments, got %q", name, c.Args().First())
		}
		return action(c)
	}
}

// onUsageError: what cli cannot parse is a usage error — except a value
// it read from a TOTPADM_* variable, which nobody typed: that is the
// configuration's fault (exit 5), like a bad value in the file.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	if strings.Contains(err.Error(), "from environment variable") {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return usageError{err}
}

// Global flag names.
const (
	flagDB         = "db"
	flagKeyFile    = "key-file"
	flagIssuer     = "issuer"
	flagOutput     = "output"
	flagActor      = "actor"
	flagUsersTable = "users-table"
	flagStore      = "store"

	flagDjangoTOTPThrottle   = "django-totp-throttle-factor"
	flagDjangoStaticThrottle = "django-static-throttle-factor"
	flagDjangoTOTPSync       = "django-totp-sync"
	flagIDColumn             = "user-id-column"
	flagLoginColumn          = "user-login-column"
	flagEmailColumn          = "user-email-column"
	flagProtected            = "user-protected-column"
	flagTablePrefix          = "table-prefix"
	flagMaxFailures          = "max-failures"
	flagLockout              = "lockout-duration"
	flagSkew                 = "skew"
	flagBackupCount          = "backup-codes-count"
	flagBusyTimeout          = "busy-timeout"
	flagAlgorithm            = "algorithm"
	flagDigits               = "digits"
	flagPeriod               = "period"
)

func env(name string) []string { return []string{"TOTPADM_" + name} }

func globalFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: flagDB, EnvVars: env("DB"), Usage: "database: a SQLite path, sqlite:PATH, postgres://user@host/db or mysql://user@host:3306/db (default: ./totpadm.db, a demo database created on first use)"},
		&cli.StringFlag{Name: flagKeyFile, EnvVars: env("KEY_FILE"), Usage: "file holding the base64 encryption key (mode 0600); or set TOTPADM_KEY to the key itself"},
		&cli.StringFlag{Name: flagIssuer, EnvVars: env("ISSUER"), Value: "totpadm", Usage: "issuer shown by authenticator apps above the account"},
		&cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, EnvVars: env("OUTPUT"), Value: formatTable, Usage: "output format: table, json (one object per line) or csv"},
		&cli.StringFlag{Name: flagActor, EnvVars: env("ACTOR"), Usage: "who is acting, for the audit log (default: $SUDO_USER, else the OS user)"},
		&cli.StringFlag{Name: flagStore, EnvVars: env("STORE"), Value: models.StoreTotpadm, Usage: "where the 2FA data lives: totpadm (its own tables) or django-otp (a Django application's django-otp tables, with django-otp's rules; users table auth_user)"},
		&cli.IntFlag{Name: flagDjangoTOTPThrottle, EnvVars: env("DJANGO_TOTP_THROTTLE_FACTOR"), Value: 1, Usage: "django-otp store: the application's OTP_TOTP_THROTTLE_FACTOR, whole seconds of the first back-off (0 = throttling off)"},
		&cli.IntFlag{Name: flagDjangoStaticThrottle, EnvVars: env("DJANGO_STATIC_THROTTLE_FACTOR"), Value: 1, Usage: "django-otp store: the application's OTP_STATIC_THROTTLE_FACTOR (0 = throttling off)"},
		&cli.BoolFlag{Name: flagDjangoTOTPSync, EnvVars: env("DJANGO_TOTP_SYNC"), Value: true, Usage: "django-otp store: the application's OTP_TOTP_SYNC (an accepted code updates the device's drift)"},
		&cli.StringFlag{Name: flagUsersTable, EnvVars: env("USERS_TABLE"), Value: models.DefaultUsersTable.Table, Usage: "the application's users table (may be schema.table)"},
		&cli.StringFlag{Name: flagIDColumn, EnvVars: env("USER_ID_COLUMN"), Value: models.DefaultUsersTable.IDColumn, Usage: "users-table id column (integer, UUID or text)"},
		&cli.StringFlag{Name: flagLoginColumn, EnvVars: env("USER_LOGIN_COLUMN"), Value: models.DefaultUsersTable.LoginColumn, Usage: "users-table login column"},
		&cli.StringFlag{Name: flagEmailColumn, EnvVars: env("USER_EMAIL_COLUMN"), Usage: "users-table email column (optional)"},
		&cli.StringFlag{Name: flagProtected, EnvVars: env("USER_PROTECTED_COLUMN"), Usage: "users-table column marking protected accounts, e.g. is_superuser (optional; true/1/t/yes = protected: disable, enroll --force, temp-code and backup-codes then need --allow-protected)"},
		&cli.StringFlag{Name: flagTablePrefix, EnvVars: env("TABLE_PREFIX"), Value: models.DefaultTablePrefix, Usage: "prefix of totpadm's own tables"},
		&cli.IntFlag{Name: flagMaxFailures, EnvVars: env("MAX_FAILURES"), Value: 5, Usage: "consecutive failed codes before a lockout"},
		&cli.DurationFlag{Name: flagLockout, EnvVars: env("LOCKOUT_DURATION"), Value: 15 * time.Minute, Usage: "how long a lockout lasts"},
		&cli.IntFlag{Name: flagSkew, EnvVars: env("SKEW"), Value: 1, Usage: "time steps accepted either side of now"},
		&cli.IntFlag{Name: flagBackupCount, EnvVars: env("BACKUP_CODES_COUNT"), Value: 10, Usage: "backup codes per user"},
		&cli.StringFlag{Name: flagAlgorithm, EnvVars: env("ALGORITHM"), Value: models.DefaultParams.Algorithm, Usage: "HMAC algorithm of new enrollments: SHA1, SHA256 or SHA512 (Google and Microsoft Authenticator ignore anything but SHA1)"},
		&cli.IntFlag{Name: flagDigits, EnvVars: env("DIGITS"), Value: models.DefaultParams.Digits, Usage: "code length of new enrollments: 6, 7 or 8 (Google and Microsoft Authenticator ignore anything but 6)"},
		&cli.IntFlag{Name: flagPeriod, EnvVars: env("PERIOD"), Value: models.DefaultParams.Period, Usage: "seconds per code of new enrollments (Google and Microsoft Authenticator ignore anything but 30)"},
		&cli.DurationFlag{Name: flagBusyTimeout, EnvVars: env("BUSY_TIMEOUT"), Value: config.DefaultBusyTimeout, Usage: "SQLite: how long to wait for another writer"},
	}, hookFlags()...)
}

// defaultActor is $SUDO_USER (the person behind sudo), else the OS user.
func (r *runner) defaultActor() string {
	if u := r.streams.Getenv("SUDO_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := r.streams.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}
