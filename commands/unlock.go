package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

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
	refs, err := r.userRefs(c, c.Args().Slice())
	if err != nil {
		return err
	}
	sess, err := r.open(c, keyNone)
	if err != nil {
		return err
	}
	defer sess.close()

	res, err := r.resolve(c, sess, refs)
	if err != nil {
		return err
	}
	out := r.inOrder(r.newReporter(sess.format), res, "unlock")
	err = sess.svc.UnlockMany(c.Context, sess.db, res.foundUsers(), models.BulkOptions{}, func(j int, wasLocked bool, err error) {
		i := res.found[j]
		o := outcome{ref: refs[i], user: res.users[i], status: "not locked"}
		switch {
		case err != nil:
			o.status, o.err = statusOf(err), err
		case wasLocked:
			o.status = "unlocked"
		}
		out.put(i, o, fmt.Sprintf("%s: %s", terminalSafe(o.user.String()), o.status))
	})
	return out.end(err)
}
