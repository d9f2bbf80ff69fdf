package commands_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// Every global setting, refused from each source: typed as a flag it is
// a usage error (exit 2), the same value from its TOTPADM_* variable or
// its configuration-file key a configuration error (exit 5). Each is one
// line that names the flag, and the variable or the file and key; nothing
// is opened. For a setting that is a models.Config field the words after
// the flag's name are models' own Rule for that field (the one rule
// NewService applies), not a CLI restatement of it.
func TestSettingsEachSettingBySource(t *testing.T) {
	db := testutil.NewSQLite(t)
	cases := []struct {
		flag  string
		value string // as typed, as the variable holds it, and in the file
		text  bool   // a string setting: the file holds it quoted
		// A Config field: models' refusal of the value, said after the flag.
		field string
		set   func(*models.Config)
		// Not a Config field: the CLI's own message.
		want string
	}{
		{flag: "store", value: "nope", text: true, want: `unknown store "nope": want totpadm or django-otp`},
		{flag: "output", value: "xml", text: true, want: `invalid --output "xml": want table, json or csv`},
		{flag: "table-prefix", value: "1x", text: true, want: `table prefix "1x" must be letters, digits and underscores, starting with a letter or underscore`},
		{flag: "users-table", value: "  ", text: true, field: "Users.Table", set: func(c *models.Config) { c.Users.Table = "  " }},
		{flag: "user-id-column", value: " ", text: true, field: "Users.IDColumn", set: func(c *models.Config) { c.Users.IDColumn = " " }},
		{flag: "user-login-column", value: "\t", text: true, field: "Users.LoginColumn", set: func(c *models.Config) { c.Users.LoginColumn = "\t" }},
		{flag: "user-email-column", value: "e\x00mail", text: true, field: "Users.EmailColumn", set: func(c *models.Config) { c.Users.EmailColumn = "e\x00mail" }},
		{flag: "user-protected-column", value: "admin\x00", text: true, field: "Users.ProtectedColumn", set: func(c *models.Config) { c.Users.ProtectedColumn = "admin\x00" }},
		{flag: "max-failures", value: "0", field: "MaxFailures", set: func(c *models.Config) { c.MaxFailures = 0 }},
		{flag: "lockout-duration", value: "-1m0s", field: "LockoutDuration", set: func(c *models.Config) { c.LockoutDuration = -time.Minute }},
		{flag: "skew", value: "11", field: "Skew", set: func(c *models.Config) { c.Skew = 11 }},
		{flag: "backup-codes-count", value: "101", field: "BackupCodeCount", set: func(c *models.Config) { c.BackupCodeCount = 101 }},
		{flag: "issuer", value: " ", text: true, field: "Issuer", set: func(c *models.Config) { c.Issuer = " " }},
		{flag: "algorithm", value: "MD5", text: true, field: "Params.Algorithm", set: func(c *models.Config) { c.Params.Algorithm = "MD5" }},
		{flag: "digits", value: "9", field: "Params.Digits", set: func(c *models.Config) { c.Params.Digits = 9 }},
		{flag: "period", value: "0", field: "Params.Period", set: func(c *models.Config) { c.Params.Period = 0 }},
		{flag: "django-totp-throttle-factor", value: "-1", field: "DjangoOTP.TOTPThrottleFactor", set: func(c *models.Config) { c.DjangoOTP.TOTPThrottleFactor = -1 }},
		{flag: "django-static-throttle-factor", value: "-2", field: "DjangoOTP.StaticThrottleFactor", set: func(c *models.Config) { c.DjangoOTP.StaticThrottleFactor = -2 }},
		{flag: "busy-timeout", value: "0s", want: "--busy-timeout must be at least 1ms, got 0s"},
		{flag: "on-change-timeout", value: "0s", want: "--on-change-timeout must be positive"},
	}
	for _, c := range cases {
		t.Run(c.flag, func(t *testing.T) {
			want := c.want
			if c.field != "" {
				cfg := models.DefaultConfig()
				c.set(&cfg)
				var se *models.SettingError
				if err := cfg.Validate(); !errors.As(err, &se) || se.Field != c.field {
					t.Fatalf("models.Config.Validate: %v, want field %s refused", err, c.field)
				}
				want = "--" + c.flag + " " + se.Rule
			}
			variable := "TOTPADM_" + strings.ToUpper(strings.ReplaceAll(c.flag, "-", "_"))
			inFile, shown := c.value, c.value
			if c.text {
				inFile, shown = strconv.Quote(c.value), strconv.Quote(c.value)
				inFile = strings.ReplaceAll(inFile, `\x00`, `\u0000`) // TOML's escape
			} else if _, err := strconv.Atoi(c.value); err != nil {
				inFile = strconv.Quote(c.value) // a duration
			}
			file := filepath.Join(t.TempDir(), "totpadm.toml")
			if err := os.WriteFile(file, []byte(c.flag+" = "+inFile+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			base := []string{"--db", db.Spec, "--key-file", db.KeyFile, "--actor", "tester"}
			for _, src := range []struct {
				name string
				env  map[string]string
				args []string
				code int
				line string
			}{
				{"flag", nil, []string{"--" + c.flag + "=" + c.value}, 2,
					want},
				{"env", map[string]string{variable: c.value}, nil, 5,
					"configuration: " + variable + "=" + c.value + ": " + want},
				{"file", nil, []string{"--config", file}, 5,
					"configuration: config file " + file + ": " + c.flag + " = " + shown + ": " + want},
			} {
				t.Run(src.name, func(t *testing.T) {
					before := db.Dump(t)
					args := append(append(append([]string(nil), base...), src.args...), "status")
					res := testutil.Run(t, testutil.Options{Env: src.env}, args...)
					if res.Code != src.code {
						t.Errorf("exit %d, want %d", res.Code, src.code)
					}
					if wantLine := "totpadm: " + escaped(src.line) + "\n"; res.Stderr != wantLine {
						t.Errorf("stderr\n%q, want\n%q", res.Stderr, wantLine)
					}
					if res.Stdout != "" {
						t.Errorf("stdout %q, want none", res.Stdout)
					}
					if db.Dump(t) != before {
						t.Errorf("the database changed")
					}
				})
			}
		})
	}
}

// escaped is an error line as the terminal gets it: with a character a
// terminal would act on (the NUL of a variable's value shown as it is),
// the whole line in Go escapes.
func escaped(line string) string {
	for _, r := range line {
		if !strconv.IsGraphic(r) {
			q := strconv.QuoteToGraphic(line)
			return q[1 : len(q)-1]
		}
	}
	return line
}
