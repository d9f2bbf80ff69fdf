package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

var auditColumns = []string{"at", "actor", "host", "action", "user_id", "login", "outcome", "reason"}

func (r *runner) auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "show the audit log, newest first",
		ArgsUsage: "[USER]",
		Description: `Shows what was done to whose 2FA, by whom, from which host, and how it ended.
The log never contains a secret, a code or a hash.

Examples:
   totpadm audit alice
   totpadm audit --since 24h --action disable
   totpadm audit --since 2026-11-01T00:00:00Z -o json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Usage: "only entries about this user (same as the USER argument)"},
			&cli.StringFlag{Name: "since", Usage: "only entries since a time (RFC 3339) or a duration ago (24h, 90m)"},
			&cli.StringFlag{Name: "action", Usage: "only this action: " + strings.Join(models.AuditActions, ", ")},
			&cli.IntFlag{Name: "limit", Usage: "at most this many entries (0 = all)"},
		},
		Action: r.audit,
	}
}

func (r *runner) audit(c *cli.Context) error {
	if c.NArg() > 1 {
		return usagef("audit: want at most one USER, got %d", c.NArg())
	}
	userArg := c.Args().First()
	if u := c.String("user"); u != "" {
		if userArg != "" && userArg != u {
			return usagef("audit: USER %q and --user %q disagree", userArg, u)
		}
		userArg = u
	}
	filter := models.AuditFilter{Action: c.String("action"), Limit: c.Int("limit")}
	if filter.Action != "" && !slices.Contains(models.AuditActions, filter.Action) {
		return usagef("audit: invalid --action %q: want %s", filter.Action, strings.Join(models.AuditActions, ", "))
	}
	if filter.Limit < 0 {
		return usagef("audit: --limit must not be negative")
	}
	if s := c.String("since"); s != "" {
		since, err := parseSince(s, r.streams.Now())
		if err != nil {
			return err
		}
		filter.Since = since
	}
	var ref *models.UserRef
	if userArg != "" {
		parsed, err := models.ParseUserRef(userArg)
		if err != nil {
			return err
		}
		ref = &parsed
	}
	sess, err := r.open(c, keyNone)
	if err != nil {
		return err
	}
	defer sess.close()

	if ref != nil {
		user, err := sess.svc.LookupUser(c.Context, sess.db, *ref)
		if err != nil {
			return fmt.Errorf("audit %s: %w", ref, err)
		}
		filter.UserID = user.ID
	}
	rw := newRecordWriter(sess.format, r.streams.Out, auditColumns)
	err = sess.svc.EachAuditEntry(c.Context, sess.db, filter, func(e models.AuditEntry) error {
		return rw.write(record{
			{"at", e.At}, {"actor", e.Actor}, {"host", e.Host}, {"action", e.Action},
			{"user_id", e.UserID}, {"login", e.UserLogin}, {"outcome", e.Outcome}, {"reason", e.Reason},
		})
	})
	if err != nil {
		return err
	}
	return rw.flush()
}

// parseSince reads an RFC 3339 time, a date, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("audit: --since %q: a duration must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("audit: --since %q: want an RFC 3339 time (2026-11-01T09:00:00Z), a date (2026-11-01) or a duration (24h)", s)
}
