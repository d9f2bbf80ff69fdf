package commands

import (
	"context"
	"errors"
	"fmt"

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
		o.print(p)
		o.next++
	}
}

// print reports one result and counts it on the progress bar. Lines for
// the bar's terminal erase the bar on their way (see terminalWriter),
// except JSON and CSV records, which stdout gets through a buffer: when
// stdout is that terminal, the bar is erased before each record and the
// record flushed, so that no frame lands in the middle of a line.
func (o *inOrder) print(p pendingResult) {
	buffered := o.progress.onStdout && o.rep.rw != nil
	o.progress.hold(buffered)
	o.rep.report(p.o, p.human)
	if buffered {
		o.rep.rw.flush() // a failed write sticks: finish reports it
	}
	o.progress.release()
	o.progress.add()
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
