package commands

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) unlockCommand() *cli.Command {
	return &cli.Command{
		Name:      "unlock",
		Usage:     "clear a 2FA lockout after too many wrong codes",
		ArgsUsage: "USER…",
		Description: `Clears the lockout and the failure count of each USER, so codes are accepted
again at once. Unlocking a user who is not locked changes nothing but is audited.

Examples:
   totpadm unlock alice
   totpadm status --state locked -o csv | tail -n +2 | cut -d, -f2 | totpadm unlock --from-file -`,
		Flags:  []cli.Flag{fromFileFlag()},
		Action: r.unlock,
	}
}

func (r *runner) unlock(c *cli.Context) error {
	return r.runPerUser(c, perUser{verb: "unlock", key: keyNone, spec: func(sess *session) peruser.Spec {
		return peruser.Spec{Verb: "unlock", Apply: func(ctx context.Context, users []models.User, report peruser.Report) error {
			return sess.store.UnlockMany(ctx, sess.db, users, models.BulkOptions{}, func(j int, wasLocked bool, err error) {
				res := peruser.Result{Outcome: OutcomeNotLocked}
				switch {
				case err != nil:
					res.Outcome, res.Err = statusOf(err), err
				case wasLocked:
					res.Outcome = OutcomeUnlocked
				}
				res.Human = fmt.Sprintf("%s: %s", terminalSafe(users[j].String()), res.Outcome)
				report(j, res)
			})
		}}
	}})
}
