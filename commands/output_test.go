package commands

import (
	"strings"
	"testing"
)

func TestTerminalSafe(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"plain", "alice", "alice"},
		{"email", "alice@example.com", "alice@example.com"},
		{"empty", "", ""},
		{"space and punctuation", `ops: dana "d" smith\x`, `ops: dana "d" smith\x`},
		{"non-ASCII letters", "ünïcode Ωμέγα 名前", "ünïcode Ωμέγα 名前"},
		{"emoji", "🔑", "🔑"},
		{"non-breaking space (Zs)", "a\u00a0b", "a\u00a0b"},
		{"combining mark", "e\u0301", "e\u0301"},
		{"a real U+FFFD", "a\ufffdb", "a\ufffdb"},
		{"OSC title", "m\x1b]0;PWNED\x07", `m\x1b]0;PWNED\a`},
		{"clear screen", "m\x1b[2J", `m\x1b[2J`},
		{"newline and CR", "a\nb\rc", `a\nb\rc`},
		{"tab", "a\tb", `a\tb`},
		{"NUL and DEL", "a\x00b\x7f", `a\x00b\x7f`},
		{"C1 CSI", "a\u009b2J", `a\u009b2J`},
		{"invalid UTF-8 (8-bit CSI byte)", "a\x9b2J", `a\x9b2J`},
		{"bidi override", "admin\u202egnp.exe", `admin\u202egnp.exe`},
		{"bidi isolate", "a\u2066b\u2069", `a\u2066b\u2069`},
		{"left-to-right mark", "a\u200eb", `a\u200eb`},
		{"zero-width space", "ad\u200bmin", `ad\u200bmin`},
		{"zero-width joiner", "ad\u200dmin", `ad\u200dmin`},
		{"byte order mark", "\ufeffadmin", `\ufeffadmin`},
		{"soft hyphen", "ad\u00admin", `ad\u00admin`},
		{"tag character", "a\U000e0041", `a\U000e0041`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"private use", "a\ue000", `a\ue000`},
		// Once escaping starts, quotes and backslashes are escaped too,
		// so the result cannot be mistaken for a different login.
		{"quote with a control", "\"a\\\x1b", `\"a\\\x1b`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := terminalSafe(c.in)
			if got != c.want {
				t.Errorf("terminalSafe(%q) = %q, want %q", c.in, got, c.want)
			}
			// Escaped output is inert: nothing a terminal acts on, and
			// escaping it again changes nothing.
			for _, r := range got {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || strings.ContainsRune("\u202e\u200b\u200d\ufeff\u2028", r) {
					t.Errorf("terminalSafe(%q) = %q still holds %U", c.in, got, r)
				}
			}
			if again := terminalSafe(got); again != got {
				t.Errorf("terminalSafe is not idempotent: %q then %q", got, again)
			}
		})
	}
}

// The common case — a clean login in a million-row status table — must not
// allocate.
func TestTerminalSafeCleanDoesNotAllocate(t *testing.T) {
	s := strings.Repeat("alice@example.com ünïcode ", 4)
	if n := testing.AllocsPerRun(100, func() { _ = terminalSafe(s) }); n != 0 {
		t.Errorf("terminalSafe of a clean string allocates %v times, want 0", n)
	}
}

func TestJoinAttempts(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain error", "plain error"},
		{"failed to connect to `user=u database=d`:\n\th:1 (h): dial error: refused\n\th:1 (h): dial error: refused",
			"failed to connect to `user=u database=d`: h:1 (h): dial error: refused"},
		{"failed to connect:\n\ta: refused\n\tb: timeout", "failed to connect: a: refused; b: timeout"},
		{"login\twith a tab", "login\twith a tab"},
	}
	for _, c := range cases {
		if got := joinAttempts(c.in); got != c.want {
			t.Errorf("joinAttempts(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
