package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

// OutcomeProtected: a protected account refused without --allow-protected
// (exit 4, a conflict: the request contradicts the account's marking).
const OutcomeProtected = "protected"

const flagAllowProtected = "allow-protected"

func allowProtectedFlag() cli.Flag {
	return &cli.BoolFlag{Name: flagAllowProtected, Usage: "also act on protected accounts (--user-protected-column); on a terminal without --yes, asks to type each login"}
}

// guard is the protected-account check of one command: users whose
// protected-account column is true are refused, audited as such, unless
// --allow-protected is given; then the override is audited, and on a
// terminal without --yes the operator types each login to confirm.
type guard struct {
	action string // the audit action: disable, enroll, temp-code, backup-codes
	reason string // the command's --reason, if any
	// applies, if set, narrows the guard to the users it returns true for
	// (enroll --force: only those with an enrollment to replace).
	applies func(ctx context.Context, u models.User) (bool, error)
}

// protect wraps spec's Apply and DryRun with g.
func (r *runner) protect(c *cli.Context, sess *session, g guard, spec peruser.Spec) peruser.Spec {
	allow, yes := c.Bool(flagAllowProtected), c.Bool("yes")
	wrap := func(inner func(context.Context, []models.User, peruser.Report) error, dryRun bool) func(context.Context, []models.User, peruser.Report) error {
		if inner == nil {
			return nil
		}
		return func(ctx context.Context, users []models.User, report peruser.Report) error {
			var rest []models.User
			var index []int
			var refused, overridden []models.User
			var refusedAt []int
			for j, u := range users {
				guarded := u.Protected
				if guarded && g.applies != nil {
					var err error
					if guarded, err = g.applies(ctx, u); err != nil {
						return err
					}
				}
				if guarded && allow && !dryRun && r.streams.Interactive && !yes {
					ok, err := r.confirmProtected(ctx, r.stdinReader(), u)
					if err != nil {
						return err
					}
					guarded = guarded && !ok
					if ok {
						overridden = append(overridden, u)
					}
				} else if guarded && allow {
					if !dryRun {
						overridden = append(overridden, u)
					}
					guarded = false
				}
				if guarded {
					refused, refusedAt = append(refused, u), append(refusedAt, j)
					continue
				}
				rest, index = append(rest, u), append(index, j)
			}
			if !dryRun {
				if err := sess.svc.RecordProtected(ctx, sess.db, g.action, refused, models.OutcomeRefusedProtected, g.reason); err != nil {
					return err
				}
				reason := strings.TrimSpace(g.reason + " " + models.ProtectedOverrideSuffix)
				if err := sess.svc.RecordProtected(ctx, sess.db, g.action, overridden, models.OutcomeOverrideProtected, reason); err != nil {
					return err
				}
			}
			for k, u := range refused {
				err := fmt.Errorf("%s %s: %w", g.action, u, models.ErrProtected)
				report(refusedAt[k], peruser.Result{Outcome: OutcomeProtected, Err: err})
			}
			if len(rest) == 0 {
				return nil
			}
			return inner(ctx, rest, func(k int, res peruser.Result) { report(index[k], res) })
		}
	}
	spec.Apply = wrap(spec.Apply, false)
	spec.DryRun = wrap(spec.DryRun, true)
	return spec
}

// checkProtectedPrompt refuses, before anything is read, an override that
// would have to prompt where it cannot.
func (r *runner) checkProtectedPrompt(c *cli.Context, verb string) error {
	if c.Bool(flagAllowProtected) && r.streams.Interactive && !c.Bool("yes") && c.String(flagFromFile) == "-" {
		return usagef("%s: users come from stdin, so totpadm cannot ask there to confirm --allow-protected: pass --yes", verb)
	}
	return nil
}

// confirmProtected asks the operator to type u's login.
func (r *runner) confirmProtected(ctx context.Context, stdin *bufio.Reader, u models.User) (bool, error) {
	name := u.String()
	fmt.Fprintf(r.streams.Err, "%s is a protected account. Type its login to confirm: ", terminalSafe(name))
	answer, err := readLine(ctx, stdin)
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(r.streams.Err)
		return false, fmt.Errorf("%w; nothing changed", peruser.ErrInterrupted)
	}
	if strings.TrimRight(answer, "\r\n") != name {
		fmt.Fprintf(r.streams.Err, "%s: not confirmed, left alone.\n", terminalSafe(name))
		return false, nil
	}
	return true, nil
}

// enrolledGuard narrows a guard to users with an enrollment (enroll --force).
func enrolledGuard(sess *session) func(ctx context.Context, u models.User) (bool, error) {
	return func(ctx context.Context, u models.User) (bool, error) {
		st, err := sess.store.UserStatus(ctx, sess.db, u)
		if err != nil {
			return false, err
		}
		return st.State != models.StatusDisabled, nil
	}
}

// yesFlag skips the confirmation that --allow-protected asks for.
func yesFlag() cli.Flag {
	return &cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "with --allow-protected: do not ask to type the login"}
}

// importProtected is the guard of import --force: it reports whether the
// import for u is refused because u is a protected account with an
// enrollment to replace, auditing the refusal or the override.
func (r *runner) importProtected(c *cli.Context, sess *session, u models.User) (bool, error) {
	if !u.Protected || !c.Bool("force") {
		return false, nil
	}
	enrolled, err := enrolledGuard(sess)(c.Context, u)
	if err != nil || !enrolled {
		return false, err
	}
	allowed := c.Bool(flagAllowProtected)
	if allowed && r.streams.Interactive && !c.Bool("yes") {
		if allowed, err = r.confirmProtected(c.Context, r.stdinReader(), u); err != nil {
			return false, err
		}
	}
	users := []models.User{u}
	if !allowed {
		return true, sess.svc.RecordProtected(c.Context, sess.db, models.ActionImport, users, models.OutcomeRefusedProtected, "")
	}
	return false, sess.svc.RecordProtected(c.Context, sess.db, models.ActionImport, users, models.OutcomeOverrideProtected, models.ProtectedOverrideSuffix)
}
