package commands_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpadm/totpadm/commands"
	"github.com/totpadm/totpadm/internal/testutil"
)

// progressBuffer is a goroutine-safe writer; with a delay it stands for a
// slow terminal or pipe, making each user's result line take that long.
type progressBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	delay time.Duration
}

func (b *progressBuffer) Write(p []byte) (int, error) {
	if b.delay > 0 {
		time.Sleep(b.delay)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *progressBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// progressUsers adds n users progress-00000… and returns the --from-file
// input naming them, followed by unknown users.
func progressUsers(t *testing.T, db *testutil.DB, n, unknown int) string {
	t.Helper()
	logins := make([]string, n)
	for i := range logins {
		logins[i] = fmt.Sprintf("progress-%05d", i)
	}
	bulkInsertUsers(t, db, logins)
	for i := range unknown {
		logins = append(logins, fmt.Sprintf("nobody-%05d", i))
	}
	return "# progress\n" + strings.Join(logins, "\n") + "\n"
}

// progressRun calls commands.Run directly, so the test decides whether
// stderr counts as a terminal.
func progressRun(t *testing.T, db *testutil.DB, stdin string, tty bool, out *progressBuffer, args ...string) (code int, stderr string, took time.Duration) {
	t.Helper()
	errOut := &progressBuffer{}
	start := time.Now()
	code = commands.Run(context.Background(), append([]string{"totpadm"}, db.Args(args...)...), commands.Streams{
		In:          strings.NewReader(stdin),
		Out:         out,
		Err:         errOut,
		ProgressTTY: tty,

		Hostname: "testhost",
	})
	took = time.Since(start)
	t.Logf("%s (progress tty %v): %v", strings.Join(args, " "), tty, took.Round(time.Millisecond))
	return code, errOut.String(), took
}

// progressNoBar fails if stderr holds anything a progress bar draws.
func progressNoBar(t *testing.T, stderr string) {
	t.Helper()
	for _, c := range []string{"\r", "%", "█", "\x1b", "users/s"} {
		if strings.Contains(stderr, c) {
			t.Errorf("stderr is not a terminal but holds progress output %q: %q", c, bulkHead(stderr))
			return
		}
	}
}

// progressLines checks that stdout is one "login: outcome" line per user.
func progressLines(t *testing.T, stdout string, n int, outcome string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d stdout lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("progress-%05d: %s", i, outcome); l != want {
			t.Fatalf("stdout line %d: %q, want %q", i+1, l, want)
		}
	}
}

func TestProgressNotOnTerminal(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		input := progressUsers(t, db, 2000, 50)

		// Long enough (a slow stdout) that a terminal would get a bar.
		t.Run("slow disable table", func(t *testing.T) {
			progressSQLiteOnly(t, db)
			out := &progressBuffer{delay: time.Millisecond}
			code, stderr, took := progressRun(t, db, input, false, out, "disable", "--yes", "--reason", "r", "--from-file", "-")
			if code != 3 {
				t.Errorf("exit %d, want 3", code)
			}
			if took < 1500*time.Millisecond {
				t.Logf("the run took only %v: the check below is weaker than intended", took)
			}
			progressLines(t, out.String(), 2000, "not enrolled")
			bulkStderrLines(t, stderr, 50, "not found")
			progressNoBar(t, stderr)
		})

		// The real binary with stderr a pipe, and stdout (a QR code per
		// user) a pipe read slowly, so that the run lasts over a second.
		t.Run("binary", func(t *testing.T) {
			progressSQLiteOnly(t, db)
			cmd := exec.Command(testutil.Binary(t), db.Args("enroll", "--no-confirm", "--from-file", "-")...)
			cmd.Dir = db.Dir
			cmd.Stdin = strings.NewReader(input)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			buf := make([]byte, 32<<10)
			for {
				n, err := pipe.Read(buf)
				stdout.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(3 * time.Millisecond)
			}
			err = cmd.Wait()
			took := time.Since(start)
			t.Logf("binary enroll of 2,050 users, %d bytes read slowly from stdout: %v", stdout.Len(), took.Round(time.Millisecond))
			if took < 1500*time.Millisecond {
				t.Logf("the run took only %v: the check below is weaker than intended", took)
			}
			if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 3 {
				t.Errorf("exit %v, want 3", err)
			}
			if n := strings.Count(stdout.String(), "enrolled, pending until"); n != 2000 {
				t.Errorf("%d users reported enrolled, want 2000", n)
			}
			bulkStderrLines(t, stderr.String(), 50, "not found")
			progressNoBar(t, stderr.String())
		})

		t.Run("enroll json", func(t *testing.T) {
			out := &progressBuffer{}
			code, stderr, _ := progressRun(t, db, input, false, out, "enroll", "--no-confirm", "--skip-enrolled", "-o", "json", "--from-file", "-")
			if code != 3 {
				t.Errorf("exit %d, want 3", code)
			}
			if n := strings.Count(out.String(), "\n"); n != 2050 {
				t.Errorf("%d results, want 2050", n)
			}
			bulkStderrLines(t, stderr, 50, "not found")
			progressNoBar(t, stderr)
		})
	})
}

// progressSQLiteOnly skips the slow runs, whose subject (when progress
// is drawn) does not depend on the database, on the other backends.
func progressSQLiteOnly(t *testing.T, db *testutil.DB) {
	t.Helper()
	if db.Backend != "sqlite" {
		t.Skip("slow run: the progress decision does not depend on the database; covered on SQLite")
	}
}

// progressToken splits what a bar wrote to stderr into "draw" (a frame
// of the bar, with the erasing of the previous frame that precedes it),
// "clear" (the bar erased) and "line" (an error message).
var progressToken = regexp.MustCompile(`(?:\r +\r)?\r[^\r\n]*users/s[^\r\n]*|\r +\r|totpadm: [^\n]*\n`)

func TestProgressOnTerminal(t *testing.T) {
	db := testutil.NewSQLite(t)
	input := progressUsers(t, db, 2000, 20)

	t.Run("long run", func(t *testing.T) {
		// About 1 ms per result line: two seconds in all.
		out := &progressBuffer{delay: time.Millisecond}
		code, stderr, took := progressRun(t, db, input, true, out, "disable", "--yes", "--reason", "r", "--from-file", "-")
		if code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
		if took < 1200*time.Millisecond {
			t.Skipf("the run took only %v; a progress bar needs more than a second", took)
		}
		progressLines(t, out.String(), 2000, "not enrolled")
		var draws, clears, errLines, clearAfterClear int
		var rates []int
		var kinds []string // "draw" and "clear", in order
		rate := regexp.MustCompile(`\(\d+/2020, (\d+) users/s\)`)
		for _, tok := range progressToken.FindAllString(stderr, -1) {
			switch {
			case strings.Contains(tok, "users/s"):
				draws++
				kinds = append(kinds, "draw")
				if m := rate.FindStringSubmatch(tok); m != nil {
					var r int
					fmt.Sscan(m[1], &r)
					rates = append(rates, r)
				}
			case strings.HasPrefix(tok, "\r"):
				clears++
				kinds = append(kinds, "clear")
			default:
				errLines++
			}
		}
		// Up to the last frame (after it, the bar is erased for good).
		lastDraw := -1
		for i, k := range kinds {
			if k == "draw" {
				lastDraw = i
			}
		}
		for i := 1; i < len(kinds) && i <= lastDraw; i++ {
			if kinds[i] == "clear" && kinds[i-1] == "clear" {
				clearAfterClear++
			}
		}
		t.Logf("stderr: %d bytes, %d bar frames, %d clears, %d error lines; e.g. %q", len(stderr), draws, clears, errLines, progressSample(stderr))

		t.Run("shows verb, count and users", func(t *testing.T) {
			if draws == 0 || !regexp.MustCompile(`disable .*\(\d+/2020, \d+ users/s\)`).MatchString(stderr) {
				t.Errorf("no progress (verb, count and users) on a terminal stderr after %v: %q", took, bulkHead(stderr))
			}
		})
		t.Run("error lines are not mixed with the bar", func(t *testing.T) {
			for _, line := range strings.Split(stderr, "\n") {
				if i := strings.Index(line, "totpadm: "); i >= 0 {
					visible := line[strings.LastIndex(line[:i+1], "\r")+1:]
					if !strings.HasPrefix(strings.TrimLeft(visible, " "), "totpadm: ") || strings.ContainsAny(line[i:], "█%") {
						t.Errorf("error line mixed with the bar: %q", line)
					}
				}
			}
			if errLines != 20 {
				t.Errorf("%d error lines, want 20", errLines)
			}
		})
		// The bar is erased before each result line; unless it is drawn
		// again, it stays erased until the next throttled frame, and the
		// next user erases it again: a bar that is almost never on screen.
		t.Run("bar is redrawn after it is erased", func(t *testing.T) {
			if clearAfterClear > 0 {
				t.Errorf("the bar was erased %d times, drawn %d times: %d times it was erased again without having been redrawn, so it is on screen only a moment every 100 ms", clears, draws, clearAfterClear)
			}
		})
		// The rate shown is done/elapsed; it must count from the start of
		// the work, not from when the bar first appeared.
		t.Run("rate is plausible", func(t *testing.T) {
			avg := float64(2020) / took.Seconds()
			for _, r := range rates {
				if float64(r) > 4*avg {
					t.Errorf("bar shows %d users/s; the run averaged %.0f users/s (rates shown: %v)", r, avg, rates)
					break
				}
			}
		})
	})

	t.Run("short run shows nothing", func(t *testing.T) {
		for _, n := range []int{1, 50, 2000} {
			lines := strings.SplitAfter(input, "\n")
			small := strings.Join(lines[:1+n], "")
			out := &progressBuffer{}
			code, stderr, took := progressRun(t, db, small, true, out, "disable", "--yes", "--reason", "r", "--from-file", "-")
			if code != 0 {
				t.Errorf("%d users: exit %d: %s", n, code, stderr)
			}
			if took >= time.Second {
				t.Logf("%d users took %v: too long to check that a short run shows nothing", n, took)
				continue
			}
			if stderr != "" {
				t.Errorf("%d users in %v: a short run printed progress: %q", n, took, bulkHead(stderr))
			}
			progressLines(t, out.String(), n, "not enrolled")
		}
	})
}

// progressSample is one frame of the bar, for the log.
func progressSample(stderr string) string {
	for _, frame := range strings.Split(stderr, "\r") {
		if strings.Contains(frame, "/") && strings.Contains(frame, "users") {
			return strings.TrimSpace(frame)
		}
	}
	return ""
}

// progressClock is a clock that moves on by step each time it is read,
// for a run whose duration is counted in clock readings, not in how fast
// the machine is: the bound on redraws below is the same on any machine.
type progressClock struct {
	mu    sync.Mutex
	start time.Time
	now   time.Time
	step  time.Duration
}

func newProgressClock(step time.Duration) *progressClock {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &progressClock{start: start, now: start, step: step}
}

func (c *progressClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func (c *progressClock) elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now.Sub(c.start)
}

// progressClockRun is progressRun on a progressClock, with stderr a
// terminal; stdout is out, or stderr itself when out is nil (one
// terminal for both). It returns what stderr received.
func progressClockRun(t *testing.T, db *testutil.DB, stdin string, clock *progressClock, out *progressBuffer, args ...string) (code int, stderr string) {
	t.Helper()
	errOut := &progressBuffer{}
	s := commands.Streams{
		In:          strings.NewReader(stdin),
		Out:         out,
		Err:         errOut,
		ProgressTTY: true,

		Hostname: "testhost",
		Now:      clock.Now,
	}
	if out == nil {
		s.Out, s.Color = errOut, true // Color: stdout is a terminal
	}
	code = commands.Run(context.Background(), append([]string{"totpadm"}, db.Args(args...)...), s)
	return code, errOut.String()
}

// progressCount counts the frames of the bar, the erasings of it that
// are not part of drawing a frame, and the error lines.
func progressCount(stderr string) (draws, clears, errLines int) {
	for _, tok := range progressToken.FindAllString(stderr, -1) {
		switch {
		case strings.Contains(tok, "users/s"):
			draws++
		case strings.HasPrefix(tok, "\r"):
			clears++
		default:
			errLines++
		}
	}
	return draws, clears, errLines
}

// progressMaxDraws is how many frames a run that lasted elapsed may draw:
// one at most every 100 ms (progressInterval), plus the first.
func progressMaxDraws(elapsed time.Duration) int {
	return int(elapsed/(100*time.Millisecond)) + 1
}

// The bar is redrawn at most every 100 ms however many users there are:
// results on stdout do not erase it unless stdout is its terminal, and a
// line that erases it (an error on stderr, a result on a shared terminal)
// leaves it to be drawn at the next interval, not at once. The run's
// clock advances 1 ms a reading, so a run of thousands of users spans
// seconds of it, the bar shows after the first second, and the bound is
// the same however fast the machine is.
func TestProgressRedrawsThrottled(t *testing.T) {
	db := testutil.NewSQLite(t)
	const users, unknown = 3000, 30
	// The unknown users (an error line each) come every 100 users.
	var sb strings.Builder
	for i, l := range strings.Split(strings.TrimSpace(progressUsers(t, db, users, 0)), "\n") {
		sb.WriteString(l + "\n")
		if i%100 == 0 && i > 0 {
			fmt.Fprintf(&sb, "nobody-%05d\n", i/100)
		}
	}
	input := sb.String()

	// The audit's case: JSON to a file, stderr a terminal. Only the
	// error lines may erase the bar.
	t.Run("stdout redirected", func(t *testing.T) {
		clock := newProgressClock(time.Millisecond)
		out := &progressBuffer{}
		code, stderr := progressClockRun(t, db, input, clock, out, "enroll", "--no-confirm", "-o", "json", "--from-file", "-")
		if code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
		if n := strings.Count(out.String(), "\n"); n != users+unknown {
			t.Errorf("%d results, want %d", n, users+unknown)
		}
		if strings.Contains(out.String(), "\r") {
			t.Errorf("stdout, not a terminal, got progress output: %q", bulkHead(out.String()))
		}
		draws, clears, errLines := progressCount(stderr)
		elapsed := clock.elapsed()
		t.Logf("%d users over %v of the run's clock: stderr %d bytes, %d frames, %d erasings, %d error lines", users+unknown, elapsed, len(stderr), draws, clears, errLines)
		if draws == 0 {
			t.Fatalf("no progress bar over %v of the run's clock: %q", elapsed, bulkHead(stderr))
		}
		if limit := progressMaxDraws(elapsed); draws > limit {
			t.Errorf("the bar was drawn %d times over %v of the run's clock, want at most %d (every 100 ms)", draws, elapsed, limit)
		}
		// Each error line may erase the bar once, and the end of the run.
		if clears > unknown+1 {
			t.Errorf("the bar was erased %d times; only the %d error lines on its terminal, and the end, may erase it", clears, unknown)
		}
		if errLines != unknown {
			t.Errorf("%d error lines, want %d", errLines, unknown)
		}
		for _, line := range strings.Split(stderr, "\n") {
			if i := strings.Index(line, "totpadm: "); i >= 0 && line[strings.LastIndex(line[:i+1], "\r")+1:i] != "" {
				t.Errorf("error line mixed with the bar: %q", line)
			}
		}
	})

	// stdout and stderr the same terminal: every result erases the bar,
	// and what is left on screen is the results and error lines, whole.
	// The table lines reach stdout one by one, the CSV records through a
	// buffer.
	for _, tc := range []struct {
		name string
		args []string
		line *regexp.Regexp
		want int
	}{
		{"table", []string{"disable", "--yes", "--reason", "r", "--from-file", "-"}, regexp.MustCompile(`^progress-\d{5}: disabled$`), users},
		{"csv", []string{"-o", "csv", "enroll", "--no-confirm", "--from-file", "-"}, regexp.MustCompile(`^(user,login,id,outcome,.*|progress-\d{5},progress-\d{5},\d+,enrolled,.*|nobody-\d{5},,,not found,.*)$`), 1 + users + unknown},
	} {
		t.Run("one terminal "+tc.name, func(t *testing.T) {
			clock := newProgressClock(time.Millisecond)
			code, term := progressClockRun(t, db, input, clock, nil, tc.args...)
			if code != 3 {
				t.Errorf("exit %d, want 3", code)
			}
			draws, clears, _ := progressCount(term)
			elapsed := clock.elapsed()
			t.Logf("%d users over %v of the run's clock: terminal %d bytes, %d frames, %d erasings", users+unknown, elapsed, len(term), draws, clears)
			if draws == 0 {
				t.Fatalf("no progress bar over %v of the run's clock: %q", elapsed, bulkHead(term))
			}
			if limit := progressMaxDraws(elapsed); draws > limit {
				t.Errorf("the bar was drawn %d times over %v of the run's clock, want at most %d (every 100 ms)", draws, elapsed, limit)
			}
			// What the screen shows of each line: what follows its last
			// carriage return.
			var results, errLines int
			errLine := regexp.MustCompile(`^totpadm: .*nobody-\d{5}.*not found`)
			for _, line := range strings.Split(term, "\n") {
				visible := line[strings.LastIndex(line, "\r")+1:]
				switch {
				case tc.line.MatchString(visible):
					results++
				case errLine.MatchString(visible):
					errLines++
				case visible != "":
					t.Fatalf("a line mixed with the bar: %q", line)
				}
			}
			if results != tc.want || errLines != unknown {
				t.Errorf("%d result lines and %d error lines on the terminal, want %d and %d", results, errLines, tc.want, unknown)
			}
		})
	}
}
