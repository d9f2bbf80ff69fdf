package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

const flagFromFile = "from-file"

func fromFileFlag() cli.Flag {
	return &cli.StringFlag{Name: flagFromFile, Usage: "read users from `FILE` (- for stdin): one login or id:N a line; # comments and blank lines ignored"}
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

// listLine is one meaningful line of a list file, with its line number.
type listLine struct {
	n    int
	text string
}

// readListFile reads a file of one item a line (- is stdin), trimmed, with
// blank lines and the lines isComment picks left out: the format of
// --from-file and of import. what names the input in messages.
func (r *runner) readListFile(path, what string, isComment func(string) bool) ([]listLine, error) {
	var in io.Reader = r.streams.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("%s: %w", what, err)
		}
		defer f.Close()
		in = f
	}
	var lines []listLine
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			// Windows editors start a UTF-8 file with a byte-order mark;
			// it is not part of the first login.
			line = strings.TrimPrefix(line, "\ufeff")
		}
		text := strings.TrimSpace(line)
		if text == "" || isComment(text) {
			continue
		}
		lines = append(lines, listLine{n: n, text: text})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, usagef("%s %s: a line is longer than 64 KiB", what, path)
		}
		return nil, fmt.Errorf("%s: read %s: %w", what, path, err)
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
		return "not found"
	case errors.Is(err, models.ErrNotEnrolled):
		return "not enrolled"
	case errors.Is(err, models.ErrAmbiguousUser):
		return "ambiguous"
	case errors.Is(err, models.ErrAlreadyEnrolled):
		return "already enrolled"
	case errors.Is(err, models.ErrCodeRejected):
		return "rejected"
	}
	return "error"
}

// isHashComment: a line of a user list whose first character is # is a
// comment.
func isHashComment(text string) bool { return strings.HasPrefix(text, "#") }
