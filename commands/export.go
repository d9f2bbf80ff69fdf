package commands

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "print users' otpauth URIs (their second factor itself) for migration; needs --yes",
		ArgsUsage: "[USER…]",
		Description: `Prints the otpauth:// URI of each USER's enrollment — the TOTP secret itself —
so that another system can import it, or writes one QR code PNG per user. Anyone
holding the output can generate the users' codes: it needs --yes, and every
user exported is recorded in the audit log. --all exports every user with 2FA.

The output in every format (the table's "LOGIN  URI" lines, -o json, -o csv)
can be given to 'totpadm import' as it is, to move the enrollments to another
database.

Examples:
   totpadm export --yes alice
   totpadm export --yes --all -o csv > totp-export.csv
   totpadm --db new.db import totp-export.csv
   totpadm export --yes --png /secure/qr --from-file users.txt`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "confirm that secrets may be printed"},
			&cli.BoolFlag{Name: "all", Usage: "export every user with 2FA"},
			&cli.StringFlag{Name: "png", Usage: "write each user's QR code to `DIR`/LOGIN.png (mode 0600) instead of printing URIs"},
			fromFileFlag(),
		},
		Action: r.export,
	}
}

func (r *runner) export(c *cli.Context) error {
	if !c.Bool("yes") {
		return usagef("export: the output holds users' TOTP secrets; pass --yes to confirm")
	}
	all := c.Bool("all")
	if all && (c.NArg() > 0 || c.IsSet(flagFromFile)) {
		return usagef("export: --all and USER… exclude each other")
	}
	var refs []models.UserRef
	if !all {
		var err error
		if refs, err = r.userRefs(c, c.Args().Slice()); err != nil {
			return err
		}
	}
	sess, err := r.open(c, keyRequired)
	if err != nil {
		return err
	}
	defer sess.close()
	if all {
		err := sess.store.EachStatus(c.Context, sess.db, "", func(row models.StatusRow) error {
			if row.State != models.StatusDisabled {
				refs = append(refs, models.UserRef{ByID: true, Value: row.ID})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	var png *qrPNGWriter
	if dir := c.String("png"); dir != "" {
		if png, err = openQRDir(dir); err != nil {
			return err
		}
		defer png.close()
	}
	out := r.newResults(sess.format, len(refs), "export", "state", "uri", "secret", "qr_png")
	spec := peruser.Spec{Verb: "export", Apply: func(ctx context.Context, users []models.User, report peruser.Report) error {
		for j, user := range users {
			if err := ctx.Err(); err != nil {
				return err
			}
			o := outcome{user: user, status: OutcomeExported}
			if all {
				// Nobody named these users; report them by login, as if
				// named so, not by the id:N the run looked them up with.
				o.ref = models.UserRef{Value: user.String()}
			}
			exp, err := sess.store.ExportEnrollment(ctx, sess.db, user)
			human := ""
			switch {
			case err != nil:
				o.status, o.err = statusOf(err), err
			case png != nil:
				name, werr := png.write(user.String(), exp.URI)
				if werr != nil {
					o.status, o.err = OutcomeError, werr
					break
				}
				o.extra = record{{"state", exp.State}, {"qr_png", name}}
				human = fmt.Sprintf("%s: QR code written to %s", terminalSafe(user.String()), terminalSafe(name))
			default:
				o.extra = record{{"state", exp.State}, {"uri", exp.URI}, {"secret", exp.Secret}}
				human = fmt.Sprintf("%s  %s", terminalSafe(user.String()), exp.URI)
			}
			report(j, o.result(human))
		}
		return nil
	}}
	return out.end(peruser.Run(c.Context, sess.db, sess.svc.LookupUsers, statusOf, refs, spec, false, out, out.progress))
}

func (r *runner) importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "import otpauth URIs from another system (e.g. an Authelia export) as enrollments",
		ArgsUsage: "FILE|-",
		Description: `Reads otpauth://totp URIs, one per line (# comments and blank lines ignored),
as exported by another system — Authelia's 'authelia storage user totp export',
Google's Key URI format — and enrolls each URI's account (the login after
"issuer:" in the label) with that secret. The account must be the login exactly,
byte for byte: nothing is trimmed, case-folded or normalised, and a label that
would match only after such a change is reported as not found. Lines are taken
as written; only the line terminator is dropped. The output of 'totpadm export' is read
as it is, in each of its formats: a table line "LOGIN  URI" (the URI is the
line's last field), a JSON line of -o json (its "uri"), or -o csv (a header
naming a "uri" column, then one row a user).

The users keep their authenticator app entries, so the enrollment is active at
once; each gets a new set of backup codes, printed once. Each user is imported
once: a later line for a user already named is reported as a duplicate. A line
is never echoed: it holds a secret.

Examples:
   totpadm import --dry-run authelia-export.txt
   totpadm --db old.db export --yes --all > totp-export.txt
   totpadm --db new.db import totp-export.txt
   totpadm import -o json --skip-enrolled authelia-export.txt > imported.jsonl`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "replace existing enrollments"},
			&cli.BoolFlag{Name: "skip-enrolled", Usage: "leave users who already have 2FA as they are"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would change, change nothing"},
			allowProtectedFlag(),
			yesFlag(),
		},
		Action: r.importURIs,
	}
}

// importLine is one parsed line of an import file.
type importLine struct {
	n   int
	uri models.KeyURIContents
	err error
}

func (r *runner) importURIs(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("import: want one FILE of otpauth URIs (or - for stdin)")
	}
	if c.Bool("force") && c.Bool("skip-enrolled") {
		return usagef("import: --force and --skip-enrolled exclude each other")
	}
	if c.Bool(flagAllowProtected) && r.streams.Interactive && !c.Bool("yes") && c.Args().First() == "-" {
		return usagef("import: the file comes from stdin, so totpadm cannot ask there to confirm --allow-protected: pass --yes")
	}
	lines, err := r.readImportFile(c.Args().First())
	if err != nil {
		return err
	}
	sess, err := r.open(c, keySeal)
	if err != nil {
		return err
	}
	defer sess.close()

	// An account name is a login, never a reference: a login spelt
	// "id:2" must not import its secret onto the user whose id is 2, and
	// ids differ between the database exported from and this one.
	refs := make([]models.UserRef, len(lines))
	for i, l := range lines {
		if l.err == nil {
			refs[i] = models.UserRef{Value: l.uri.Account}
		}
	}
	users, errs, err := sess.svc.LookupUsers(c.Context, sess.db, refs)
	if err != nil {
		return err
	}
	for i, l := range lines {
		if l.err == nil {
			users[i], errs[i] = exactLogin(l.uri.Account, users[i], errs[i])
		}
	}
	results := r.newResults(sess.format, len(lines), "import", "state", "backup_codes")
	out := peruser.NewOrdered(results, results.progress)
	out.SetTotal(len(lines))
	var (
		enrollments []*models.Enrollment
		index       []int
		firstLine   = map[string]int{} // user id → the line that names it first
	)
	for i, l := range lines {
		ref := models.UserRef{Value: fmt.Sprintf("line %d", l.n)}
		if l.err == nil && errs[i] == nil {
			if first, dup := firstLine[users[i].ID]; dup {
				err := usagef("import line %d: %s is already on line %d; a user is imported once", l.n, users[i], first)
				out.Put(i, outcome{ref: refs[i], user: users[i], status: OutcomeDuplicate, err: err}.result(""))
				continue
			}
			firstLine[users[i].ID] = l.n
		}
		switch {
		case l.err != nil:
			out.Put(i, outcome{ref: ref, status: OutcomeInvalid, err: usageError{fmt.Errorf("import line %d: %w", l.n, l.err)}}.result(""))
		case errs[i] != nil:
			out.Put(i, outcome{ref: refs[i], status: statusOf(errs[i]), err: fmt.Errorf("import line %d: %w", l.n, errs[i])}.result(""))
		case c.Bool("dry-run"):
			o := r.importDryRun(c, sess, l.n, refs[i], users[i])
			out.Put(i, o.result(fmt.Sprintf("%s: %s (dry run)", terminalSafe(o.user.String()), o.status)))
		default:
			if refused, err := r.importProtected(c, sess, users[i]); err != nil {
				return err
			} else if refused {
				err := fmt.Errorf("import line %d: %s: %w", l.n, users[i], models.ErrProtected)
				out.Put(i, outcome{ref: refs[i], user: users[i], status: OutcomeProtected, err: err}.result(""))
				continue
			}
			enr, err := sess.store.ImportedEnrollment(users[i], l.uri.Secret, l.uri.Params)
			if err != nil {
				out.Put(i, outcome{ref: refs[i], user: users[i], status: OutcomeInvalid, err: usageError{err}}.result(""))
				continue
			}
			enrollments = append(enrollments, enr)
			index = append(index, i)
		}
	}
	opt := models.EnrollOptions{Imported: true, Force: c.Bool("force"), SkipEnrolled: c.Bool("skip-enrolled")}
	err = sess.store.EnrollMany(c.Context, sess.db, enrollments, opt, models.BulkOptions{}, func(j int, saved models.EnrollResult, err error) {
		i := index[j]
		o := outcome{ref: refs[i], user: users[i], status: OutcomeImported}
		switch {
		case err != nil:
			o.status, o.err = statusOf(err), fmt.Errorf("import line %d: %w", lines[i].n, err)
		case saved.Skipped:
			o.status = OutcomeSkipped
			o.extra = record{{"state", stateName(saved.State)}}
		default:
			o.extra = record{{"state", stateName(saved.State)}, {"backup_codes", saved.BackupCodes}}
		}
		human := fmt.Sprintf("%s: %s", terminalSafe(o.user.String()), o.status)
		if o.status == OutcomeImported {
			human += "; new backup codes, shown only now:\n  " + strings.Join(saved.BackupCodes, "\n  ")
		}
		out.Put(i, o.result(human))
	})
	return results.end(out.Stopped(err))
}

// exactLogin keeps a looked-up user only when its login is the label's
// account byte for byte. The database compares logins its own way — MySQL
// ignores case and trailing spaces, a collation may ignore accents — and
// an imported secret must land on exactly the login it was exported for,
// never on a look-alike. Anything else is "not found", with the account
// quoted so that a person sees a leading space or an invisible character.
func exactLogin(account string, user models.User, err error) (models.User, error) {
	if err == nil && user.Login == account {
		return user, nil
	}
	if err != nil && !errors.Is(err, models.ErrUserNotFound) {
		return user, err // e.g. ambiguous: refused as it is
	}
	msg := fmt.Sprintf("no user's login is exactly %s (the account in the label is matched byte for byte: nothing is trimmed, case-folded or normalised", strconv.Quote(account))
	if err == nil {
		msg += fmt.Sprintf("; the database's own comparison matches %s", strconv.Quote(user.Login))
	}
	return models.User{}, fmt.Errorf("%w: %s)", models.ErrUserNotFound, msg)
}

func (r *runner) importDryRun(c *cli.Context, sess *session, line int, ref models.UserRef, user models.User) outcome {
	o := outcome{ref: ref, user: user, status: OutcomeWouldImport}
	st, err := sess.store.UserStatus(c.Context, sess.db, user)
	switch {
	case err != nil:
		o.status, o.err = OutcomeError, err
	case st.State == models.StatusDisabled:
	case c.Bool("skip-enrolled"):
		o.status = OutcomeSkipped
	case c.Bool("force"):
		o.status = OutcomeWouldReplace
	default:
		o.status = OutcomeAlreadyEnrolled
		o.err = fmt.Errorf("import line %d: %s: %w (%s); use --force to replace or --skip-enrolled to leave it", line, user, models.ErrAlreadyEnrolled, st.State)
	}
	return o
}

// readImportFile parses every line up front, so a run never half-applies a
// file whose later lines are unreadable. Lines are numbered for messages
// and never echoed. Lines follow --from-file's rule (see readListFile):
// nothing but the line terminator is stripped.
func (r *runner) readImportFile(path string) ([]importLine, error) {
	data, err := r.readListInput(path, "import")
	if err != nil {
		return nil, err
	}
	list, err := splitList(data, path, "import", isImportComment)
	if err != nil {
		return nil, err
	}
	var lines []importLine
	if len(list) > 0 {
		if col, ok := csvURIColumn(list[0].text); ok {
			lines = readImportCSV(data, list[0], col)
			list = nil
		}
	}
	for _, l := range list {
		raw, err := importURIField(l.text)
		lines = append(lines, parseImportURI(l.n, raw, err))
	}
	if len(lines) == 0 {
		return nil, usagef("import: %s holds no otpauth URIs", path)
	}
	return lines, nil
}

// isImportComment: a line whose first byte is # is a comment, unless it
// holds a URI — export's line for a login beginning with # does.
func isImportComment(text string) bool {
	return isHashComment(text) && !strings.Contains(strings.ToLower(text), "otpauth://")
}

func parseImportURI(n int, raw string, err error) importLine {
	l := importLine{n: n}
	if err == nil {
		l.uri, err = models.ParseKeyURI(raw)
		if err != nil && !hasOTPAuthScheme(raw) {
			err = fmt.Errorf("%w: the line holds no otpauth:// URI; %s", models.ErrInvalidURI, importFormats)
		}
	}
	l.err = err
	return l
}

// importFormats says what import reads, for messages.
const importFormats = "want one URI a line, or the output of totpadm export as it is (table, -o json or -o csv)"

// csvURIColumn recognises the header of export's -o csv output: a CSV line
// naming a "uri" column (and holding no URI itself).
func csvURIColumn(line string) (int, bool) {
	if strings.Contains(line, "otpauth:") || !strings.Contains(line, ",") {
		return 0, false
	}
	fields, err := csv.NewReader(strings.NewReader(line)).Read()
	if err != nil {
		return 0, false
	}
	for i, f := range fields {
		if strings.TrimSpace(f) == "uri" {
			return i, true
		}
	}
	return 0, false
}

// readImportCSV reads the CSV that starts at header as a whole, not line
// by line: a quoted cell may hold a line break (a login with CR or LF in
// it), so one row may span several lines. Each row is numbered by the line
// it starts on; rows that are blank or comments by readListFile's rule are
// skipped. A cell starting with ' has its one leading ' removed, undoing
// the neutralisation every CSV totpadm writes applies (see
// appendCSVField), so what export wrote reads back exactly.
func readImportCSV(data []byte, header listLine, column int) []importLine {
	body := data[header.off:]
	rd := csv.NewReader(bytes.NewReader(body))
	rd.FieldsPerRecord = -1
	if _, err := rd.Read(); err != nil {
		return []importLine{{n: header.n, err: fmt.Errorf("%w: not a CSV header", models.ErrInvalidURI)}}
	}
	var lines []importLine
	for {
		start := rd.InputOffset()
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return lines
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			lines = append(lines, importLine{n: header.n + pe.StartLine - 1, err: fmt.Errorf("%w: not a CSV row (the file began with a CSV header)", models.ErrInvalidURI)})
			if rd.InputOffset() == start {
				return lines // no progress: nothing more can be read
			}
			continue
		}
		if err != nil {
			lines = append(lines, importLine{n: header.n, err: fmt.Errorf("%w: not a CSV row", models.ErrInvalidURI)})
			return lines
		}
		row, _ := rd.FieldPos(0)
		n := header.n + row - 1
		raw := string(bytes.TrimLeft(body[start:rd.InputOffset()], "\r\n"))
		if strings.TrimSpace(raw) == "" || isImportComment(raw) {
			continue
		}
		if column >= len(rec) || rec[column] == "" {
			lines = append(lines, importLine{n: n, err: fmt.Errorf("%w: the row has no uri", models.ErrInvalidURI)})
			continue
		}
		lines = append(lines, parseImportURI(n, csvUnneutralise(rec[column]), nil))
	}
}

// importURIField finds the otpauth URI in one line of an import file that
// is not CSV: the "uri" member of a JSON object (export -o json), the URI
// of export's table line "LOGIN  URI", or the line itself, a bare URI.
// The table's URI is what follows the line's last blank: a URI totpadm
// writes holds none, while the login before it may (and may even look
// like a URI itself). Errors never quote the line: it holds a secret.
func importURIField(line string) (string, error) {
	if strings.HasPrefix(line, "{") && strings.HasSuffix(line, "}") { // a table line ends with its URI
		var rec struct {
			URI string `json:"uri"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return "", fmt.Errorf("%w: not a JSON object", models.ErrInvalidURI)
		}
		if rec.URI == "" {
			return "", fmt.Errorf("%w: the JSON object has no \"uri\"", models.ErrInvalidURI)
		}
		return rec.URI, nil
	}
	if i := strings.LastIndexAny(line, " \t"); i >= 0 && hasOTPAuthScheme(line[i+1:]) {
		return line[i+1:], nil
	}
	return line, nil
}

func hasOTPAuthScheme(s string) bool {
	return len(s) >= len("otpauth://") && strings.EqualFold(s[:len("otpauth://")], "otpauth://")
}
