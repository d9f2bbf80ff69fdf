package commands

import (
	"encoding/csv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// A text cell a spreadsheet would evaluate gets a ' first (OWASP: = + - @
// TAB CR, and ' itself so that the mapping can be undone); invalid UTF-8
// becomes U+FFFD, byte by byte, as in JSON; quoting is encoding/csv's.
func TestAppendCSVField(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"a=b", "a=b"},
		{"=1+2", "'=1+2"},
		{"+cmd", "'+cmd"},
		{"-2", "'-2"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "\"'\tx\""},
		{"\rx", "\"'\rx\""},
		{"'q", "''q"},
		{"''", "'''"},
		{`=HYPERLINK("http://x","y")`, `"'=HYPERLINK(""http://x"",""y"")"`},
		{" =x", `" =x"`}, // a leading space is not on the list; it is quoted
		{"a,b", `"a,b"`},
		{"line\nbreak", "\"line\nbreak\""},
		{`\.`, `"\."`},
		{"bad\xff\xfeutf8", "bad\ufffd\ufffdutf8"},
		{"=\xff", "'=\ufffd"},
		{"\xc3", "\ufffd"},
		{"ünïcode", "ünïcode"},
		{"a\ufffdb", "a\ufffdb"},
	}
	for _, c := range cases {
		if got := string(appendCSVField(nil, c.in)); got != c.want {
			t.Errorf("appendCSVField(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Numbers and times are not text: -90 stays a number.
	if got := string(appendCSVPlain(nil, "-90")); got != "-90" {
		t.Errorf("appendCSVPlain(-90) = %q", got)
	}
}

// Whatever a text cell holds, a CSV reader gets one cell back that no
// spreadsheet evaluates, and removing one leading ' restores the value
// (with invalid bytes as U+FFFD; Go's reader turns a quoted CRLF into LF).
func FuzzCSVField(f *testing.F) {
	for _, s := range []string{"alice", "=1+2", "'", "''x", "\t", "\r\n", "a,\"b\"", "\xff", " -", "@", `\.`, "-\n="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line := string(appendCSVField(nil, s)) + ",end\n"
		rec, err := csv.NewReader(strings.NewReader(line)).Read()
		if err != nil || len(rec) != 2 || rec[1] != "end" {
			t.Fatalf("appendCSVField(%q) = %q reads back as %q, %v", s, line, rec, err)
		}
		cell := rec[0]
		if cell != "" && csvFormulaStart(cell[0]) && cell[0] != '\'' {
			t.Fatalf("appendCSVField(%q): cell %q starts with a formula character", s, cell)
		}
		want := strings.ReplaceAll(replaceInvalidUTF8(s), "\r\n", "\n")
		if got := csvUnneutralise(cell); got != want {
			t.Fatalf("appendCSVField(%q) reads back as %q, want %q", s, got, want)
		}
		if !utf8.ValidString(line) {
			t.Fatalf("appendCSVField(%q) = %q is not valid UTF-8", s, line)
		}
	})
}

// csvStartsWithSpace's ASCII shortcut agrees with unicode.IsSpace on
// every first byte, and the decoded path on the rest.
func TestCSVStartsWithSpace(t *testing.T) {
	for c := 0; c < utf8.RuneSelf; c++ {
		s := string(rune(c)) + "x"
		if got, want := csvStartsWithSpace(s), unicode.IsSpace(rune(c)); got != want {
			t.Errorf("csvStartsWithSpace(%q) = %v, want %v", s, got, want)
		}
	}
	for _, tc := range []struct {
		s    string
		want bool
	}{{"", false}, {"\u00a0x", true}, {"\u0085", true}, {"\u3000x", true}, {"\u00e9", false}, {"\xff", false}} {
		if got := csvStartsWithSpace(tc.s); got != tc.want {
			t.Errorf("csvStartsWithSpace(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
