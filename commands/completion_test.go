package commands_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

var completionCommands = []string{"enroll", "verify", "status", "backup-codes", "disable", "unlock", "audit", "migrate", "keygen", "rotate-key", "doctor", "completion", "man"}

// The bash script really completes, by asking the binary itself.
func TestCompletionBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	bin := testutil.Binary(t)
	cases := []struct {
		words []string
		want  string
	}{
		{[]string{bin, "en"}, "enroll"},
		{[]string{bin, "rot"}, "rotate-key"},
		{[]string{bin, "disable", "--re"}, "--reason"},
		{[]string{bin, "enroll", "--skip"}, "--skip-enrolled"},
		{[]string{bin, "--us"}, "--users-table"},
	}
	for _, c := range cases {
		script := `source <("$BIN" completion bash); COMP_WORDS=(` + strings.Join(quoteAll(c.words), " ") + `); COMP_CWORD=` +
			itoa(len(c.words)-1) + `; _totpadm_complete; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(cmd.Environ(), "BIN="+bin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", c.words, err, out)
		}
		if got := strings.Fields(string(out)); len(got) == 0 || !contains(got, c.want) {
			t.Errorf("completing %v: got %q, want %q among them", c.words[1:], got, c.want)
		}
	}
}

func TestCompletionScriptsAndManPage(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		res := testutil.Run(t, testutil.Options{}, "completion", shell)
		if res.Code != 0 || !strings.Contains(res.Stdout, "totpadm") {
			t.Errorf("completion %s: exit %d: %s", shell, res.Code, res.Stderr)
		}
		// Each script asks the binary, which knows the commands
		// (TestCompleteShells runs them).
		if !strings.Contains(res.Stdout, "__complete --") {
			t.Errorf("completion %s does not ask totpadm __complete", shell)
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}} {
		if res := testutil.Run(t, testutil.Options{}, args...); res.Code != 2 || strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, res.Code, res.Stderr)
		}
	}
	res := testutil.Run(t, testutil.Options{}, "man")
	if res.Code != 0 || !strings.Contains(res.Stdout, ".TH totpadm 8") {
		t.Fatalf("man: exit %d, starts %q", res.Code, res.Stdout[:min(40, len(res.Stdout))])
	}
	for _, cmd := range completionCommands {
		if !strings.Contains(res.Stdout, "\n.SH "+cmd) {
			t.Errorf("man page lacks a section for %s", cmd)
		}
	}
	if !strings.Contains(res.Stdout, "Examples:") {
		t.Error("man page lacks the commands' examples")
	}
}

func quoteAll(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
