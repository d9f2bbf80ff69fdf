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
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append(db.Args(c.args...), "-o", "json")
			if c.args[0] != "enroll" {
				args = append(args, "enroll")
			}
			args = append(args, "--no-confirm", "--force", "alice")
			res := testutil.Run(t, testutil.Options{}, args...)
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
