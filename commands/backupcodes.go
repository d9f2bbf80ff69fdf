package commands

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

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

	res, err := r.resolve(c, sess, refs)
	if err != nil {
		return err
	}
	out := r.inOrder(r.newReporter(sess.format, "backup_codes"), res, "backup-codes")
	err = sess.svc.RegenerateMany(c.Context, sess.db, res.foundUsers(), models.BulkOptions{}, func(j int, codes []string, err error) {
		i := res.found[j]
		o := outcome{ref: refs[i], user: res.users[i], status: "regenerated", err: err}
		if err != nil {
			o.status = statusOf(err)
		}
		o.extra = record{{"backup_codes", codes}}
		out.put(i, o, fmt.Sprintf("%s: new backup codes (the old ones no longer work); each works once, shown only now:\n  %s\n",
			terminalSafe(o.user.String()), strings.Join(codes, "\n  ")))
	})
	return out.end(err)
}
