package commands

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

func (r *runner) verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a TOTP code or a backup code for a user",
		ArgsUsage: "USER CODE",
		Description: `Checks CODE for USER exactly as the application's login does: a 6-digit code
from the app (accepted within ±1 time step, each time step once) or a backup code
(xxxx-xxxx-xxxx, any case, dashes and spaces optional, each code once). The first
good app code activates a pending enrollment. Wrong codes count towards the
lockout. CODE - reads the code from stdin, keeping it out of the process list.

Exit status: 0 accepted, 1 rejected (wrong, already used, or locked),
2 malformed, 3 unknown user or not enrolled.

Examples:
   totpadm verify alice 123456
   totpadm verify alice 7k3m-9q2x-h4tz
   echo 123456 | totpadm verify alice -`,
		Action: r.verify,
	}
}

func (r *runner) verify(c *cli.Context) error {
	if c.NArg() != 2 {
		return usagef("verify: want USER CODE, got %d argument(s)", c.NArg())
	}
	ref, err := models.ParseUserRef(c.Args().Get(0))
	if err != nil {
		return err
	}
	code := c.Args().Get(1)
	if code == "-" {
		line, err := bufio.NewReader(r.streams.In).ReadString('\n')
		if strings.TrimSpace(line) == "" {
			return usagef("verify: no code on stdin (%v)", err)
		}
		code = line
	}
	code = strings.TrimSpace(code)
	sess, err := r.open(c, keyOptional)
	if err != nil {
		return err
	}
	defer sess.close()

	user, err := sess.svc.LookupUser(c.Context, sess.db, ref)
	if err != nil {
		return fmt.Errorf("verify %s: %w", ref, err)
	}
	res, verr := sess.svc.Verify(c.Context, sess.db, user, code)
	if sess.format == formatTable {
		if verr != nil {
			return verr
		}
		fmt.Fprintln(r.streams.Out, terminalSafe(verifiedSentence(user, res)))
		return nil
	}
	o := outcome{ref: ref, user: user, status: "accepted", err: verr}
	if verr != nil {
		o.status = statusOf(verr)
	}
	o.extra = record{{"method", res.Method}, {"activated", res.Activated}, {"backup_codes_left", backupLeft(res)}}
	rep := r.newReporter(sess.format, "method", "activated", "backup_codes_left")
	rep.report(o, "")
	return rep.finish()
}

func backupLeft(res models.VerifyResult) any {
	if res.Method != models.MethodBackup {
		return nil
	}
	return res.BackupCodesLeft
}

func verifiedSentence(u models.User, res models.VerifyResult) string {
	switch {
	case res.Method == models.MethodBackup:
		s := fmt.Sprintf("%s: backup code accepted; %d left.", u, res.BackupCodesLeft)
		if res.BackupCodesLeft <= 2 {
			s += fmt.Sprintf(" Regenerate them soon: totpadm backup-codes %s", u)
		}
		return s
	case res.Activated:
		return fmt.Sprintf("%s: code accepted; enrollment activated, 2FA is enabled.", u)
	}
	return fmt.Sprintf("%s: code accepted.", u)
}
