package peruser_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

type printed struct{ results []peruser.Result }

func (p *printed) Print(r peruser.Result) { p.results = append(p.results, r) }

type counted struct{ n int }

func (c *counted) Done() { c.n++ }

func classify(err error) string {
	if errors.Is(err, models.ErrUserNotFound) {
		return "not found"
	}
	return "error"
}

// Results come out in input order however the command reports them,
// lookup failures where they stand, each counted once on the progress
// display; DryRun runs instead of Apply when asked; a run that stops says
// how far it got.
func TestRun(t *testing.T) {
	db := testutil.NewSQLite(t)
	cfg := models.DefaultConfig()
	svc, err := models.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	refs := []models.UserRef{{Value: "carol"}, {Value: "nobody"}, {Value: "alice"}, {ByID: true, Value: "2"}}
	reverse := func(outcome string) func(context.Context, []models.User, peruser.Report) error {
		return func(_ context.Context, users []models.User, report peruser.Report) error {
			for j := len(users) - 1; j >= 0; j-- { // settle out of order
				report(j, peruser.Result{Outcome: outcome})
			}
			return nil
		}
	}
	tests := []struct {
		name     string
		dryRun   bool
		apply    func(context.Context, []models.User, peruser.Report) error
		outcomes []string
		err      string
	}{
		{name: "apply", apply: reverse("done"), outcomes: []string{"done", "not found", "done", "done"}},
		{name: "dry run", dryRun: true, apply: reverse("done"), outcomes: []string{"would", "not found", "would", "would"}},
		{name: "stopped", apply: func(_ context.Context, users []models.User, report peruser.Report) error {
			report(0, peruser.Result{Outcome: "done"})
			return context.Canceled
		}, outcomes: []string{"done", "not found"}, err: "stopped after 2 of 4 users, the rest unchanged; run it again to finish: interrupted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, progress := &printed{}, &counted{}
			spec := peruser.Spec{Verb: "test", Apply: tc.apply, DryRun: reverse("would")}
			err := peruser.Run(context.Background(), db.Gorm, svc.LookupUsers, classify, refs, spec, tc.dryRun, out, progress)
			if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if len(out.results) != len(tc.outcomes) || progress.n != len(tc.outcomes) {
				t.Fatalf("%d results, %d counted; want %d", len(out.results), progress.n, len(tc.outcomes))
			}
			for i, r := range out.results {
				if r.Outcome != tc.outcomes[i] || r.Ref != refs[i] {
					t.Errorf("result %d: %+v, want outcome %q for %v", i, r, tc.outcomes[i], refs[i])
				}
				if r.Outcome == "not found" && (r.Err == nil || !strings.HasPrefix(r.Err.Error(), "test nobody: ")) {
					t.Errorf("lookup failure %v, want it named with the verb and reference", r.Err)
				}
				if r.Outcome != "not found" && r.User.ID == "" {
					t.Errorf("result %d has no user", i)
				}
			}
		})
	}
}
