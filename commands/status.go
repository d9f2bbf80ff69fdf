package commands

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

var statusColumns = []string{"id", "login", "email", "state", "backup_codes_left", "enrolled_at", "last_used_at", "failures", "locked_until", "temp_code_until"}

func (r *runner) statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Aliases:   []string{"list"},
		Usage:     "show the 2FA state of users (all users when none are named)",
		ArgsUsage: "[USER…]",
		Description: `Shows, for each user: id, login, email, state (enabled, pending, not-enrolled
or locked; JSON and CSV say "disabled" for not-enrolled), backup codes left, when
enrolled, when last used, consecutive failures and when a lockout ends. With no
USER, lists every user in the users table, ordered by id, streaming so that
millions of users need no more memory than one.

Examples:
   totpadm status alice
   totpadm status --state locked --time relative
   totpadm list --summary -o json
   totpadm status -o csv > 2fa-status.csv`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state", Usage: "only users in this state: enabled, pending, not-enrolled (also: none, disabled) or locked"},
			&cli.BoolFlag{Name: "summary", Usage: "print the number of users in each state instead"},
			&cli.StringFlag{Name: "time", Value: timeAbsolute, Usage: "times in the table: absolute (UTC, RFC 3339) or relative (\"3 min ago\", \"in 12 min\"); JSON and CSV are always absolute"},
			fromFileFlag(),
		},
		Action: r.status,
	}
}

// stateNotEnrolled is how tables name the state of a user without 2FA —
// the words disable ("not enrolled") and verify ("not enrolled in 2FA")
// use — where models says "disabled", which reads as "someone turned it
// off" and is also disable's word for what it just did. JSON and CSV keep
// models' "disabled", which scripts already parse.
const stateNotEnrolled = "not-enrolled"

// stateAliases are the --state values that mean models.StatusDisabled.
var stateAliases = []string{stateNotEnrolled, "none", models.StatusDisabled}

// tableState is the state as a table shows it.
func tableState(s string) string {
	if s == models.StatusDisabled {
		return stateNotEnrolled
	}
	return s
}

// parseState reads --state: a models state, or an alias of "disabled".
func parseState(s string) (string, error) {
	switch {
	case s == "":
		return "", nil
	case slices.Contains(stateAliases, s):
		return models.StatusDisabled, nil
	case slices.Contains(models.StatusStates, s):
		return s, nil
	}
	return "", usagef("status: invalid --state %q: want enabled, pending, %s or locked (none and disabled mean %s too)", s, stateNotEnrolled, stateNotEnrolled)
}

func (r *runner) status(c *cli.Context) error {
	state, err := parseState(c.String("state"))
	if err != nil {
		return err
	}
	relative := false
	switch c.String("time") {
	case timeAbsolute:
	case timeRelative:
		relative = true
	default:
		return usagef("status: invalid --time %q: want %s or %s", c.String("time"), timeAbsolute, timeRelative)
	}
	var refs []models.UserRef
	if c.NArg() > 0 || c.IsSet(flagFromFile) {
		if refs, err = r.userRefs(c, c.Args().Slice()); err != nil {
			return err
		}
	}
	sess, err := r.open(c, keyNone)
	if err != nil {
		return err
	}
	defer sess.close()

	if c.Bool("summary") {
		return r.statusSummary(c, sess, refs, state)
	}
	rw := newStatusWriter(sess.format, r.streams.Out, sess.svc.Config().Users.ProtectedColumn != "")
	if rw.table != nil {
		rw.color = r.streams.Color
		if relative {
			rw.now = r.streams.Now()
		}
		if rw.color {
			rw.table.style = colourStateColumn(3)
		}
	}
	emit := rw.write
	if refs == nil {
		if err := streamStatus(c.Context, sess, state, emit); err != nil {
			return err
		}
		return rw.flush()
	}
	var t tally
	for _, ref := range refs {
		row, err := r.userStatus(c, sess, ref)
		if err != nil {
			t.add(err)
			fmt.Fprintf(r.streams.Err, "totpadm: %s\n", r.oneLine(err.Error()))
			continue
		}
		if state == "" || row.State == state {
			if err := emit(row); err != nil {
				return err
			}
		}
	}
	if err := rw.flush(); err != nil {
		return err
	}
	return t.result()
}

// statusBatch is how many rows travel together from the query to the
// renderer.
const statusBatch = 512

// streamStatus runs the status query in one goroutine and renders in this
// one, so that fetching rows and formatting them use both cores. Rows
// travel in batches, and the batches are recycled, so memory stays a few
// batches whatever the number of users.
func streamStatus(ctx context.Context, sess *session, state string, emit func(models.StatusRow) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan []models.StatusRow, 4)
	free := make(chan []models.StatusRow, 6)
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		batch := make([]models.StatusRow, 0, statusBatch)
		send := func() error {
			select {
			case full <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case batch = <-free:
				batch = batch[:0]
			default:
				batch = make([]models.StatusRow, 0, statusBatch)
			}
			return nil
		}
		err := sess.store.EachStatus(ctx, sess.db, state, func(r models.StatusRow) error {
			batch = append(batch, r)
			if len(batch) == statusBatch {
				return send()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = send()
		}
		errc <- err
	}()
	var renderErr error
	for batch := range full {
		for _, r := range batch {
			if renderErr != nil {
				break
			}
			if renderErr = emit(r); renderErr != nil {
				cancel() // stop the query; keep draining so it can finish
			}
		}
		select {
		case free <- batch:
		default:
		}
	}
	if err := <-errc; renderErr == nil {
		return err
	}
	return renderErr
}

func (r *runner) userStatus(c *cli.Context, sess *session, ref models.UserRef) (models.StatusRow, error) {
	user, err := sess.svc.LookupUser(c.Context, sess.db, ref)
	if err != nil {
		return models.StatusRow{}, fmt.Errorf("status %s: %w", ref, err)
	}
	return sess.store.UserStatus(c.Context, sess.db, user)
}

func statusRecord(s models.StatusRow) record {
	return record{
		{"id", s.ID}, {"login", s.Login}, {"email", s.Email}, {"state", s.State},
		{"backup_codes_left", s.BackupCodesLeft}, {"enrolled_at", s.EnrolledAt},
		{"last_used_at", s.LastUsedAt}, {"failures", s.Failures}, {"locked_until", s.LockedUntil},
		{"temp_code_until", s.TempCodeUntil},
	}
}

func (r *runner) statusSummary(c *cli.Context, sess *session, refs []models.UserRef, state string) error {
	counts := map[string]int{}
	count := func(row models.StatusRow) error { counts[row.State]++; return nil }
	var t tally
	if refs == nil {
		if err := sess.store.EachStatus(c.Context, sess.db, state, count); err != nil {
			return err
		}
	}
	for _, ref := range refs {
		row, err := r.userStatus(c, sess, ref)
		if err != nil {
			t.add(err)
			fmt.Fprintf(r.streams.Err, "totpadm: %s\n", r.oneLine(err.Error()))
			continue
		}
		if state == "" || row.State == state {
			count(row)
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if sess.format == formatJSON {
		rec := record{}
		for _, s := range models.StatusStates {
			rec = append(rec, field{s, counts[s]})
		}
		rec = append(rec, field{"total", total})
		rw := newRecordWriter(formatJSON, r.streams.Out, nil)
		rw.write(rec)
		if err := rw.flush(); err != nil {
			return err
		}
		return t.result()
	}
	rw := newRecordWriter(sess.format, r.streams.Out, []string{"state", "count"})
	if tw, ok := rw.(*tableWriter); ok && r.streams.Color {
		tw.style = colourStateColumn(0)
	}
	for _, s := range models.StatusStates {
		name := s
		if sess.format == formatTable {
			name = tableState(s)
		}
		rw.write(record{{"state", name}, {"count", counts[s]}})
	}
	rw.write(record{{"state", "total"}, {"count", total}})
	if err := rw.flush(); err != nil {
		return err
	}
	return t.result()
}

// statusWriter renders status rows. CSV and JSON are appended straight
// from each row into one reused buffer — no boxed values, no reflection —
// since status may print a million of them; tables go through the generic
// aligned writer.
type statusWriter struct {
	format    string
	protected bool // a protected-account column is mapped: show it
	w         *bufio.Writer
	buf       []byte
	table     *tableWriter // table format only
	started   bool
	color     bool      // table: colour the state column
	now       time.Time // table: show times relative to now, unless zero
}

func newStatusWriter(format string, w io.Writer, protected bool) *statusWriter {
	if format == formatTable {
		cols := statusColumns
		if protected {
			cols = append(cols[:len(cols):len(cols)], "protected")
		}
		return &statusWriter{format: format, protected: protected, table: newRecordWriter(formatTable, w, cols).(*tableWriter)}
	}
	return &statusWriter{format: format, protected: protected, w: bufio.NewWriterSize(w, 64<<10)}
}

func (s *statusWriter) write(r models.StatusRow) error {
	switch s.format {
	case formatTable:
		rec := statusRecord(r)
		rec[3].value = tableState(r.State)
		if !s.now.IsZero() {
			relative := func(i int, t *time.Time) {
				if t != nil {
					rec[i].value = relativeTime(*t, s.now)
				}
			}
			relative(5, r.EnrolledAt)
			relative(6, r.LastUsedAt)
			relative(8, r.LockedUntil)
			relative(9, r.TempCodeUntil)
		}
		if s.protected {
			rec = append(rec, field{"protected", r.Protected})
		}
		return s.table.write(rec)
	case formatJSON:
		b := append(s.buf[:0], `{"id":`...)
		b = appendJSONString(b, r.ID)
		b = append(b, `,"login":`...)
		b = appendJSONString(b, r.Login)
		b = append(b, `,"email":`...)
		b = appendJSONString(b, r.Email)
		b = append(b, `,"state":"`...)
		b = append(b, r.State...)
		b = append(b, `","backup_codes_left":`...)
		b = strconv.AppendInt(b, int64(r.BackupCodesLeft), 10)
		b = append(b, `,"enrolled_at":`...)
		b = appendJSONTime(b, r.EnrolledAt)
		b = append(b, `,"last_used_at":`...)
		b = appendJSONTime(b, r.LastUsedAt)
		b = append(b, `,"failures":`...)
		b = strconv.AppendInt(b, int64(r.Failures), 10)
		b = append(b, `,"locked_until":`...)
		b = appendJSONTime(b, r.LockedUntil)
		b = append(b, `,"temp_code_until":`...)
		b = appendJSONTime(b, r.TempCodeUntil)
		if s.protected {
			b = append(b, `,"protected":`...)
			b = strconv.AppendBool(b, r.Protected)
		}
		s.buf = append(b, '}', '\n')
	default:
		if !s.started {
			s.started = true
			header := strings.Join(statusColumns, ",")
			if s.protected {
				header += ",protected"
			}
			if _, err := s.w.WriteString(header + "\n"); err != nil {
				return err
			}
		}
		b := appendCSVField(s.buf[:0], r.ID)
		b = append(b, ',')
		b = appendCSVField(b, r.Login)
		b = append(b, ',')
		b = appendCSVField(b, r.Email)
		b = append(b, ',')
		b = append(b, r.State...)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.BackupCodesLeft), 10)
		b = append(b, ',')
		b = appendCSVTime(b, r.EnrolledAt)
		b = append(b, ',')
		b = appendCSVTime(b, r.LastUsedAt)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.Failures), 10)
		b = append(b, ',')
		b = appendCSVTime(b, r.LockedUntil)
		b = append(b, ',')
		b = appendCSVTime(b, r.TempCodeUntil)
		if s.protected {
			b = append(b, ',')
			b = strconv.AppendBool(b, r.Protected)
		}
		s.buf = append(b, '\n')
	}
	_, err := s.w.Write(s.buf)
	return err
}

func appendCSVTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return b
	}
	return t.UTC().AppendFormat(b, time.RFC3339)
}

func (s *statusWriter) flush() error {
	if s.format == formatTable {
		return s.table.flush()
	}
	if s.format == formatCSV && !s.started {
		s.started = true
		s.w.WriteString(strings.Join(statusColumns, ",") + "\n")
	}
	return s.w.Flush()
}
