package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

func (r *runner) migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade totpadm's own tables",
		Description: `Creates totpadm's tables (credentials, backup codes, audit log, schema version,
all under --table-prefix) or upgrades them to this version of totpadm. It never
alters any other table. --dry-run prints the SQL instead of running it.

Examples:
   totpadm --db postgres://admin@db.internal/app migrate --dry-run
   totpadm --db postgres://admin@db.internal/app migrate`,
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "dry-run", Usage: "print the SQL, change nothing"}},
		Action: r.migrate,
	}
}

func (r *runner) migrate(c *cli.Context) error {
	st, err := r.settings(c)
	if err != nil {
		return err
	}
	db, _, err := r.connect(c, st.tables, &st.svc.Users)
	if err != nil {
		return err
	}
	sess := &session{db: db}
	defer sess.close()

	dryRun := c.Bool("dry-run")
	plan, err := models.Migrate(c.Context, db, st.tables, dryRun)
	if err != nil {
		return err
	}
	w := r.streams.Out
	switch {
	case dryRun:
		if len(plan.Statements) == 0 {
			fmt.Fprintf(w, "-- schema is at version %d; nothing to do\n", plan.From)
		}
		for _, stmt := range plan.Statements {
			fmt.Fprintf(w, "%s;\n", stmt)
		}
	case len(plan.Statements) == 0:
		fmt.Fprintf(w, "schema is at version %d; nothing to do\n", plan.From)
	default:
		fmt.Fprintf(w, "migrated schema from version %d to %d\n", plan.From, plan.To)
	}
	return nil
}
