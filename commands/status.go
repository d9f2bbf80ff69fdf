package commands

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

// statusSpec is status's listing, in every format: adding a column is one
// entry here (an optional one with when, like protected).
var statusSpec = []column[models.StatusRow]{
	textColumn("id", func(r *models.StatusRow) string { return r.ID }),
	textColumn("login", func(r *models.StatusRow) string { return r.Login }),
	textColumn("email", func(r *models.StatusRow) string { return r.Email }),
	wordColumn("state", func(r *models.StatusRow) string { return r.State }).
		inTable(func(r *models.StatusRow) string { return tableState(r.State) }).coloured(),
	intColumn("backup_codes_left", func(r *models.StatusRow) int { return r.BackupCodesLeft }),
	timeColumn("enrolled_at", func(r *models.StatusRow) *time.Time { return r.EnrolledAt }),
	timeColumn("last_used_at", func(r *models.StatusRow) *time.Time { return r.LastUsedAt }),
	intColumn("failures", func(r *models.StatusRow) int { return r.Failures }),
	timeColumn("locked_until", func(r *models.StatusRow) *time.Time { return r.LockedUntil }),
	timeColumn("temp_code_until", func(r *models.StatusRow) *time.Time { return r.TempCodeUntil }),
	boolColumn("protected", func(r *models.StatusRow) bool { return r.Protected }).
		when(func(run *columnContext) bool { return run.config.Users.ProtectedColumn != "" }),
	intColumn("devices", func(r *models.StatusRow) int { return r.Devices }).
		when(func(run *columnContext) bool { return run.store.DeviceCounts }),
}

func (r *runner) statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Aliases:   []string{"list"},
		Usage:     "show the 2FA state of users (all users when none are named)",
		ArgsUsage: "[USER…]",
		Description: `Shows, for each user: id, login, email, state (enabled, pending, not-enrolled
or locked; JSON and CSV say "disabled" for not-enrolled), backup codes left, when
enrolled, when last used, consecutive failures and when a lockout ends (and,
with --store django-otp, how many django-otp devices the user has). With no
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
	opts := statusOptions{columns: columnContext{config: sess.svc.Config(), store: sess.store.Info()}, color: r.streams.Color}
	if relative {
		opts.now = r.streams.Now()
	}
	rw := newStatusWriter(sess.format, r.streams.Out, opts)
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
			if err := emit(&row); err != nil {
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
func streamStatus(ctx context.Context, sess *session, state string, emit func(*models.StatusRow) error) error {
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
		for i := range batch {
			if renderErr != nil {
				break
			}
			if renderErr = emit(&batch[i]); renderErr != nil {
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

// statusOptions shape a listing beyond its format.
type statusOptions struct {
	columns columnContext // which optional columns show
	color   bool          // table: colour the state column
	now     time.Time     // table: show times relative to now, unless zero
}

// statusWriter renders status rows by statusSpec.
type statusWriter = columnWriter[models.StatusRow]

func newStatusWriter(format string, w io.Writer, opts statusOptions) *statusWriter {
	return newColumnWriter(format, w, columnsFor(statusSpec, &opts.columns), tableOptions{color: opts.color, now: opts.now})
}
