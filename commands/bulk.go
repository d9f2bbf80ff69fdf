package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

// perUser declares a command that acts on each of USER… and --from-file:
// what key it needs, its result columns, and the engine spec that does its
// work. runPerUser does the rest: reading and resolving the users,
// ordering, the tally and exit code, progress.
type perUser struct {
	verb    string
	key     keyUse
	columns []string // result columns after the common ones
	dryRun  bool     // run the spec's DryRun instead of Apply
	// before, if set, runs once the database is open and before any user is
	// resolved; false ends the run without a change (a declined prompt).
	before func(sess *session, refs []models.UserRef) (bool, error)
	spec   func(sess *session) peruser.Spec
}

func (r *runner) runPerUser(c *cli.Context, p perUser) error {
	refs, err := r.userRefs(c, c.Args().Slice())
	if err != nil {
		return err
	}
	sess, err := r.open(c, p.key)
	if err != nil {
		return err
	}
	defer sess.close()
	if p.before != nil {
		if proceed, err := p.before(sess, refs); err != nil || !proceed {
			return err
		}
	}
	out := r.newResults(sess.format, len(refs), p.verb, p.columns...)
	err = peruser.Run(c.Context, sess.db, sess.svc.LookupUsers, statusOf, refs, p.spec(sess), p.dryRun, out, out.progress)
	return out.end(err)
}

// results prints per-user results as the engine hands them over, in input
// order, and drives the progress bar.
type results struct {
	rep      *reporter
	progress *progress
}

// newResults makes the reporter and the progress bar of a run over total
// users.
func (r *runner) newResults(format string, total int, verb string, columns ...string) *results {
	rep := r.newReporter(format, columns...)
	return &results{rep: rep, progress: r.newProgress(total, verb)}
}

// Print reports one result. Lines for the bar's terminal erase the bar on
// their way (see terminalWriter), except JSON and CSV records, which
// stdout gets through a buffer: when stdout is that terminal, the bar is
// erased before each record and the record flushed, so that no frame
// lands in the middle of a line.
func (o *results) Print(res peruser.Result) {
	extra, _ := res.Extra.(record)
	buffered := o.progress.onStdout && o.rep.rw != nil
	o.progress.hold(buffered)
	o.rep.report(outcome{ref: res.Ref, user: res.User, status: res.Outcome, err: res.Err, extra: extra}, res.Human)
	if buffered {
		o.rep.rw.flush() // a failed write sticks: end reports it
	}
	o.progress.release()
}

// end closes the run. What was reported is always flushed — on an
// interrupted run too, since those lines may hold secrets and backup
// codes of users already saved — and runErr (already the engine's "stopped
// after …" sentence) wins over the tally.
func (o *results) end(runErr error) error {
	o.progress.finish()
	err := o.rep.finish()
	if runErr != nil {
		return runErr
	}
	return err
}
