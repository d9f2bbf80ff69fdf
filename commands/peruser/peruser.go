// Package peruser runs a command over many users: it resolves the
// references through the library's one resolver, hands the users that
// exist to the command's dry-run or apply function, and reports one result
// per reference in input order as the batches settle, driving the progress
// display. A per-user command declares a Spec and renders Results; this
// package does the rest, the same way for every command.
package peruser

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/models"
)

// Result is one user's outcome.
type Result struct {
	Ref     models.UserRef
	User    models.User // zero when the reference matched nobody (or several)
	Outcome string      // the scripting contract's word: "disabled", "not enrolled", …
	Err     error       // nil when the user is done
	Extra   any         // command-specific fields, for the renderer
	Human   string      // the table-mode line(s) of a success
}

// Report receives the result for users[j] of an Apply or DryRun call.
type Report func(j int, r Result)

// Spec is a per-user command's declaration.
type Spec struct {
	Verb string // "disable": the progress label and the prefix of a lookup failure
	// Apply makes the change for users, calling report once for each, in
	// any order; the engine fills User, and Ref unless it is set. An error it returns is for
	// the run as a whole (models.ErrStopped: the database failed).
	Apply func(ctx context.Context, users []models.User, report Report) error
	// DryRun, if set, reports what Apply would do and changes nothing.
	DryRun func(ctx context.Context, users []models.User, report Report) error
}

// Output is where results go, in input order, and where the run ends.
type Output interface {
	Print(Result)
}

// Progress counts users done; the engine calls Done once per result.
type Progress interface {
	Done()
}

// Lookup resolves references: models.Service.LookupUsers.
type Lookup func(ctx context.Context, db *gorm.DB, refs []models.UserRef) ([]models.User, []error, error)

// Classify names a lookup failure in the Outcome column.
type Classify func(error) string

// Run resolves refs and runs spec over the users found (DryRun when
// dryRun), printing one Result per reference to out in input order. A
// run that stops early says how far it got: what was printed stays
// printed, since those lines may hold the secrets of users already saved.
func Run(ctx context.Context, db *gorm.DB, lookup Lookup, classify Classify, refs []models.UserRef, spec Spec, dryRun bool, out Output, progress Progress) error {
	users, errs, err := lookup(ctx, db, refs)
	if err != nil {
		return err
	}
	ord := NewOrdered(out, progress)
	ord.SetTotal(len(refs))
	var found []int
	for i, err := range errs {
		if err != nil {
			ord.Put(i, Result{Ref: refs[i], Outcome: classify(err), Err: fmt.Errorf("%s %s: %w", spec.Verb, refs[i], err)})
			continue
		}
		found = append(found, i)
	}
	foundUsers := make([]models.User, len(found))
	for j, i := range found {
		foundUsers[j] = users[i]
	}
	fn := spec.Apply
	if dryRun {
		fn = spec.DryRun
	}
	runErr := fn(ctx, foundUsers, func(j int, r Result) {
		i := found[j]
		if r.Ref == (models.UserRef{}) { // a command may name the user its own way
			r.Ref = refs[i]
		}
		r.User = users[i]
		ord.Put(i, r)
	})
	return ord.Stopped(runErr)
}

// ErrInterrupted replaces "context canceled" in messages.
var ErrInterrupted = errors.New("interrupted")

// Ordered prints results in input order although they settle batch by
// batch: the result for item i waits until every earlier one is printed.
type Ordered struct {
	out      Output
	progress Progress
	ready    map[int]Result
	next     int
	total    int
}

// NewOrdered orders results for out, counting each on progress.
func NewOrdered(out Output, progress Progress) *Ordered {
	return &Ordered{out: out, progress: progress, ready: map[int]Result{}}
}

// SetTotal tells Stopped how many items the run has (Run sets it).
func (o *Ordered) SetTotal(n int) { o.total = n }

// Stopped turns the error that ended a run early into the sentence that
// says how far it got; nil stays nil.
func (o *Ordered) Stopped(runErr error) error {
	if runErr == nil {
		return nil
	}
	if errors.Is(runErr, context.Canceled) {
		runErr = ErrInterrupted
	}
	return fmt.Errorf("stopped after %d of %d users, the rest unchanged; run it again to finish: %w", o.next, o.total, runErr)
}

// Put hands in the result for item i.
func (o *Ordered) Put(i int, r Result) {
	o.ready[i] = r
	for {
		r, ok := o.ready[o.next]
		if !ok {
			return
		}
		delete(o.ready, o.next)
		o.out.Print(r)
		o.progress.Done()
		o.next++
	}
}
