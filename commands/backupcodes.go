package commands

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
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
   totpadm backup-codes -o json --from-file users.txt`,
		Flags:  []cli.Flag{fromFileFlag()},
		Action: r.backupCodes,
	}
}

func (r *runner) backupCodes(c *cli.Context) error {
	refs, err := r.userRefs(c, c.Args().Slice())
	if err != nil {
		return err
	}
	sess, err := r.open(c, keyNone)
	if err != nil {
		return err
	}
	defer sess.close()

	rep := r.newReporter(sess.format, "backup_codes")
	for _, ref := range refs {
		o := outcome{ref: ref}
		user, err := sess.svc.LookupUser(c.Context, sess.db, ref)
		if err != nil {
			o.status, o.err = statusOf(err), fmt.Errorf("backup-codes %s: %w", ref, err)
			rep.report(o, "")
			continue
		}
		o.user = user
		codes, err := sess.svc.RegenerateBackupCodes(c.Context, sess.db, user)
		if err != nil {
			o.status, o.err = statusOf(err), err
			rep.report(o, "")
			continue
		}
		o.status = "regenerated"
		o.extra = record{{"backup_codes", codes}}
		rep.report(o, fmt.Sprintf("%s: new backup codes (the old ones no longer work); each works once, shown only now:\n  %s\n",
			user, strings.Join(codes, "\n  ")))
	}
	return rep.finish()
}
