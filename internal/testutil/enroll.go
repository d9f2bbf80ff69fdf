package testutil

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/models"
)

// Enrolled is what `enroll -o json` printed for one user.
type Enrolled struct {
	User        string   `json:"user"`
	Login       string   `json:"login"`
	ID          string   `json:"id"`
	Outcome     string   `json:"outcome"`
	State       string   `json:"state"`
	Secret      string   `json:"secret"`
	URI         string   `json:"uri"`
	BackupCodes []string `json:"backup_codes"`
}

// Enroll enrolls login as pending through the real CLI and returns the
// printed secret and backup codes.
func Enroll(t *testing.T, db *DB, login string, extra ...string) Enrolled {
	t.Helper()
	args := append(db.Args("-o", "json", "enroll", "--no-confirm"), extra...)
	res := Run(t, Options{}, append(args, login)...)
	if res.Code != 0 {
		t.Fatalf("enroll %s: exit %d: %s", login, res.Code, res.Stderr)
	}
	var e Enrolled
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.Stdout)), &e); err != nil {
		t.Fatalf("enroll %s: parse %q: %v", login, res.Stdout, err)
	}
	return e
}

// Code computes the TOTP code of a base32 secret at time at with the
// default parameters.
func Code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	raw, err := models.DecodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	code, err := models.GenerateCode(raw, models.DefaultParams.Step(at), models.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	return code
}
