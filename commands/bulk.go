package commands

import (
	"fmt"
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
	progress *progress
}

type pendingResult struct {
	o     outcome
	human string
}

func (r *runner) inOrder(rep *reporter, res *resolved, verb string) *inOrder {
	out := &inOrder{rep: rep, ready: map[int]pendingResult{}, progress: r.newProgress(len(res.refs), verb)}
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

func (o *inOrder) finish() error {
	o.progress.finish()
	return o.rep.finish()
}

// progress is a progress bar on stderr, shown only when stderr is a
// terminal and the work has already taken more than a second: short runs
// and scripts see nothing of it.
type progress struct {
	enabled bool
	total   int
	done    int
	verb    string
	start   time.Time
	bar     *progressbar.ProgressBar
	r       *runner
}

const progressDelay = time.Second

func (r *runner) newProgress(total int, verb string) *progress {
	return &progress{enabled: r.streams.ProgressTTY && total > 1, total: total, verb: verb, start: time.Now(), r: r}
}

func (p *progress) add() {
	p.done++
	if !p.enabled {
		return
	}
	if p.bar == nil {
		if time.Since(p.start) < progressDelay {
			return
		}
		p.bar = progressbar.NewOptions(p.total,
			progressbar.OptionSetWriter(p.r.streams.Err),
			progressbar.OptionSetDescription(p.verb),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("users"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		p.bar.Set(p.done)
		return
	}
	p.bar.Add(1)
}

// clear removes the bar before a line is printed on the same terminal.
func (p *progress) clear() {
	if p.bar != nil {
		p.bar.Clear()
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
