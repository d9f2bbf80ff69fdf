package commands

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

const flagFromFile = "from-file"

func fromFileFlag() cli.Flag {
	return &cli.StringFlag{Name: flagFromFile, Usage: "read users from `FILE` (- for stdin): one login or id:N a line, exactly as written (only the line end is dropped, no spaces); lines starting with # and blank lines ignored"}
}

// userRefs collects the USER… arguments and the --from-file lines. Every
// reference is parsed before any is acted on, so one typo stops the run
// before it changes anything.
func (r *runner) userRefs(c *cli.Context, args []string) ([]models.UserRef, error) {
	raw := append([]string(nil), args...)
	if path := c.String(flagFromFile); path != "" {
		lines, err := r.readUserFile(path)
		if err != nil {
			return nil, err
		}
		raw = append(raw, lines...)
	}
	if len(raw) == 0 {
		return nil, usagef("%s: name at least one USER (a login or id:N), or use --%s", c.Command.Name, flagFromFile)
	}
	refs := make([]models.UserRef, 0, len(raw))
	for _, s := range raw {
		ref, err := models.ParseUserRef(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", truncate(s, 40), err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

func (r *runner) readUserFile(path string) ([]string, error) {
	lines, err := r.readListFile(path, "--"+flagFromFile, isHashComment)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out, nil
}

// listLine is one meaningful line of a list file: its number, its text
// without the line terminator, and where it starts in the file's content.
type listLine struct {
	n    int
	text string
	off  int
}

// maxListLine bounds one line of a list file; no login or URI is longer.
const maxListLine = 64 << 10

// readListFile reads a file of one item a line (- is stdin), with blank
// lines and the lines isComment picks left out: the format of --from-file
// and of import. what names the input in messages.
//
// A line is taken exactly as written: only its terminator (LF, and one CR
// before it) and a UTF-8 byte-order mark at the very start of the file are
// dropped. Nothing else is trimmed, because a login may begin or end with
// a space, and " alice" must never quietly become alice. A line that is
// empty or only whitespace is skipped: no login is only whitespace.
func (r *runner) readListFile(path, what string, isComment func(string) bool) ([]listLine, error) {
	data, err := r.readListInput(path, what)
	if err != nil {
		return nil, err
	}
	return splitList(data, path, what, isComment)
}

// readListInput reads a whole list file, or stdin for -, without the
// UTF-8 byte-order mark Windows editors start a file with: it is not part
// of the first login.
func (r *runner) readListInput(path, what string) ([]byte, error) {
	var in io.Reader = r.streams.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("%s: %w", what, err)
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", what, path, err)
	}
	return bytes.TrimPrefix(data, []byte("\ufeff")), nil
}

// splitList applies readListFile's line rule to data.
func splitList(data []byte, path, what string, isComment func(string) bool) ([]listLine, error) {
	var lines []listLine
	for n, off := 1, 0; off < len(data); n++ {
		line, next := data[off:], len(data)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, next = bytes.TrimSuffix(line[:i], []byte("\r")), off+i+1
		}
		if len(line) > maxListLine {
			return nil, usagef("%s %s: line %d is longer than 64 KiB", what, path, n)
		}
		text := string(line)
		if strings.TrimSpace(text) != "" && !isComment(text) {
			lines = append(lines, listLine{n: n, text: text, off: off})
		}
		off = next
	}
	return lines, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// outcome is one user's result in a multi-user command.
type outcome struct {
	ref    models.UserRef
	user   models.User // zero when the lookup failed
	status string      // e.g. "disabled", "not enrolled", "error"
	err    error       // nil on success
	extra  record      // command-specific fields
}

// result is o as the engine carries it; human is the table-mode line.
func (o outcome) result(human string) peruser.Result {
	return peruser.Result{Ref: o.ref, User: o.user, Outcome: o.status, Err: o.err, Extra: o.extra, Human: human}
}

// outcomeColumns are the leading fields of every per-user result.
var outcomeColumns = []string{"user", "login", "id", "outcome", "error"}

func (o outcome) record() record {
	rec := record{
		{"user", o.ref.String()},
		{"login", o.user.Login},
		{"id", o.user.ID},
		{"outcome", o.status},
	}
	msg := ""
	if o.err != nil {
		msg = errorText(o.err)
	}
	rec = append(rec, field{"error", msg})
	return append(rec, o.extra...)
}

// tally remembers the exit code of the first failure while every user is
// still processed: one bad user must not hide the results of the others.
type tally struct{ code int }

func (t *tally) add(err error) {
	if err != nil && t.code == ExitOK {
		t.code = ExitCode(err)
	}
}

func (t *tally) result() error {
	if t.code == ExitOK {
		return nil
	}
	return exitStatus{t.code}
}

// statusOf names an error for the outcome column.
func statusOf(err error) string {
	switch {
	case errors.Is(err, models.ErrUserNotFound):
		return OutcomeNotFound
	case errors.Is(err, models.ErrNotEnrolled):
		return OutcomeNotEnrolled
	case errors.Is(err, models.ErrAmbiguousUser):
		return OutcomeAmbiguous
	case errors.Is(err, models.ErrAlreadyEnrolled):
		return OutcomeAlreadyEnrolled
	case errors.Is(err, models.ErrProtected):
		return OutcomeProtected
	case errors.Is(err, models.ErrCodeRejected):
		return OutcomeRejected
	}
	return OutcomeError
}

// isHashComment: a line of a user list whose first byte is # is a comment.
func isHashComment(text string) bool { return strings.HasPrefix(text, "#") }
