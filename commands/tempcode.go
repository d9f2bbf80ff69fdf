package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/commands/peruser"
	"github.com/totpadm/totpadm/models"
)

// OutcomeIssued: temp-code issued a temporary access code.
const OutcomeIssued = "issued"

func (r *runner) tempCodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "temp-code",
		Usage:     "issue a one-time temporary access code for an enrolled user",
		ArgsUsage: "USER…",
		Description: `Issues each USER a temporary access code that logs them in once in place of
a code from the authenticator app, until it expires (--ttl, default 1h, at most
24h). It is for a user who lost their phone or is locked out, when disabling
2FA would be too much. The code is printed once and stored only as a salted
hash; a new code replaces the user's previous one. It works also while the
user is locked out, and clears the lockout when used. disable and
enroll --force delete it. A pending enrollment gets none (there is no second
factor to bypass yet). --reason is required and recorded with the actor in
the audit log, at issue and at use. A protected account
(--user-protected-column) needs --allow-protected.

Examples:
   totpadm temp-code alice --reason "lost phone, ticket 4521"
   totpadm temp-code alice --ttl 15m --reason "locked out at the airport"
   totpadm -o json temp-code --reason "migration weekend" --from-file users.txt
   totpadm --user-protected-column is_superuser temp-code --allow-protected --reason "ticket 9" root`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "ttl", Value: models.DefaultTempCodeTTL, Usage: "how long the code works (at most 24h)"},
			&cli.StringFlag{Name: "reason", Usage: "why (required; recorded in the audit log)"},
			allowProtectedFlag(),
			yesFlag(),
			fromFileFlag(),
		},
		Action: r.tempCode,
	}
}

func (r *runner) tempCode(c *cli.Context) error {
	if err := r.storeCan(c, "temp-code", canIssueTempCodes, "its framework has no temporary access code that the application's login would accept"); err != nil {
		return err
	}
	reason := strings.TrimSpace(c.String("reason"))
	if reason == "" {
		return usagef("temp-code: --reason is required (it is recorded in the audit log)")
	}
	ttl := c.Duration("ttl")
	if err := models.CheckTempCodeTTL(ttl); err != nil {
		return usagef("temp-code: --ttl %s: must be more than 0 and at most 24h", ttl)
	}
	if err := r.checkProtectedPrompt(c, "temp-code"); err != nil {
		return err
	}
	return r.runPerUser(c, perUser{verb: "temp-code", key: keyNone, columns: []string{"code", "expires_at"}, spec: func(sess *session) peruser.Spec {
		return r.protect(c, sess, guard{action: models.ActionTempCode, reason: reason}, peruser.Spec{Verb: "temp-code", Apply: func(ctx context.Context, users []models.User, report peruser.Report) error {
			return sess.store.(models.TempCodeIssuer).IssueTempCodes(ctx, sess.db, users, ttl, reason, models.BulkOptions{}, func(j int, tc models.TempCode, err error) {
				res := peruser.Result{Outcome: OutcomeIssued, Err: err}
				var code, expires any
				if err != nil {
					res.Outcome = statusOf(err)
				} else {
					code, expires = tc.Code, tc.ExpiresAt
				}
				res.Extra = record{{"code", code}, {"expires_at", expires}}
				res.Human = fmt.Sprintf("%s: temporary access code %s — works once, until %s; shown only now",
					terminalSafe(users[j].String()), tc.Code, tc.ExpiresAt.UTC().Format(time.RFC3339))
				report(j, res)
			})
		}})
	}})
}
