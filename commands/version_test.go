package commands_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

type versionJSON struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	CommitTime string `json:"commit_time"`
	Modified   bool   `json:"modified"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
	Schema     int    `json:"schema"`
	SQLite     bool   `json:"sqlite"`
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		res := testutil.Run(t, testutil.Options{}, args...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, res.Code, res.Stderr)
		}
		for _, want := range []string{"totpadm ", "commit:", "go:        " + runtime.Version(), fmt.Sprintf("schema:    %d ", models.SchemaVersion), "sqlite:    yes"} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, res.Stdout)
			}
		}
	}

	for _, args := range [][]string{{"-o", "json", "--version"}, {"version", "-o", "json"}, {"--version", "--output=json"}} {
		res := testutil.Run(t, testutil.Options{}, args...)
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		var v versionJSON
		if res.Code != 0 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &v) != nil {
			t.Fatalf("%v: exit %d, want one JSON object, got %q %q", args, res.Code, res.Stdout, res.Stderr)
		}
		if v.Version == "" || v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH || v.Schema != models.SchemaVersion || !v.SQLite {
			t.Errorf("%v: %+v", args, v)
		}
	}

	// -v is not --version: it would read as "verbose" and shadow any
	// command's -v.
	if res := testutil.Run(t, testutil.Options{}, "-v"); res.Code != 2 {
		t.Errorf("-v: exit %d, want 2", res.Code)
	}
	if res := testutil.Run(t, testutil.Options{}, "--help"); !strings.Contains(res.Stdout, "--version") {
		t.Errorf("--help does not list --version:\n%s", res.Stdout)
	}
}

// doctor's first line says which binary wrote the report.
func TestDoctorStartsWithTheVersion(t *testing.T) {
	db := testutil.NewSQLite(t)
	res := testutil.Run(t, testutil.Options{}, db.Args("doctor")...)
	first, _, _ := strings.Cut(res.Stdout, "\n")
	if !strings.HasPrefix(first, "✓ version: totpadm ") || !strings.Contains(first, fmt.Sprintf("schema %d", models.SchemaVersion)) || !strings.Contains(first, "SQLite yes") {
		t.Errorf("first line %q", first)
	}
	res = testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "doctor")...)
	first, _, _ = strings.Cut(res.Stdout, "\n")
	var c struct {
		Check  string `json:"check"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(first), &c); err != nil || c.Check != "version" || !c.OK || !strings.HasPrefix(c.Detail, "totpadm ") {
		t.Errorf("first JSON line %q: %+v %v", first, c, err)
	}
}
