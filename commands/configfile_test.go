package commands_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// The TOTP parameters of new enrollments are settings like any other:
// configuration-file keys (TOML and YAML), TOTPADM_* variables and flags,
// in that order of precedence, and they reach the otpauth URI.
func TestConfigFileTOTPParameters(t *testing.T) {
	db := testutil.NewSQLite(t)
	toml := writeFile(t, db.Dir, "params.toml", "algorithm = \"SHA256\"\ndigits = 8\nperiod = 60\n")
	yaml := writeFile(t, db.Dir, "params.yaml", "algorithm: sha512\ndigits: 7\n")
	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		params map[string]string
	}{
		{"toml", nil, []string{"--config", toml}, map[string]string{"algorithm": "SHA256", "digits": "8", "period": "60"}},
		{"yaml", nil, []string{"--config", yaml}, map[string]string{"algorithm": "SHA512", "digits": "7", "period": "30"}},
		{"env over file", map[string]string{"TOTPADM_DIGITS": "6"}, []string{"--config", toml}, map[string]string{"algorithm": "SHA256", "digits": "6", "period": "60"}},
		{"flag over env", map[string]string{"TOTPADM_DIGITS": "6"}, []string{"--config", toml, "--digits", "7"}, map[string]string{"digits": "7"}},
		{"flag after the command", nil, []string{"enroll", "--period", "45"}, map[string]string{"algorithm": "SHA1", "digits": "6", "period": "45"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(db.Args(c.args...), "-o", "json")
			if c.args[0] != "enroll" {
				args = append(args, "enroll")
			}
			args = append(args, "--no-confirm", "--force", "alice")
			res := testutil.Run(t, testutil.Options{Env: c.env}, args...)
			if res.Code != 0 {
				t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
			}
			if !strings.Contains(res.Stderr, "warning") {
				t.Errorf("non-default parameters without a warning: stderr %q", res.Stderr)
			}
			uri := enrollHelperLines(t, res.Stdout)[0]["uri"].(string)
			u, err := url.Parse(uri)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range c.params {
				if got := u.Query().Get(k); got != want {
					t.Errorf("%s = %q in %s, want %q", k, got, uri, want)
				}
			}
		})
	}
}

// A setting the file misspells is refused, not ignored: a silently
// ignored "max-failure = 3" would leave the default lockout in force.
func TestConfigFileUnknownSetting(t *testing.T) {
	db := testutil.NewSQLite(t)
	cases := []struct{ name, content, want string }{
		{"misspelt.toml", "max-failure = 3\nskew = 1\n", `unknown setting "max-failure"`},
		{"misspelt.yaml", "issuer: Example\nlockout: 1h\n", `unknown setting "lockout"`},
		{"nested.toml", "[db]\nurl = \"x\"\n", `setting "db" must be a single value`},
		{"list.yaml", "skew: [1, 2]\n", `setting "skew" must be a single value`},
		{"config-in-config.toml", "config = \"other.toml\"\n", `unknown setting "config"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, db.Dir, c.name, c.content)
			before := db.Dump(t)
			res := testutil.Run(t, testutil.Options{}, db.Args("--config", file, "status")...)
			if res.Code != 5 {
				t.Fatalf("exit %d, want 5; stderr %q", res.Code, res.Stderr)
			}
			enrollHelperOneErrorLine(t, res.Stderr)
			if !strings.Contains(res.Stderr, c.want) {
				t.Errorf("stderr %q does not say %s", res.Stderr, c.want)
			}
			if db.Dump(t) != before {
				t.Errorf("the database changed")
			}
		})
	}
	// Every name config show lists is accepted as a key.
	good := writeFile(t, db.Dir, "all.toml", "issuer = \"X\"\nmax-failures = 5\nlockout-duration = \"15m\"\nskew = 1\nbackup-codes-count = 10\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\no = \"csv\"\n")
	if res := testutil.Run(t, testutil.Options{}, db.Args("--config", good, "status")...); res.Code != 0 {
		t.Fatalf("known settings refused: exit %d, %q", res.Code, res.Stderr)
	}
}

// A bad value typed as a flag is a usage error (exit 2); the same value
// from a TOTPADM_* variable or the configuration file is a configuration
// error (exit 5) whose one line names the variable or the file. Nothing
// is opened or changed either way.
func TestSettingsBadValueExitBySource(t *testing.T) {
	db := testutil.NewSQLite(t)
	cases := []struct {
		setting, value, toml, want string
	}{
		{"skew", "11", "11", "--skew must be 0 to 10 time steps"},
		{"skew", "abc", `"abc"`, "skew"},
		{"max-failures", "0", "0", "--max-failures must be at least 1"},
		{"lockout-duration", "0s", `"0s"`, "--lockout-duration must be positive"},
		{"busy-timeout", "0s", `"0s"`, "--busy-timeout must be at least 1ms, got 0s"},
		{"busy-timeout", "-5s", `"-5s"`, "--busy-timeout must be at least 1ms, got -5s"},
		{"busy-timeout", "500us", `"500us"`, "--busy-timeout must be at least 1ms"},
		{"backup-codes-count", "101", "101", "--backup-codes-count must be 1 to 100"},
		{"digits", "9", "9", "digits must be 6, 7 or 8, got 9"},
		{"algorithm", "MD5", `"MD5"`, "MD5"},
		{"output", "xml", `"xml"`, `invalid --output "xml"`},
		{"issuer", " ", `" "`, "--issuer must not be empty"},
		{"table-prefix", "1x", `"1x"`, `table prefix "1x"`},
		{"db", "pgsql://bob:S3cret@h/app", `"pgsql://bob:S3cret@h/app"`, `invalid --db: unsupported scheme "pgsql"`},
	}
	for _, c := range cases {
		t.Run(c.setting+"="+c.value, func(t *testing.T) {
			env := "TOTPADM_" + strings.ToUpper(strings.ReplaceAll(c.setting, "-", "_"))
			file := writeFile(t, db.Dir, "bad.toml", c.setting+" = "+c.toml+"\n")
			base := []string{"--key-file", db.KeyFile, "--actor", "tester"}
			if c.setting != "db" {
				base = append(base, "--db", db.Spec)
			}
			for _, src := range []struct {
				name  string
				env   bool
				args  []string
				code  int
				names string
			}{
				{"flag", false, append(append([]string(nil), base...), "--"+c.setting+"="+c.value, "status"), 2, ""},
				{"env", true, append(append([]string(nil), base...), "status"), 5, "configuration: " + env},
				{"file", false, append(append([]string(nil), base...), "--config", file, "status"), 5, "configuration: config file " + file + ": " + c.setting},
			} {
				t.Run(src.name, func(t *testing.T) {
					opt := testutil.Options{}
					if src.env {
						opt.Env = map[string]string{env: c.value}
					}
					before := db.Dump(t)
					res := testutil.Run(t, opt, src.args...)
					if res.Code != src.code {
						t.Fatalf("exit %d, want %d; stderr %q", res.Code, src.code, res.Stderr)
					}
					enrollHelperOneErrorLine(t, res.Stderr)
					names := src.names
					if c.value == "abc" && src.code == 5 {
						names = "configuration: " // the parser's own words follow
					}
					if !strings.Contains(res.Stderr, c.want) || !strings.HasPrefix(res.Stderr, "totpadm: "+names) {
						t.Errorf("stderr %q, want it to start %q and say %q", res.Stderr, "totpadm: "+names, c.want)
					}
					if strings.Contains(res.Stderr, "S3cret") {
						t.Errorf("stderr %q shows the password", res.Stderr)
					}
					if db.Dump(t) != before {
						t.Errorf("the database changed")
					}
				})
			}
		})
	}
}
