package commands

import "testing"

// oneLine escapes line breaks as tables do (terminalSafe), after joining
// pgx's one-attempt-a-line connection errors into clauses.
func TestOneLine(t *testing.T) {
	r := &runner{}
	cases := []struct{ in, want string }{
		{"status ops\nadmin: user not found", `status ops\nadmin: user not found`},
		{"status cr\radmin: user not found", `status cr\radmin: user not found`},
		{"failed to connect to `user=u database=d`:\n\th:1 (h): dial error: refused\n\th:2 (h): timeout",
			"failed to connect to `user=u database=d`: h:1 (h): dial error: refused; h:2 (h): timeout"},
		{"open postgres://bob:S3cret@h/app: refused", "open postgres://bob:xxxxx@h/app: refused"},
		{"plain", "plain"},
	}
	for _, c := range cases {
		if got := r.oneLine(c.in); got != c.want {
			t.Errorf("oneLine(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := r.oneLine(c.in); got != terminalSafe(got) {
			t.Errorf("oneLine(%q) = %q is not terminal-safe", c.in, got)
		}
	}
}
