package models_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/models"
)

// badConfigFields: one unusable value of every Config field that has a
// rule, the SettingError.Field that must name it, and the words the
// sentence uses for the setting ("" where the sentence names the value,
// not the setting).
var badConfigFields = []struct {
	field, subject string
	set            func(*models.Config)
}{
	{"Users.Table", "users table", func(c *models.Config) { c.Users.Table = " " }},
	{"Users.Table", "", func(c *models.Config) { c.Users.Table = "users\x00" }},
	{"Users.IDColumn", "user id column", func(c *models.Config) { c.Users.IDColumn = "" }},
	{"Users.LoginColumn", "user login column", func(c *models.Config) { c.Users.LoginColumn = "\t" }},
	{"Users.EmailColumn", "", func(c *models.Config) { c.Users.EmailColumn = "e\x00mail" }},
	{"Users.ProtectedColumn", "", func(c *models.Config) { c.Users.ProtectedColumn = "\xff" }},
	{"Issuer", "issuer", func(c *models.Config) { c.Issuer = "  " }},
	{"Params.Algorithm", "algorithm", func(c *models.Config) { c.Params.Algorithm = "MD5" }},
	{"Params.Digits", "digits", func(c *models.Config) { c.Params.Digits = 9 }},
	{"Params.Digits", "digits", func(c *models.Config) { c.Params.Digits = 0 }},
	{"Params.Period", "period", func(c *models.Config) { c.Params.Period = 301 }},
	{"Skew", "skew", func(c *models.Config) { c.Skew = -1 }},
	{"Skew", "skew", func(c *models.Config) { c.Skew = 11 }},
	{"MaxFailures", "max failures", func(c *models.Config) { c.MaxFailures = -1 }},
	{"LockoutDuration", "lockout duration", func(c *models.Config) { c.LockoutDuration = -time.Second }},
	{"BackupCodeCount", "backup code count", func(c *models.Config) { c.BackupCodeCount = -1 }},
	{"BackupCodeCount", "backup code count", func(c *models.Config) { c.BackupCodeCount = 101 }},
}

// NewService refuses each unusable field with a *SettingError that names
// the field, and Validate says the same: one rule, one wording. The
// sentence is the setting's words, a space, then Rule — so a caller that
// puts its own name before Rule says what the library says — and it
// names no caller's flag.
func TestNewServiceRefusesEachField(t *testing.T) {
	for _, c := range badConfigFields {
		cfg := models.DefaultConfig()
		c.set(&cfg)
		t.Run(c.field, func(t *testing.T) {
			_, err := models.NewService(cfg)
			var se *models.SettingError
			if !errors.As(err, &se) {
				t.Fatalf("NewService: %v, want a *SettingError", err)
			}
			if se.Field != c.field {
				t.Errorf("Field %q, want %q (%v)", se.Field, c.field, err)
			}
			if verr := cfg.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate: %v, NewService: %v; want the same refusal", verr, err)
			}
			switch {
			case se.Rule == "":
				t.Errorf("empty Rule (%v)", err)
			case c.subject != "" && err.Error() != c.subject+" "+se.Rule:
				t.Errorf("error %q is not %q + \" \" + Rule %q", err, c.subject, se.Rule)
			case c.subject == "" && se.Rule != "is not usable: "+err.Error():
				t.Errorf("Rule %q does not carry the sentence %q", se.Rule, err)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a flag: the library names its fields", err)
			}
			if !errors.Is(err, se.Err) {
				t.Errorf("%v does not wrap its sentence", err)
			}
		})
	}
}

// Validate checks a Config as it stands, zeros included: a caller that
// set MaxFailures to 0 hears so. NewService first gives zero fields the
// defaults, so the zero Config builds the default service.
func TestConfigValidateZeroValues(t *testing.T) {
	if err := models.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig refused: %v", err)
	}
	err := models.Config{Skew: 1}.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *models.SettingError
		if !errors.As(e, &se) {
			t.Fatalf("%v is not a *SettingError", e)
		}
		fields = append(fields, se.Field)
	}
	// In the order Config declares them; errors.As finds the first.
	want := "Users.Table Users.IDColumn Users.LoginColumn Issuer Params.Algorithm Params.Digits Params.Period MaxFailures LockoutDuration BackupCodeCount"
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("zero Config refused for %s, want %s", got, want)
	}
	var first *models.SettingError
	if !errors.As(err, &first) || first.Field != "Users.Table" {
		t.Errorf("errors.As found %+v, want Users.Table", first)
	}

	svc, err := models.NewService(models.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got, def := svc.Config(), models.DefaultConfig()
	if got.Issuer != def.Issuer || got.Users != def.Users || got.Params != def.Params || got.Skew != 0 ||
		got.MaxFailures != def.MaxFailures || got.LockoutDuration != def.LockoutDuration || got.BackupCodeCount != def.BackupCodeCount {
		t.Errorf("zero Config filled in as %+v", got)
	}
	// Only a wholly zero mapping or parameter set is "the default": a
	// half-filled one is a mistake, named.
	cfg := models.Config{Params: models.Params{Algorithm: "SHA1", Digits: 6}}
	var se *models.SettingError
	if _, err := models.NewService(cfg); !errors.As(err, &se) || se.Field != "Params.Period" {
		t.Errorf("Params without a period: %v, want Params.Period refused", err)
	}
	cfg = models.Config{Users: models.UsersTable{Table: "accounts"}}
	if _, err := models.NewService(cfg); !errors.As(err, &se) || se.Field != "Users.IDColumn" {
		t.Errorf("users table without columns: %v, want Users.IDColumn refused", err)
	}
}
