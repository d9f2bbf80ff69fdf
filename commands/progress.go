package commands

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a progress bar on stderr, shown only when stderr is a
// terminal and the work has already taken more than a second: short runs
// and scripts see nothing of it. The bar exists from the start, so its
// rate and time estimates count from when the work began; until the
// second has passed it writes into a closed gate.
//
// The bar shares its terminal with what the run prints there: the
// "totpadm:" lines on stderr, and the results as well when stdout is a
// terminal too (taken to be the same one). Until the run ends, those
// streams go through a terminalWriter, which erases the bar before
// writing; nothing else erases it, so a run whose results go to a file or
// a pipe leaves the bar alone. The bar is drawn at most once every
// progressInterval of the run's clock (Streams.Now), however many users
// there are and however many lines erase it: by add as users are done,
// or, when a line has erased it and the run then pauses, by a timer at
// the next interval, so that it does not stay off the screen until the
// next user.
type progress struct {
	enabled  bool
	onStdout bool // stdout is a terminal too, and its lines erase the bar
	now      func() time.Time
	start    time.Time
	bar      *progressbar.ProgressBar
	gate     *gateWriter
	display  *display

	mu       sync.Mutex // the fields below, and every write to the terminal
	done     int
	visible  bool      // drawn and not erased since
	drawn    int       // the count the bar on screen shows
	lastDraw time.Time // for throttling redraws
	midLine  bool      // the last line printed on the terminal is unfinished
	held     int       // a result is being printed: no drawing
	timer    *time.Timer
	finished bool
}

const (
	progressDelay    = time.Second
	progressInterval = 100 * time.Millisecond
)

// gateWriter discards writes until opened.
type gateWriter struct {
	w    io.Writer
	open bool
}

func (g *gateWriter) Write(b []byte) (int, error) {
	if !g.open {
		return len(b), nil
	}
	return g.w.Write(b)
}

// newProgress makes the bar for total users. When it may be shown, the
// runner's stderr, and its stdout if that is a terminal, write through a
// terminalWriter until finish.
func (r *runner) newProgress(total int, verb string) *progress {
	p := &progress{enabled: r.streams.ProgressTTY && total > 1, now: r.streams.Now}
	if p.now == nil {
		p.now = time.Now
	}
	p.start = p.now()
	if !p.enabled {
		return p
	}
	p.gate = &gateWriter{w: r.display.err}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.gate),
		progressbar.OptionSetDescription(verb),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("users"),
		progressbar.OptionClearOnFinish(),
	)
	p.bar.Set(0)
	p.onStdout = r.stdoutTerminal()
	p.display = r.display
	r.display.bar.Store(p)
	return p
}

// display is the run's terminal as the progress bar shares it: Run wraps
// stdout and stderr once, before anything is written, in terminalWriters
// that ask the display whether a bar is up. A bar registers itself here
// and leaves at finish; the streams themselves never change mid-run, so
// no output depends on which writer a piece of code picked up when.
type display struct {
	out, err io.Writer // the streams as given, for the bar itself
	bar      atomic.Pointer[progress]
}

func newDisplay(s *Streams) *display {
	d := &display{out: s.Out, err: s.Err}
	s.Out = &terminalWriter{d: d, w: s.Out, stdout: true}
	s.Err = &terminalWriter{d: d, w: s.Err}
	return d
}

// stdoutTerminal tells whether stdout is a terminal. Color says so, but
// NO_COLOR turns it off, hence the look at the file itself.
func (r *runner) stdoutTerminal() bool {
	if r.streams.Color {
		return true
	}
	f, ok := r.display.out.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWriter is stdout or stderr of a run. While a bar is up on its
// terminal it erases the bar before each write and leaves drawing it again
// to the next interval; otherwise it writes straight through.
type terminalWriter struct {
	d      *display
	w      io.Writer
	stdout bool // stdout shares the bar's terminal only when it is one
}

// Fd is the underlying file's, so terminal checks see through the wrapper.
func (t *terminalWriter) Fd() uintptr {
	if f, ok := t.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

func (t *terminalWriter) Write(b []byte) (int, error) {
	p := t.d.bar.Load()
	if p == nil || t.stdout && !p.onStdout {
		return t.w.Write(b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	n, err := t.w.Write(b)
	if n > 0 {
		p.midLine = b[n-1] != '\n'
	}
	p.scheduleLocked(p.now())
	return n, err
}

// Done counts one user done and redraws the bar if the last frame is
// progressInterval old.
func (p *progress) Done() {
	if !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.drawLocked()
}

// advanceTo counts users done up to n, for work that reports totals rather
// than single users.
func (p *progress) advanceTo(n int) {
	if !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > p.done {
		p.done = n
		p.drawLocked()
	}
}

// hold keeps the bar from being drawn while one result is printed on
// stdout when that is the bar's terminal, and erases it first if erase:
// for output that reaches the terminal other than through a
// terminalWriter. Results printed elsewhere do not hold it up: a slow
// pipe on stdout does not keep the bar off the screen.
func (p *progress) hold(erase bool) {
	if !p.enabled || !p.onStdout {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held++
	if erase {
		p.clearLocked()
	}
}

func (p *progress) release() {
	if !p.enabled || !p.onStdout {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held--
}

// drawLocked draws the bar unless it was drawn less than
// progressInterval ago (then the timer will, so that the last count of a
// burst is shown too), or a line is being printed on the terminal.
func (p *progress) drawLocked() {
	if p.finished {
		return
	}
	now := p.now()
	if !p.gate.open {
		if now.Sub(p.start) < progressDelay {
			return
		}
		p.gate.open = true
	}
	if p.held > 0 || p.midLine {
		return
	}
	if !p.lastDraw.IsZero() && now.Sub(p.lastDraw) < progressInterval {
		p.scheduleLocked(now)
		return
	}
	p.bar.Set(p.done)
	p.visible, p.lastDraw, p.drawn = true, now, p.done
}

// current: the bar is on screen and shows the count.
func (p *progress) currentLocked() bool { return p.visible && p.drawn == p.done }

// scheduleLocked sets the timer to draw the bar at the next interval, when
// it is erased or behind the count.
func (p *progress) scheduleLocked(now time.Time) {
	if p.currentLocked() || p.finished || p.timer != nil || !p.gate.open {
		return
	}
	wait := max(0, min(progressInterval, progressInterval-now.Sub(p.lastDraw)))
	p.timer = time.AfterFunc(wait, p.tick)
}

func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if !p.currentLocked() {
		p.drawLocked()
	}
}

// clearLocked removes the bar before a line is printed on its terminal.
func (p *progress) clearLocked() {
	if p.visible {
		p.bar.Clear()
		p.visible = false
	}
}

// finish erases the bar for good and gives the runner its streams back.
func (p *progress) finish() {
	if !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if p.visible {
		p.bar.Finish()
	}
	p.visible, p.finished = false, true
	p.display.bar.CompareAndSwap(p, nil)
}
