package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) disableCommand() *cli.Command {
	return &cli.Command{
		Name:      "disable",
		Usage:     "force-disable 2FA for locked-out users (deletes the secret and backup codes)",
		ArgsUsage: "USER…",
		Description: `Removes 2FA from each USER: deletes the TOTP credential and every backup code,
and records who did it and why in the audit log. The user can then log in with
the password alone until enrolled again. Asks for confirmation on a terminal;
elsewhere --yes is required. A user without 2FA is reported as "not enrolled"
and counts as done, so a bulk run can be repeated safely.

Examples:
   totpadm disable alice --reason "lost phone, ticket 4521"
   totpadm disable --dry-run --reason "offboarding" --from-file leavers.txt
   totpadm disable --yes --reason "offboarding" --from-file leavers.txt
   totpadm --user-protected-column is_superuser disable --allow-protected --reason "ticket 9" root`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why (required; recorded in the audit log)"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would change, change nothing"},
			allowProtectedFlag(),
			fromFileFlag(),
		},
		Action: r.disable,
	}
}

func (r *runner) disable(c *cli.Context) error {
	reason := strings.TrimSpace(c.String("reason"))
	if reason == "" {
		return usagef("disable: --reason is required (it is recorded in the audit log)")
	}
	dryRun, yes := c.Bool("dry-run"), c.Bool("yes")
	if !dryRun && !yes && !r.streams.Interactive {
		return usagef("disable: not on a terminal, so totpadm cannot ask for confirmation: pass --yes (or --dry-run to preview)")
	}
	if !dryRun && !yes && c.String(flagFromFile) == "-" {
		return usagef("disable: users come from stdin, so totpadm cannot ask for confirmation there: pass --yes")
	}
	if err := r.checkProtectedPrompt(c, "disable"); err != nil {
		return err
	}
	p := perUser{verb: "disable", key: keyNone, dryRun: dryRun, spec: func(sess *session) peruser.Spec {
		return r.protect(c, sess, guard{action: models.ActionDisable, reason: reason}, peruser.Spec{
			Verb: "disable",
			Apply: func(ctx context.Context, users []models.User, report peruser.Report) error {
				return sess.store.DisableMany(ctx, sess.db, users, reason, models.BulkOptions{}, func(j int, err error) {
					res := peruser.Result{Outcome: OutcomeDisabled}
					switch {
					case errors.Is(err, models.ErrNotEnrolled):
						res.Outcome = OutcomeNotEnrolled // already in the wanted state: done, so re-runs succeed
					case err != nil:
						res.Outcome, res.Err = statusOf(err), err
					}
					res.Human = fmt.Sprintf("%s: %s", terminalSafe(users[j].String()), res.Outcome)
					report(j, res)
				})
			},
			DryRun: func(ctx context.Context, users []models.User, report peruser.Report) error {
				for j, u := range users {
					res := peruser.Result{Outcome: OutcomeWouldDisable}
					st, err := sess.store.UserStatus(ctx, sess.db, u)
					switch {
					case err != nil:
						res.Outcome, res.Err = OutcomeError, err
					case st.State == models.StatusDisabled:
						res.Outcome = OutcomeNotEnrolled
					}
					res.Human = fmt.Sprintf("%s: %s (dry run)", terminalSafe(u.String()), res.Outcome)
					report(j, res)
				}
				return nil
			},
		})
	}}
	if !dryRun && !yes {
		p.before = func(sess *session, refs []models.UserRef) (bool, error) { return r.confirmDisable(c, refs) }
	}
	return r.runPerUser(c, p)
}

// confirmDisable asks on the terminal before anything is changed.
func (r *runner) confirmDisable(c *cli.Context, refs []models.UserRef) (bool, error) {
	names := make([]string, len(refs))
	for i, ref := range refs {
		names[i] = ref.String()
	}
	list := strings.Join(names, ", ")
	if len(names) > 5 {
		list = fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
	}
	fmt.Fprintf(r.streams.Err, "Disable 2FA for %s? This deletes the TOTP secret and backup codes. [y/N] ", terminalSafe(list))
	answer, err := readLine(c.Context, r.stdinReader())
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(r.streams.Err)
		return false, fmt.Errorf("%w; nothing changed", peruser.ErrInterrupted)
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		fmt.Fprintln(r.streams.Err, "Nothing changed.")
		return false, nil
	}
	return true, nil
}
