package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) backupCodesCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup-codes",
		Usage:     "invalidate a user's backup codes and print a new set",
		ArgsUsage: "USER…",
		Description: `Replaces every backup code of each USER with a new set, printed once. The old
codes stop working at once, used or not. Running it again is safe: each run
simply issues a fresh set.

Examples:
   totpadm backup-codes alice
   totpadm backup-codes -o json --from-file users.txt
   totpadm --user-protected-column is_superuser backup-codes --allow-protected --yes root`,
		Flags:  []cli.Flag{allowProtectedFlag(), yesFlag(), fromFileFlag()},
		Action: r.backupCodes,
	}
}

func (r *runner) backupCodes(c *cli.Context) error {
	if err := r.checkProtectedPrompt(c, "backup-codes"); err != nil {
		return err
	}
	return r.runPerUser(c, perUser{verb: "backup-codes", key: keyNone, columns: []string{"backup_codes"}, spec: func(sess *session) peruser.Spec {
		return r.protect(c, sess, guard{action: models.ActionBackupCodes}, peruser.Spec{Verb: "backup-codes", Apply: func(ctx context.Context, users []models.User, report peruser.Report) error {
			return sess.store.RegenerateMany(ctx, sess.db, users, models.BulkOptions{}, func(j int, codes []string, err error) {
				res := peruser.Result{Outcome: OutcomeRegenerated, Err: err, Extra: record{{"backup_codes", codes}}}
				if err != nil {
					res.Outcome = statusOf(err)
				}
				res.Human = fmt.Sprintf("%s: new backup codes (the old ones no longer work); each works once, shown only now:\n  %s\n",
					terminalSafe(users[j].String()), strings.Join(codes, "\n  "))
				report(j, res)
			})
		}})
	}})
}
