package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

// resolved is the users a multi-user command acts on: refs looked up in
// batches, with the index of every ref that matched somebody.
type resolved struct {
	refs  []models.UserRef
	users []models.User
	found []int // indexes into refs/users of the refs that matched
	errs  []error
}

func (r *runner) resolve(c *cli.Context, sess *session, refs []models.UserRef) (*resolved, error) {
	users, errs, err := sess.svc.LookupUsers(c.Context, sess.db, refs)
	if err != nil {
		return nil, err
	}
	res := &resolved{refs: refs, users: users, errs: errs}
	for i, err := range errs {
		if err == nil {
			res.found = append(res.found, i)
		}
	}
	return res, nil
}

// foundUsers are the users that matched, in input order.
func (res *resolved) foundUsers() []models.User {
	out := make([]models.User, len(res.found))
	for j, i := range res.found {
		out[j] = res.users[i]
	}
	return out
}

// inOrder prints per-user results in input order although they settle
// batch by batch, and drives the progress bar.
type inOrder struct {
	rep      *reporter
	ready    map[int]pendingResult
	next     int
	total    int
	progress *progress
}

type pendingResult struct {
	o     outcome
	human string
}

func (r *runner) inOrder(rep *reporter, res *resolved, verb string) *inOrder {
	out := newInOrder(r, rep, len(res.refs), verb)
	for i, err := range res.errs {
		if err != nil {
			out.put(i, outcome{ref: res.refs[i], status: statusOf(err), err: fmt.Errorf("%s %s: %w", verb, res.refs[i], err)}, "")
		}
	}
	return out
}

func (o *inOrder) put(i int, out outcome, human string) {
	o.ready[i] = pendingResult{out, human}
	for {
		p, ok := o.ready[o.next]
		if !ok {
			return
		}
		delete(o.ready, o.next)
		o.progress.clear()
		o.rep.report(p.o, p.human)
		o.progress.add()
		o.next++
	}
}

func newInOrder(r *runner, rep *reporter, total int, verb string) *inOrder {
	return &inOrder{rep: rep, ready: map[int]pendingResult{}, total: total, progress: r.newProgress(total, verb)}
}

func (o *inOrder) finish() error {
	o.progress.finish()
	return o.rep.finish()
}

// end closes a bulk run. What was reported is always flushed — on an
// interrupted run too, since those lines may hold secrets and backup
// codes of users already saved — and a run that stopped early says how
// far it got.
func (o *inOrder) end(runErr error) error {
	err := o.finish()
	if runErr == nil {
		return err
	}
	if errors.Is(runErr, context.Canceled) {
		runErr = errInterrupted
	}
	return fmt.Errorf("stopped after %d of %d users, the rest unchanged; run it again to finish: %w", o.next, o.total, runErr)
}

// errInterrupted replaces "context canceled" in messages.
var errInterrupted = errors.New("interrupted")

// progress is a progress bar on stderr, shown only when stderr is a
// terminal and the work has already taken more than a second: short runs
// and scripts see nothing of it. The bar exists from the start, so its
// rate and time estimates count from when the work began; until the
// second has passed it writes into a closed gate.
type progress struct {
	enabled  bool
	done     int
	start    time.Time
	bar      *progressbar.ProgressBar
	gate     *gateWriter
	visible  bool      // drawn and not erased since
	lastDraw time.Time // for throttling redraws
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

func (r *runner) newProgress(total int, verb string) *progress {
	p := &progress{enabled: r.streams.ProgressTTY && total > 1, start: time.Now()}
	if !p.enabled {
		return p
	}
	p.gate = &gateWriter{w: r.streams.Err}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.gate),
		progressbar.OptionSetDescription(verb),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("users"),
		progressbar.OptionClearOnFinish(),
	)
	p.bar.Set(0)
	return p
}

// add counts one user done and redraws: at once when a printed line has
// just erased the bar, otherwise at most every progressInterval.
func (p *progress) add() {
	p.done++
	if !p.enabled {
		return
	}
	if !p.gate.open && time.Since(p.start) >= progressDelay {
		p.gate.open = true
	}
	if !p.gate.open || (p.visible && time.Since(p.lastDraw) < progressInterval) {
		return
	}
	p.bar.Set(p.done)
	p.visible, p.lastDraw = true, time.Now()
}

// clear removes the bar before a line is printed on the same terminal.
func (p *progress) clear() {
	if p.visible {
		p.bar.Clear()
		p.visible = false
	}
}

func (p *progress) finish() {
	if p.enabled && p.gate.open {
		p.bar.Finish()
	}
}
