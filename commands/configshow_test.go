package commands_test

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// Precedence flag > env > file > default, as config show reports it and as
// the commands obey it.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "totpadm.toml")
	if err := os.WriteFile(file, []byte("issuer = \"FromFile\"\nmax-failures = 7\nskew = 3\noutput = \"json\"\ndb = \"postgres://u:filepw@db.internal/app\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOTPADM_MAX_FAILURES", "8")
	t.Setenv("TOTPADM_SKEW", "2")
	t.Setenv("TOTPADM_OUTPUT", "csv")
	res := testutil.Run(t, testutil.Options{}, "--config", file, "--skew", "1", "config", "show")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(res.Stdout)).ReadAll()
	if err != nil {
		t.Fatalf("csv %q: %v", res.Stdout, err)
	}
	got := map[string][2]string{}
	for _, r := range rows[1:] {
		got[r[0]] = [2]string{r[1], r[2]}
	}
	want := map[string][2]string{
		"skew":             {"1", "flag"},
		"max-failures":     {"8", "env TOTPADM_MAX_FAILURES"},
		"issuer":           {"FromFile", "file " + file},
		"output":           {"csv", "env TOTPADM_OUTPUT"},
		"lockout-duration": {"15m0s", "default"},
		"db":               {"postgres://u:xxxxx@db.internal/app", "file " + file},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if strings.Contains(res.Stdout+res.Stderr, "filepw") {
		t.Error("config show printed the database password")
	}
}

// The file's values really reach the commands, below env and flags.
func TestConfigFileApplies(t *testing.T) {
	db := testutil.NewSQLite(t)
	file := filepath.Join(db.Dir, "cfg.yaml")
	content := "db: " + db.Spec + "\nkey-file: " + db.KeyFile + "\noutput: csv\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res := testutil.Run(t, testutil.Options{}, "--config", file, "status", "alice")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "id,login,email,state") {
		t.Fatalf("yaml config not applied: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	res = testutil.Run(t, testutil.Options{}, "--config", file, "-o", "json", "status", "alice")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "{") {
		t.Fatalf("flag did not beat the file: %q", res.Stdout)
	}
	for _, bad := range []string{filepath.Join(db.Dir, "missing.toml"), writeFile(t, db.Dir, "bad.toml", "output = [\n")} {
		res := testutil.Run(t, testutil.Options{}, "--config", bad, "status")
		if res.Code != 5 || strings.Count(res.Stderr, "\n") != 1 || !strings.HasPrefix(res.Stderr, "totpadm: configuration") {
			t.Errorf("--config %s: exit %d, stderr %q", filepath.Base(bad), res.Code, res.Stderr)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
