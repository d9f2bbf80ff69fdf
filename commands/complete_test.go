package commands_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// completeWords asks totpadm for the completions of the last word, as the
// shell scripts do.
func completeWords(t *testing.T, words ...string) []string {
	t.Helper()
	res := testutil.Run(t, testutil.Options{}, append([]string{"__complete", "--"}, words...)...)
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("__complete %q: exit %d, stderr %q", words, res.Code, res.Stderr)
	}
	return strings.Fields(res.Stdout)
}

func TestCompleteCommandsFlagsAndValues(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"st"}, []string{"status"}},
		{[]string{"l"}, []string{"list"}},
		{[]string{"config", ""}, []string{"show"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"status", "--s"}, []string{"--state", "--summary", "--store", "--skew"}},
		{[]string{"--store", ""}, []string{"totpadm", "django-otp"}},
		{[]string{"status", "--state", ""}, []string{"enabled", "pending", "disabled", "locked"}},
		{[]string{"status", "--state", "l"}, []string{"locked"}},
		{[]string{"status", "--state=p"}, []string{"--state=pending"}},
		{[]string{"-o", ""}, []string{"table", "json", "csv"}},
		{[]string{"status", "alice", "--output", "c"}, []string{"csv"}},
		{[]string{"status", "--output", "=", "j"}, []string{"json"}}, // bash splits at "="
		{[]string{"status", "--output", "="}, []string{"table", "json", "csv"}},
		{[]string{"enroll", "--algorithm", "SHA5"}, []string{"SHA512"}},
		{[]string{"audit", "--action", "ro"}, []string{"rotate-key"}},
		{[]string{"--db", ""}, nil}, // a file: the shell's own completion
		{[]string{"enroll", "--from-file", ""}, nil},
		{[]string{"nosuchcommand", ""}, nil},
	} {
		if got := completeWords(t, tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.words, got, tc.want)
		}
	}
	if got := completeWords(t, ""); !slices.Contains(got, "enroll") || slices.Contains(got, "__complete") {
		t.Errorf("commands: %q", got)
	}
}

func TestCompleteUsers(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, login := range []string{"a_b", "axb", "anna", "two words", "evil\x1b]0;x\x07", "-x"} {
			db.Exec(t, "INSERT INTO users (username) VALUES (?)", login)
		}
		for _, tc := range []struct {
			words []string
			want  []string
		}{
			{db.Args("status", "a"), []string{"a_b", "alice", "anna", "axb"}},
			{db.Args("status", "al"), []string{"alice"}},
			{db.Args("disable", "--reason", "x", "alice", "b"), []string{"bob"}},
			{db.Args("verify", "c"), []string{"carol"}},
			{db.Args("verify", "carol", "c"), nil}, // the code, not a user
			{db.Args("status", "a_"), []string{"a_b"}},
			{db.Args("status", "zz"), nil},
			// Global flags after the command count too.
			{append([]string{"status", "--db", db.Spec}, "b"), []string{"bob"}},
			// A login the shell could not take as one word, or that would
			// reach the terminal as a control sequence, is not offered.
			{db.Args("status", "t"), nil},
			{db.Args("status", "e"), nil},
			// A login that starts with "-" only after "--".
			{db.Args("status", "--", "-"), []string{"-x"}},
		} {
			// In the database's order, which depends on its collation.
			got := completeWords(t, tc.words...)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.words[len(tc.words)-2:], got, tc.want)
			}
		}

		// The users-table mapping applies.
		db.Exec(t, "CREATE TABLE staff (sid INTEGER PRIMARY KEY, handle VARCHAR(100))")
		db.Exec(t, "INSERT INTO staff (sid, handle) VALUES (1, 'zoe'), (2, 'zack')")
		got := completeWords(t, db.Args("--users-table", "staff", "--user-id-column", "sid", "--user-login-column", "handle", "unlock", "z")...)
		if !slices.Equal(got, []string{"zack", "zoe"}) {
			t.Errorf("mapped table: %q", got)
		}

		// At most 50.
		for i := range 60 {
			db.Exec(t, "INSERT INTO users (username) VALUES (?)", "u"+string(rune('A'+i/26))+string(rune('a'+i%26)))
		}
		if got := completeWords(t, db.Args("status", "u")...); len(got) != 50 || got[0] != "uAa" {
			t.Errorf("%d logins offered (first %q), want the first 50", len(got), got[:min(1, len(got))])
		}
	})
}

// Completing never creates the demo database, and uses it when it exists.
func TestCompleteDemoDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if got := completeWords(t, "status", "a"); len(got) != 0 {
		t.Errorf("got %q before the demo database exists", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("completion created %v", entries)
	}
	if res := testutil.Run(t, testutil.Options{}, "status"); res.Code != 0 {
		t.Fatalf("status: exit %d: %s", res.Code, res.Stderr)
	}
	if got := completeWords(t, "status", "a"); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("demo database: %q", got)
	}
}

// A database that accepts the connection and never answers must not hang
// the shell: completion gives up after its timeout and offers nothing.
func TestCompleteUnreachableDatabase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never written to
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	addr := ln.Addr().String()
	for _, spec := range []string{"postgres://app@" + addr + "/app?sslmode=disable", "mysql://app@" + addr + "/app"} {
		start := time.Now()
		got := completeWords(t, "--db", spec, "status", "a")
		elapsed := time.Since(start)
		if len(got) != 0 {
			t.Errorf("%s: got %q", spec, got)
		}
		if elapsed > 3*time.Second {
			t.Errorf("%s: completion took %v; the shell would hang", spec, elapsed)
		}
		t.Logf("%s: gave up after %v", spec, elapsed.Round(10*time.Millisecond))
	}
}

// The scripts complete in the real shells, asking the built binary.
func TestCompleteShells(t *testing.T) {
	bin := testutil.Binary(t)
	db := testutil.NewSQLite(t)
	binDir := filepath.Dir(bin)

	t.Run("bash", func(t *testing.T) {
		if _, err := exec.LookPath("bash"); err != nil {
			t.Skip("bash not installed")
		}
		for _, tc := range []struct {
			words []string
			want  []string
		}{
			{[]string{"--db", db.Spec, "status", "al"}, []string{"alice"}},
			{[]string{"status", "--state", "lo"}, []string{"locked"}},
			{[]string{"status", "--output", "=", "j"}, []string{"json"}},
			{[]string{"status", "--output", "="}, []string{"table", "json", "csv"}},
		} {
			words := append([]string{bin}, tc.words...)
			script := `source <("$BIN" completion bash); COMP_WORDS=(` + strings.Join(quoteAll(words), " ") + `); COMP_CWORD=` +
				itoa(len(words)-1) + `; _totpadm_complete; printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command("bash", "-c", script)
			cmd.Env = append(cmd.Environ(), "BIN="+bin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", tc.words, err, out)
			}
			if got := strings.Fields(string(out)); !slices.Equal(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.words, got, tc.want)
			}
		}
	})

	t.Run("fish", func(t *testing.T) {
		if _, err := exec.LookPath("fish"); err != nil {
			t.Skip("fish not installed (apt-get install fish)")
		}
		for _, tc := range []struct {
			line string
			want []string
		}{
			{"totpadm --db " + db.Spec + " status al", []string{"alice"}},
			{"totpadm status --state lo", []string{"locked"}},
			{"totpadm --output=j", []string{"--output=json"}},
		} {
			cmd := exec.Command("fish", "--no-config", "-c", `totpadm completion fish | source; complete -C "$LINE"`)
			cmd.Env = append(cmd.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"), "LINE="+tc.line)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%q: %v\n%s", tc.line, err, out)
			}
			if got := strings.Fields(string(out)); !slices.Equal(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
			}
		}
	})

	// zsh completes only inside its line editor: type into an interactive
	// zsh in tmux and read the screen.
	t.Run("zsh", func(t *testing.T) {
		for _, tool := range []string{"zsh", "tmux"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s not installed", tool)
			}
		}
		socket := "totpadm-test-" + itoa(os.Getpid())
		tmux := func(args ...string) string {
			out, err := exec.Command("tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("tmux %v: %v: %s", args, err, out)
			}
			return string(out)
		}
		tmux("new-session", "-d", "-x", "200", "-y", "10", "-s", "t", "env", "PATH="+binDir+":"+os.Getenv("PATH"), "zsh", "-f", "-i")
		t.Cleanup(func() { exec.Command("tmux", "-L", socket, "kill-server").Run() })
		screen := func(want string) string {
			deadline := time.Now().Add(10 * time.Second)
			for {
				s := tmux("capture-pane", "-p", "-t", "t")
				if strings.Contains(s, want) || time.Now().After(deadline) {
					return s
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		tmux("send-keys", "-t", "t", "autoload -U compinit && compinit -u && source <(totpadm completion zsh) && echo READY", "Enter")
		screen("\nREADY")
		tmux("send-keys", "-t", "t", "totpadm --db "+db.Spec+" status --state lo", "Tab")
		screen("locked")
		tmux("send-keys", "-t", "t", " al", "Tab")
		want := "status --state locked alice"
		if s := screen(want); !strings.Contains(s, want) {
			t.Errorf("zsh did not complete to %q:\n%s", want, s)
		}
	})
}
