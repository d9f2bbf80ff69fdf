package commands_test

import (
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// styleHelperCells splits a table line at the display columns where the
// header's fields start (ASCII lines: a byte a column).
func styleHelperCells(header, line string) []string {
	starts := tableHelperStarts(header)
	cells := make([]string, len(starts))
	for i, s := range starts {
		end := len(line)
		if i+1 < len(starts) {
			end = min(starts[i+1], len(line))
		}
		if s < len(line) {
			cells[i] = strings.TrimSpace(line[s:end])
		}
	}
	return cells
}

// status --time relative shows how long ago and how soon, as a person
// reads it, in the table only: JSON and CSV stay absolute, byte for byte
// what they are without the flag.
func TestStatusRelativeTimes(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusFixture(t, db)
		now := statusT0.Add(5 * time.Minute)
		res := statusRunAt(t, now, db.Args("status", "--time", "relative")...)
		if res.Code != 0 {
			t.Fatalf("exit %d, %q", res.Code, res.Stderr)
		}
		tableHelperCheckAligned(t, res.Stdout)
		lines := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
		want := map[string][3]string{ // enrolled, last used, locked until
			"alice": {"5 min ago", "3 min ago", "-"},
			"bob":   {"5 min ago", "-", "-"},
			"carol": {"5 min ago", "-", "in 13 min"},
			"dave":  {"-", "-", "-"},
		}
		if len(lines) != 1+len(want) {
			t.Fatalf("want a header and %d rows:\n%s", len(want), res.Stdout)
		}
		for _, line := range lines[1:] {
			c := styleHelperCells(lines[0], line)
			if got := [3]string{c[5], c[6], c[8]}; got != want[c[1]] {
				t.Errorf("%s: enrolled, last used, locked until = %q, want %q\n%s", c[1], got, want[c[1]], res.Stdout)
			}
		}
		for _, format := range []string{"json", "csv"} {
			plain := statusRunAt(t, now, db.Args("-o", format, "status")...)
			rel := statusRunAt(t, now, db.Args("-o", format, "status", "--time", "relative")...)
			if rel.Code != 0 || rel.Stdout != plain.Stdout {
				t.Errorf("-o %s --time relative differs from -o %s:\n%s\n%s", format, format, rel.Stdout, plain.Stdout)
			}
		}
		if bad := statusRunAt(t, now, db.Args("status", "--time", "soon")...); bad.Code != 2 {
			t.Errorf("--time soon: exit %d, %q; want 2", bad.Code, bad.Stderr)
		}
	})
}

// On a colour terminal the state column is coloured — enabled green,
// pending yellow, locked red, not-enrolled dim — without moving any
// column, relative times included; NO_COLOR, JSON and CSV get no colour.
func TestStatusColourOnTerminal(t *testing.T) {
	db := testutil.NewSQLite(t)
	statusFixture(t, db)
	for _, args := range [][]string{{"status"}, {"status", "--time", "relative"}} {
		out := qrHelperScript(t, db.Dir, nil, db.Args(args...)...)
		colours := map[string]string{"alice": "\x1b[32menabled\x1b[0m", "bob": "\x1b[33mpending\x1b[0m",
			"carol": "\x1b[31mlocked\x1b[0m", "dave": "\x1b[2mnot-enrolled\x1b[0m"}
		for login, want := range colours {
			found := false
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, " "+login+" ") {
					found = strings.Contains(line, want)
				}
			}
			if !found {
				t.Errorf("%v: %s's state is not %q:\n%q", args, login, want, out)
			}
		}
		if strings.Contains(strings.SplitN(out, "\n", 2)[0], "\x1b[") {
			t.Errorf("%v: the header is coloured: %q", args, out)
		}
		plain := qrHelperANSI.ReplaceAllString(out, "")
		tableHelperCheckAligned(t, plain)
		if nc := qrHelperScript(t, db.Dir, []string{"NO_COLOR=1"}, db.Args(args...)...); nc != plain {
			t.Errorf("%v: NO_COLOR output is not the coloured one without colours:\n%q\n%q", args, nc, plain)
		}
	}
	for _, format := range []string{"json", "csv"} {
		for _, args := range [][]string{{"status"}, {"status", "--summary"}} {
			if out := qrHelperScript(t, db.Dir, nil, db.Args(append([]string{"-o", format}, args...)...)...); strings.Contains(out, "\x1b[") {
				t.Errorf("-o %s %v on a terminal carries ANSI codes: %q", format, args, out)
			}
		}
	}
	sum := qrHelperScript(t, db.Dir, nil, db.Args("status", "--summary")...)
	if !strings.Contains(sum, "\x1b[31mlocked\x1b[0m") {
		t.Errorf("summary table: locked not red: %q", sum)
	}
	tableHelperCheckAligned(t, qrHelperANSI.ReplaceAllString(sum, ""))
}
