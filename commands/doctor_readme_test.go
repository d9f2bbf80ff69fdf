package commands_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// doctorHelperREADMESample is the doctor output the README shows.
func doctorHelperREADMESample(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const cmd = "$ totpadm --db postgres://admin@db/app --key-file /etc/totpadm/key doctor\n"
	_, rest, ok := strings.Cut(string(readme), cmd)
	if !ok {
		t.Fatalf("README has no line %q", cmd)
	}
	sample, _, _ := strings.Cut(rest, "```")
	return strings.Split(strings.TrimSuffix(sample, "\n"), "\n")
}

// doctorHelperPattern turns a README line into a pattern for real output:
// numbers, the key id, the two paths and the server's build suffix vary,
// the words do not.
func doctorHelperPattern(line string) *regexp.Regexp {
	const path, hex, build, version = "\x00P\x00", "\x00H\x00", "\x00B\x00", "\x00V\x00"
	// A release shows its version and commit; a test binary "devel (commit unknown".
	line = regexp.MustCompile(`totpadm v[0-9.]+ \(commit [0-9a-f]+ of [^;]+;`).ReplaceAllString(line, version)
	line = strings.NewReplacer("/etc/totpadm/config.toml", path, "/etc/totpadm/key", path).Replace(line)
	line = regexp.MustCompile(`key [0-9a-f]{12}`).ReplaceAllString(line, "key "+hex)
	line = regexp.MustCompile(`(PostgreSQL [0-9.]+) \(.*\)`).ReplaceAllString(line, "$1"+build)
	p := regexp.QuoteMeta(line)
	p = regexp.MustCompile(`[0-9]+`).ReplaceAllString(p, `[0-9]+`)
	p = strings.NewReplacer(path, `\S+`, hex, `[0-9a-f]{12}`, build, `( \(.*\))?`, version, `totpadm \S+ \([^;]+;`).Replace(p)
	return regexp.MustCompile("^" + p + "$")
}

// What the README shows doctor printing is what doctor prints: the same
// checks in the same order, in the same words.
func TestDoctorOutputMatchesREADME(t *testing.T) {
	db := testutil.NewPostgres(t)
	testutil.Enroll(t, db, "alice")
	testutil.Enroll(t, db, "bob")
	cfg := filepath.Join(db.Dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("issuer = \"Example App\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := testutil.Run(t, testutil.Options{}, append([]string{"--config", cfg}, db.Args("doctor")...)...)
	if res.Code != 0 {
		t.Fatalf("doctor: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	want := doctorHelperREADMESample(t)
	got := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("doctor printed %d lines, the README shows %d:\n%s", len(got), len(want), res.Stdout)
	}
	for i := range want {
		if !doctorHelperPattern(want[i]).MatchString(got[i]) {
			t.Errorf("doctor line %d is %q; the README shows %q", i+1, got[i], want[i])
		}
	}
}
