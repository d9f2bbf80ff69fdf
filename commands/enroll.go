package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

// confirmAttempts is how often a person may retype a mistyped first code.
const confirmAttempts = 3

func (r *runner) enrollCommand() *cli.Command {
	return &cli.Command{
		Name:      "enroll",
		Usage:     "enroll users in 2FA: print the QR code, confirm the first code, print backup codes",
		ArgsUsage: "USER…",
		Description: `Creates a new TOTP secret for each USER (a login, or id:N), prints the QR code
to scan with an authenticator app, the otpauth URI and the key for manual entry,
then confirms the enrollment with the first code from the app and prints the
backup codes. Nothing is saved until the code is confirmed.

On a terminal, totpadm asks for the code. Elsewhere, pass --no-confirm to save
the enrollment as pending (the first successful 'totpadm verify' activates it),
or confirm a pending enrollment later with --code.

The code parameters are the global settings --algorithm, --digits and --period
(also TOTPADM_* variables and configuration-file keys). Keep the defaults, SHA1,
6 digits, 30 s: Google and Microsoft Authenticator ignore other values and show
wrong codes.

Examples:
   totpadm enroll alice
   totpadm enroll --no-confirm -o json bob carol
   totpadm enroll alice --code 123456      # confirm alice's pending enrollment
   totpadm enroll --force alice            # replace a lost phone's enrollment
   totpadm enroll --digits 8 --no-confirm carol`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "replace an existing enrollment (its secret and backup codes stop working)"},
			&cli.BoolFlag{Name: "skip-enrolled", Usage: "leave users who already have 2FA as they are and report them as skipped"},
			&cli.BoolFlag{Name: "no-confirm", Usage: "save as pending without a code; the first successful verify activates it"},
			&cli.StringFlag{Name: "code", Usage: "confirm the user's pending enrollment with this `CODE` from the app"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would change, change nothing"},
			allowProtectedFlag(),
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "with --allow-protected: do not ask to type the login"},
			&cli.StringFlag{Name: "qr-png", Usage: "also write each user's QR code to `DIR`/LOGIN.png (mode 0600), for delivery by another channel"},
			fromFileFlag(),
		},
		Action: r.enroll,
	}
}

type enrollMode int

const (
	enrollPrompt  enrollMode = iota // ask for the first code on the terminal
	enrollPending                   // --no-confirm
	enrollConfirm                   // --code: confirm an existing pending enrollment
)

func (r *runner) enroll(c *cli.Context) error {
	mode := enrollPrompt
	switch code := c.String("code"); {
	case c.Bool("no-confirm") && code != "":
		return usagef("enroll: --no-confirm and --code exclude each other")
	case c.Bool("no-confirm"):
		mode = enrollPending
	case code != "":
		if c.Bool("force") {
			return usagef("enroll: --code confirms a pending enrollment and --force makes a new one; run --force first, then confirm")
		}
		mode = enrollConfirm
	}
	if c.Bool("force") && c.Bool("skip-enrolled") {
		return usagef("enroll: --force and --skip-enrolled exclude each other")
	}
	st, err := r.settings(c)
	if err != nil {
		return err
	}
	params := st.svc.Params
	// A dry run asks nothing, so it needs neither a terminal nor a table.
	if mode == enrollPrompt && !c.Bool("dry-run") {
		switch {
		case !r.streams.Interactive:
			return usagef("enroll: not on a terminal, so totpadm cannot ask for the first code: pass --no-confirm (pending until the first successful verify) or confirm later with --code CODE")
		case st.format != formatTable:
			return usagef("enroll: -o %s shows no QR code to scan, so there is no first code to ask for: pass --no-confirm (pending until the first successful verify) or confirm later with --code CODE", st.format)
		}
	}
	if params.NonDefault() {
		fmt.Fprintf(r.streams.Err, "totpadm: warning: %s, %d digits, %d s differs from SHA1, 6 digits, 30 s: Google and Microsoft Authenticator ignore these settings and will show wrong codes\n",
			params.Algorithm, params.Digits, params.Period)
	}
	e := &enrollment{r: r, c: c, params: params, mode: mode, stdin: r.stdinReader()}
	p := perUser{verb: "enroll", key: keySeal, dryRun: c.Bool("dry-run"), columns: []string{"state", "secret", "uri", "backup_codes"}}
	dir := c.String("qr-png")
	if dir != "" && !p.dryRun {
		p.columns = append(p.columns, "qr_png")
		p.before = func(*session, []models.UserRef) (bool, error) {
			var err error
			e.png, err = openQRDir(dir)
			return err == nil, err
		}
		defer func() {
			if e.png != nil {
				e.png.close()
			}
		}()
	}
	p.spec = func(sess *session) peruser.Spec {
		e.sess = sess
		spec := peruser.Spec{Verb: "enroll", DryRun: func(_ context.Context, users []models.User, report peruser.Report) error {
			for j, u := range users {
				o, human := e.dryRun(u)
				report(j, o.result(human))
			}
			return nil
		}}
		if mode == enrollPending {
			spec.Apply = e.many
		} else {
			spec.Apply = func(ctx context.Context, users []models.User, report peruser.Report) error {
				for j, u := range users {
					if err := ctx.Err(); err != nil {
						return err
					}
					report(j, e.one(u).result(""))
				}
				return nil
			}
		}
		if c.Bool("force") {
			spec = r.protect(c, sess, guard{action: models.ActionEnroll, applies: enrolledGuard(sess)}, spec)
		}
		return spec
	}
	if err := r.checkProtectedPrompt(c, "enroll"); err != nil {
		return err
	}
	return r.runPerUser(c, p)
}

// oneLineReason is err's message as an audit reason.
func oneLineReason(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// options are the models options every path shares.
func (e *enrollment) options() models.EnrollOptions {
	return models.EnrollOptions{Force: e.c.Bool("force"), SkipEnrolled: e.c.Bool("skip-enrolled")}
}

// many saves pending enrollments for all users, a batch at a time:
// secrets exist in memory only for the batch being saved, so memory stays
// flat however long the input.
func (e *enrollment) many(ctx context.Context, users []models.User, report peruser.Report) error {
	for lo := 0; lo < len(users); lo += models.DefaultBatchSize {
		hi := min(lo+models.DefaultBatchSize, len(users))
		if err := e.batch(ctx, users[lo:hi], func(j int, r peruser.Result) { report(lo+j, r) }); err != nil {
			return err
		}
	}
	return nil
}

func (e *enrollment) batch(ctx context.Context, users []models.User, report peruser.Report) error {
	enrollments := make([]*models.Enrollment, len(users))
	for j, u := range users {
		enr, err := e.sess.store.NewEnrollment(u, e.params)
		if err != nil {
			return err
		}
		enrollments[j] = enr
	}
	return e.sess.store.EnrollMany(ctx, e.sess.db, enrollments, e.options(), models.BulkOptions{}, func(j int, saved models.EnrollResult, err error) {
		enr := enrollments[j]
		o := outcome{user: users[j]}
		switch {
		case err != nil:
			o.status, o.err = statusOf(err), err
			if errors.Is(err, models.ErrAlreadyEnrolled) {
				o.err = fmt.Errorf("%w; use --force to replace the enrollment or --skip-enrolled to leave it", err)
			}
		case saved.Skipped:
			o.status = OutcomeSkipped
			o.extra = record{{"state", stateName(saved.State)}}
			e.human("%s: skipped, already enrolled (%s)\n", users[j], stateName(saved.State))
		default:
			o.status = OutcomeEnrolled
			o.extra = record{{"state", stateName(saved.State)}, {"secret", enr.Secret()}, {"uri", enr.URI()}, {"backup_codes", saved.BackupCodes}}
			if err := e.show(enr); err != nil {
				o.status, o.err = OutcomeError, err
				break
			}
			e.human("%s: enrolled, pending until the first successful `totpadm verify %s CODE`.\n", users[j], users[j])
			e.showBackupCodes(users[j], saved.BackupCodes)
			e.savePNG(&o, enr)
		}
		report(j, o.result(""))
	})
}

// dryRun reports what enroll would do for user without changing anything.
func (e *enrollment) dryRun(user models.User) (outcome, string) {
	o := outcome{user: user, status: OutcomeWouldEnroll}
	st, err := e.sess.store.UserStatus(e.c.Context, e.sess.db, user)
	switch {
	case err != nil:
		o.status, o.err = OutcomeError, err
	case st.State == models.StatusDisabled:
	case e.c.Bool("skip-enrolled"):
		o.status = OutcomeSkipped
	case e.c.Bool("force"):
		o.status = OutcomeWouldReplace
	default:
		o.status = OutcomeAlreadyEnrolled
		o.err = fmt.Errorf("enroll %s: %w (%s); use --force to replace the enrollment or --skip-enrolled to leave it", user, models.ErrAlreadyEnrolled, st.State)
	}
	// Escaped here, not only by the reporter's per-line pass: a newline in
	// the login must not split this into two lines of output.
	return o, fmt.Sprintf("%s: %s (dry run)", terminalSafe(user.String()), o.status)
}

// enrollment carries one enroll run through its users.
type enrollment struct {
	r      *runner
	c      *cli.Context
	sess   *session
	params models.Params
	mode   enrollMode
	stdin  *bufio.Reader
	png    *qrPNGWriter // nil without --qr-png
}

// one enrolls a single user interactively, or confirms a pending
// enrollment with --code.
func (e *enrollment) one(user models.User) outcome {
	if e.mode == enrollConfirm {
		return e.confirm(user)
	}
	return e.interactive(user)
}

func (e *enrollment) confirm(user models.User) outcome {
	o := outcome{user: user}
	if _, err := e.sess.store.Confirm(e.c.Context, e.sess.db, user, e.c.String("code")); err != nil {
		o.status, o.err = statusOf(err), err
		return o
	}
	o.status = OutcomeConfirmed
	o.extra = record{{"state", models.StatusEnabled}}
	e.human("%s: enrollment confirmed; 2FA is enabled.\n", user)
	return o
}

// interactive shows the QR code, asks for the first code, and saves the
// enrollment only once that code matches.
func (e *enrollment) interactive(user models.User) outcome {
	ctx, db, svc := e.c.Context, e.sess.db, e.sess.store
	o := outcome{user: user}
	current, err := svc.UserStatus(ctx, db, user)
	if err != nil {
		o.status, o.err = OutcomeError, err
		return o
	}
	if current.State != models.StatusDisabled && !e.c.Bool("force") {
		if e.c.Bool("skip-enrolled") {
			o.status = OutcomeSkipped
			o.extra = record{{"state", current.State}}
			e.human("%s: skipped, already enrolled (%s)\n", user, current.State)
			return o
		}
		o.status = OutcomeAlreadyEnrolled
		o.err = fmt.Errorf("enroll %s: %w (%s); use --force to replace the enrollment or --skip-enrolled to leave it", user, models.ErrAlreadyEnrolled, current.State)
		return o
	}

	enr, err := svc.NewEnrollment(user, e.params)
	if err != nil {
		o.status, o.err = OutcomeError, err
		return o
	}
	if err := e.show(enr); err != nil {
		o.status, o.err = OutcomeError, err
		return o
	}
	code, err := e.prompt(enr)
	if err != nil {
		o.status, o.err = statusOf(err), fmt.Errorf("enroll %s: %w", user, err)
		// A secret was on the screen: the audit log says so, and why it
		// was never saved.
		if aerr := svc.AbandonEnrollment(ctx, db, enr, oneLineReason(err)); aerr != nil {
			o.err = fmt.Errorf("%w; the audit row for it failed too: %w", o.err, aerr)
		}
		return o
	}
	opts := e.options()
	opts.ConfirmCode = code
	res, err := svc.Enroll(ctx, db, enr, opts)
	if err != nil {
		o.status, o.err = statusOf(err), err
		return o
	}
	if res.Skipped {
		// Enrolled by someone else while the code was being typed.
		o.status = OutcomeSkipped
		o.extra = record{{"state", stateName(res.State)}}
		e.human("%s: skipped, enrolled meanwhile by someone else (%s)\n", user, stateName(res.State))
		return o
	}
	o.status = OutcomeEnrolled
	o.extra = record{{"state", stateName(res.State)}, {"secret", enr.Secret()}, {"uri", enr.URI()}, {"backup_codes", res.BackupCodes}}
	e.human("%s: confirmed; 2FA is enabled.\n", user)
	e.showBackupCodes(user, res.BackupCodes)
	e.savePNG(&o, enr)
	return o
}

func stateName(s string) string {
	if s == models.StateActive {
		return models.StatusEnabled
	}
	return models.StatusPending
}

// human prints table-mode prose; JSON and CSV carry the same facts as fields.
// Every string argument (a login, a user reference, a state, a file name)
// goes through terminalSafe, so a login crafted with escape sequences or
// bidi overrides reaches the terminal escaped; format itself is ours.
func (e *enrollment) human(format string, args ...any) {
	if e.sess.format != formatTable {
		return
	}
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			safe[i] = terminalSafe(v)
		case fmt.Stringer:
			safe[i] = terminalSafe(v.String())
		default:
			safe[i] = a
		}
	}
	fmt.Fprintf(e.r.streams.Out, format, safe...)
}

// savePNG writes the QR code file for a saved enrollment (--qr-png). It
// runs only after the save, so no file ever holds the secret of an
// enrollment that was abandoned or refused.
func (e *enrollment) savePNG(o *outcome, enr *models.Enrollment) {
	if e.png == nil {
		return
	}
	name, err := e.png.write(enr.User.String(), enr.URI())
	if err != nil {
		o.status = OutcomeError
		o.err = fmt.Errorf("enroll %s: saved, but %w; run enroll --force %s to issue a new one", enr.User, err, enr.User)
		return
	}
	o.extra = append(o.extra, field{"qr_png", name})
	e.human("%s: QR code written to %s\n", enr.User, name)
}

// show prints what the person needs to add the account to an app. On a
// terminal the QR code comes last, standing whole right above the prompt
// for the first code: the key and the URI go above it, so that nothing
// pushes its top off the screen while the prompt waits. A terminal too
// small for the code gets the key below it instead, and one line saying
// so and what to do.
func (e *enrollment) show(enr *models.Enrollment) error {
	if e.sess.format != formatTable {
		return nil
	}
	w := e.r.streams.Out
	cols, rows, sized := terminalSize(w) // 0, 0 off a terminal: anything fits
	prompt := 0                          // rows the prompt takes below the code
	if sized && e.mode == enrollPrompt {
		prompt = displayRows(e.promptText(enr), cols)
	}
	room := rows - prompt
	if sized {
		room = max(room, 1)
	}
	q, fits, qrErr := renderQR(qrURI(enr.URI()), cols, room)
	user, id := terminalSafe(enr.User.String()), terminalSafe(enr.User.ID)
	p := enr.Params
	byHand := fmt.Sprintf("time-based, %s, %d digits, every %d s:\n  Key:  %s\n  URI:  %s\n",
		p.Algorithm, p.Digits, p.Period, enr.ManualEntryKey(), terminalSafe(enr.URI()))
	if qrErr == nil && fits {
		fmt.Fprintf(w, "\nEnrolling %s (id %s). Scan the QR code below with an authenticator app\n(Google Authenticator, Microsoft Authenticator, Authy, Duo, 1Password),\nor add the account by hand — %s\n", user, id, byHand)
		if err := writeQR(w, q, e.r.streams.Color); err != nil {
			return fmt.Errorf("print QR code: %w", err)
		}
		return nil
	}
	if qrErr != nil {
		fmt.Fprintf(w, "\nEnrolling %s (id %s). Add the account to an authenticator app by hand —\n%s\n", user, id, byHand)
		fmt.Fprintf(e.r.streams.Err, "totpadm: the otpauth URI is too long for a QR code (%d bytes): type the Key above into the app\n", len(enr.URI()))
		return nil
	}
	fmt.Fprintf(w, "\nEnrolling %s (id %s). Scan this QR code with an authenticator app\n(Google Authenticator, Microsoft Authenticator, Authy, Duo, 1Password):\n\n", user, id)
	if err := writeQR(w, q, e.r.streams.Color); err != nil {
		return fmt.Errorf("print QR code: %w", err)
	}
	fmt.Fprintf(w, "\nOr add it by hand — %s\n", byHand)
	fmt.Fprintf(e.r.streams.Err, "totpadm: the QR code needs %d×%d characters, this terminal is %d×%d: enlarge it and run enroll again, use --qr-png DIR, or type the Key above into the app\n",
		q.cols, q.rows+prompt, cols, rows)
	return nil
}

// promptText asks for the first code.
func (e *enrollment) promptText(enr *models.Enrollment) string {
	return fmt.Sprintf("Enter the %d-digit code the app shows for %s: ", enr.Params.Digits, terminalSafe(enr.User.String()))
}

// prompt asks for the first code until one matches, without saving
// anything: an abandoned enrollment leaves no trace in the database.
func (e *enrollment) prompt(enr *models.Enrollment) (string, error) {
	svc := e.sess.store
	for attempt := 1; attempt <= confirmAttempts; attempt++ {
		fmt.Fprint(e.r.streams.Err, e.promptText(enr))
		line, err := readLine(e.c.Context, e.stdin)
		code := strings.TrimSpace(line)
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(e.r.streams.Err)
			return "", fmt.Errorf("%w; nothing was saved", peruser.ErrInterrupted)
		}
		if err != nil && (code == "" || !errors.Is(err, io.EOF)) {
			fmt.Fprintln(e.r.streams.Err)
			return "", usagef("no code entered; nothing was saved")
		}
		ok, err := svc.CheckCode(enr, code)
		switch {
		case errors.Is(err, models.ErrMalformedCode):
			fmt.Fprintf(e.r.streams.Err, "That is not a %d-digit code.\n", enr.Params.Digits)
		case err != nil:
			return "", err
		case ok:
			return code, nil
		default:
			fmt.Fprintln(e.r.streams.Err, "That code does not match. Check that the phone's clock is set automatically, and wait for a fresh code.")
		}
	}
	return "", fmt.Errorf("%w: %d wrong codes; nothing was saved, run enroll again", models.ErrCodeRejected, confirmAttempts)
}

func (e *enrollment) showBackupCodes(user models.User, codes []string) {
	if e.sess.format != formatTable {
		return
	}
	stored := "they are not stored in readable form: keep them somewhere safe"
	if !e.sess.store.Info().CodesHashed {
		stored = "type each exactly as shown; keep them somewhere safe"
	}
	lead := terminalSafe(user.String()) + ": backup codes for when the phone is lost; each works once, shown only now (" + stored + ")"
	fmt.Fprint(e.r.streams.Out, "\n"+backupCodesBlock(lead, codes)+"\n")
}
