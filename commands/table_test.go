package commands_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/totpadm/totpadm/internal/testutil"
)

// tableHelperWidth is how many terminal columns r takes, for the runes
// these tests use — written out here rather than asked of the library the
// table writer uses: Han ideographs and pictographic emoji two, combining
// marks none, everything else one.
func tableHelperWidth(r rune) int {
	switch {
	case unicode.Is(unicode.Mn, r):
		return 0
	case unicode.Is(unicode.Han, r), r >= 0x1F300 && r <= 0x1FAFF:
		return 2
	}
	return 1
}

// tableHelperStarts returns the display column at which each field of line
// starts; fields are separated by two or more spaces.
func tableHelperStarts(line string) []int {
	var starts []int
	col, spaces := 0, 2
	for _, r := range line {
		if r == ' ' {
			spaces++
		} else {
			if spaces >= 2 {
				starts = append(starts, col)
			}
			spaces = 0
		}
		col += tableHelperWidth(r)
	}
	return starts
}

// tableHelperCheckAligned asserts that every field of every line starts at
// the display column of the header's field above it.
func tableHelperCheckAligned(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := tableHelperStarts(lines[0])
	for _, line := range lines[1:] {
		got := tableHelperStarts(line)
		if len(got) != len(want) {
			t.Errorf("line %q has %d fields, the header %d", line, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("field %d of %q starts at display column %d, the header's at %d:\n%s", i, line, got[i], want[i], out)
				break
			}
		}
	}
}

// Logins in CJK, with a combining accent, or with emoji do not push the
// status table's columns out of line: a terminal draws 山田太郎 eight
// columns wide (four runes), José with a combining acute four (five
// runes). The emoji's zero-width joiner is escaped, as every invisible
// character is, and the emoji either side are two columns each.
func TestStatusTableAlignedByDisplayWidth(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, login := range []string{"山田太郎", "Jose\u0301", "👩\u200d💻dev"} {
			db.Exec(t, "INSERT INTO users (username, email) VALUES (?, ?)", login, login+"@example.com")
		}
		testutil.Enroll(t, db, "山田太郎")
		testutil.Enroll(t, db, "alice")
		res := testutil.Run(t, testutil.Options{}, db.Args("status")...)
		if res.Code != 0 {
			t.Fatalf("exit %d, %q", res.Code, res.Stderr)
		}
		for _, want := range []string{"山田太郎", "Jose\u0301", `👩\u200d💻dev`} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("status table lacks %q:\n%s", want, res.Stdout)
			}
		}
		if n := strings.Count(res.Stdout, "\n"); n != 7 {
			t.Errorf("%d lines, want a header and 6 users:\n%s", n, res.Stdout)
		}
		tableHelperCheckAligned(t, res.Stdout)
	})
}
