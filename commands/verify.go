package commands

import (
	"bufio"
	"fmt"
	"strings"
	"time"

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

With --diagnose, nothing is consumed and no failure is counted: totpadm searches
±10 minutes for the code and says how far the phone's clock is off. The audit
log records that the diagnosis ran and what it found (never the code).

Exit status: 0 accepted, 1 rejected (wrong, already used, or locked),
2 malformed, 3 unknown user or not enrolled. With --diagnose: 0 when the code
would be accepted now, 1 otherwise (also when it matches but the user is locked
out, or its time step was already used).

Examples:
   totpadm verify alice 123456
   totpadm verify alice 7k3m-9q2x-h4tz
   echo 123456 | totpadm verify alice -
   totpadm verify --diagnose alice 123456   # "the phone's clock is about 90 s slow"`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "diagnose", Usage: "search ±10 minutes for the code and report the phone's clock offset; consumes nothing"},
		},
		Action: r.verify,
	}
}

func (r *runner) verify(c *cli.Context) error {
	if c.Bool("diagnose") {
		if err := r.storeCan(c, "verify --diagnose", canDiagnose, "it is not built for this store yet; verify without --diagnose checks a code"); err != nil {
			return err
		}
	}
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
	if c.Bool("diagnose") {
		return r.diagnose(c, sess, ref, user, code)
	}
	res, verr := sess.store.Verify(c.Context, sess.db, user, code)
	if sess.format == formatTable {
		if verr != nil {
			return verr
		}
		fmt.Fprintln(r.streams.Out, terminalSafe(verifiedSentence(user, res)))
		return nil
	}
	o := outcome{ref: ref, user: user, status: OutcomeAccepted, err: verr}
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
	case res.Method == models.MethodTempCode:
		return fmt.Sprintf("%s: temporary access code accepted; it is used up now.", u)
	case res.Activated:
		return fmt.Sprintf("%s: code accepted; enrollment activated, 2FA is enabled.", u)
	}
	return fmt.Sprintf("%s: code accepted.", u)
}

func (r *runner) diagnose(c *cli.Context, sess *session, ref models.UserRef, user models.User, code string) error {
	d, err := sess.store.(models.Diagnoser).Diagnose(c.Context, sess.db, user, code)
	if err != nil {
		return err
	}
	verdict := diagnosisSentence(user, d)
	if sess.format == formatTable {
		fmt.Fprintln(r.streams.Out, terminalSafe(verdict))
	} else {
		rw := newRecordWriter(sess.format, r.streams.Out, []string{"user", "login", "id", "found", "offset_steps", "offset_seconds", "accepted_now", "already_used", "locked", "locked_until", "verdict"})
		var lockedUntil *time.Time
		if d.Locked {
			lockedUntil = &d.LockedUntil
		}
		rw.write(record{
			{"user", ref.String()}, {"login", user.Login}, {"id", user.ID}, {"found", d.Found},
			{"offset_steps", d.OffsetSteps}, {"offset_seconds", int64(d.Offset.Seconds())},
			{"accepted_now", d.AcceptedNow()}, {"already_used", d.Used},
			{"locked", d.Locked}, {"locked_until", lockedUntil}, {"verdict", verdict},
		})
		if err := rw.flush(); err != nil {
			return err
		}
	}
	if !d.AcceptedNow() {
		return exitStatus{ExitRejected} // as verify itself would end
	}
	return nil
}

// diagnosisSentence is the verdict: what was found, then what to do, each
// only what is true. A step already used is not fixed by waiting when the
// phone's clock is outside the window: its next codes are refused too.
func diagnosisSentence(u models.User, d models.Diagnosis) string {
	var finding, advice string
	clock := clockSentence(d)
	switch {
	case !d.Found:
		finding = fmt.Sprintf("no code within ±%d minutes matches: the phone holds a different secret (re-enroll with --force) or its clock is off by more than that", int(models.DiagnoseWindow.Minutes()))
	case d.Used && d.Accepted:
		finding = "the code matches, but that time step was already used (each is accepted once); " + clock
		advice = "Wait for the next code."
	case d.Used:
		finding = "the code matches a time step already used (an earlier login used it or a later one), and " + clock + ", outside the accepted window"
		advice = "Have the user fix the phone's clock (set the time automatically), then use the next code."
	case d.Accepted && d.Locked:
		finding = "the code matches and is inside the accepted window; " + clock
	case d.Accepted:
		finding = "the code matches and would be accepted now; " + clock
	default:
		finding = "the code matches but is outside the accepted window; " + clock
		advice = "Have the user set the phone's time automatically."
	}
	if d.Locked {
		finding += fmt.Sprintf("; but 2FA is locked until %s after too many failed codes, so it would be refused now", d.LockedUntil.UTC().Format(time.RFC3339))
		lock := fmt.Sprintf("`totpadm unlock %s` ends the lockout.", u)
		if advice != "" {
			advice += " " + lock
		} else {
			advice = lock
		}
	}
	if advice == "" {
		return fmt.Sprintf("%s: %s.", u, finding)
	}
	return fmt.Sprintf("%s: %s. %s", u, finding, advice)
}

func clockSentence(d models.Diagnosis) string {
	secs := int64(d.Offset.Seconds())
	switch {
	case d.OffsetSteps == 0:
		return "the phone's clock is right"
	case secs < 0:
		return fmt.Sprintf("the phone's clock is about %d s slow (%s)", -secs, steps(-d.OffsetSteps, d.Period))
	}
	return fmt.Sprintf("the phone's clock is about %d s fast (%s)", secs, steps(d.OffsetSteps, d.Period))
}

func steps(n int64, period int) string {
	if n == 1 {
		return fmt.Sprintf("1 step of %d s", period)
	}
	return fmt.Sprintf("%d steps of %d s", n, period)
}
