package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
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

	rep := r.newReporter(sess.format)
	for _, ref := range refs {
		o := outcome{ref: ref}
		user, err := sess.svc.LookupUser(c.Context, sess.db, ref)
		if err != nil {
			o.status, o.err = statusOf(err), fmt.Errorf("unlock %s: %w", ref, err)
			rep.report(o, "")
			continue
		}
		o.user = user
		wasLocked, err := sess.svc.Unlock(c.Context, sess.db, user)
		switch {
		case err != nil:
			o.status, o.err = statusOf(err), err
		case wasLocked:
			o.status = "unlocked"
		default:
			o.status = "not locked"
		}
		rep.report(o, fmt.Sprintf("%s: %s", user, o.status))
	}
	return rep.finish()
}
