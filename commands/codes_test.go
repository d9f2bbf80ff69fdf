package commands_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

var codesHelperLine = regexp.MustCompile(`^  [0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

// codesHelperBlock returns the lines of the backup-code block in out — a
// line ending in ':' and the code lines after it — with every code
// replaced by CODE, and how many codes it held.
func codesHelperBlock(t *testing.T, out string) (layout []string, codes int) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if !codesHelperLine.MatchString(line) {
			continue
		}
		if i == 0 || !strings.HasSuffix(lines[i-1], ":") {
			t.Fatalf("backup codes not after a line ending in ':':\n%s", out)
		}
		layout = append(layout, "LEAD:")
		for _, l := range lines[i:] {
			if !codesHelperLine.MatchString(l) {
				break
			}
			layout = append(layout, "  CODE")
			codes++
		}
		return layout, codes
	}
	t.Fatalf("no backup codes in:\n%s", out)
	return nil, 0
}

// enroll and backup-codes print new backup codes in one layout: a line
// naming the user and ending in ':', then one code a line.
func TestBackupCodesOneLayout(t *testing.T) {
	db := testutil.NewSQLite(t)
	enr := testutil.Run(t, testutil.Options{}, db.Args("enroll", "--no-confirm", "alice")...)
	if enr.Code != 0 {
		t.Fatalf("enroll: exit %d, %q", enr.Code, enr.Stderr)
	}
	reg := testutil.Run(t, testutil.Options{}, db.Args("backup-codes", "alice")...)
	if reg.Code != 0 {
		t.Fatalf("backup-codes: exit %d, %q", reg.Code, reg.Stderr)
	}
	a, n := codesHelperBlock(t, enr.Stdout)
	b, m := codesHelperBlock(t, reg.Stdout)
	if n != 10 || m != 10 || strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("enroll's backup codes (%d):\n%s\nbackup-codes' (%d):\n%s", n, enr.Stdout, m, reg.Stdout)
	}
	for _, out := range []string{enr.Stdout, reg.Stdout} {
		if !strings.Contains(out, "alice: ") || !strings.Contains(out, "each works once") {
			t.Errorf("the lead line does not name alice and say each code works once:\n%s", out)
		}
	}
}
