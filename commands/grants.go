package commands

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) grantsCommand() *cli.Command {
	return &cli.Command{
		Name:  "grants",
		Usage: "print the least-privilege SQL for a database role that runs totpadm",
		Description: `Prints the GRANT statements that let an existing database role run totpadm and
nothing more: SELECT on the mapped users-table columns only (id, login, email),
SELECT, INSERT, UPDATE and DELETE on the credentials and backup codes, SELECT on
the schema version, and SELECT and INSERT only on the audit log, so that the role
can add audit rows and read them but never change or delete one. On totpadm's
own tables the SQL first revokes what the role held there. --read-only is for a
role that only runs status and audit: SELECT on the same, nothing else.

grants reads the catalog and runs none of the statements: pipe them to the
database as an administrator. The role must exist; nothing creates it.
PostgreSQL: --role names the role. MySQL/MariaDB: --role is an account,
name@host, or name for name@%. SQLite has no roles (exit 2): its file's
permissions are its access control.

Examples:
   totpadm --db postgres://admin@db/app grants --role totpadm_support | psql -v ON_ERROR_STOP=1 --single-transaction postgres://admin@db/app
   totpadm --db postgres://admin@db/app grants --role auditor --read-only
   totpadm --db mysql://root@db:3306/app grants --role 'support@10.0.0.%' | mysql -h db -u root app
   totpadm --db postgres://admin@db/app grants --role totpadm_support -o json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "role", Usage: "the existing database `ROLE` (MySQL/MariaDB: name@host, or name for name@%)"},
			&cli.BoolFlag{Name: "read-only", Usage: "only what status and audit need: SELECT"},
		},
		Action: r.grants,
	}
}

func (r *runner) grants(c *cli.Context) error {
	if err := r.storeCan(c, "grants", isNativeStore, "the least-privilege SQL for a framework's tables is not written yet; grant the role what the application's own role has on them"); err != nil {
		return err
	}
	st, err := r.settings(c)
	if err != nil {
		return err
	}
	if !c.IsSet("role") {
		return usagef("grants: --role is required: the existing database role to print the SQL for")
	}
	role := c.String("role")
	// The dialect comes from --db alone, so that bad input and SQLite are
	// answered before anything is opened (or a demo database created).
	driver := "sqlite"
	if !usesDemoDatabase(c) {
		target, err := config.ParseTarget(c.String(flagDB))
		if err != nil {
			return usageError{err}
		}
		driver = target.Driver
	}
	if _, err := models.QuoteRole(driver, role); err != nil {
		if errors.Is(err, models.ErrNoRoles) {
			return usagef("grants: %w; let only the account that runs totpadm (and the application) read and write the database file and its directory (totpadm creates its files 0600)", err)
		}
		return usagef("grants: --role: %w", err)
	}
	db, _, err := r.connect(c, st.tables, &st.svc.Users)
	if err != nil {
		return err
	}
	defer config.Close(db)
	plan, err := models.Grants(c.Context, db, st.tables, st.svc.Users, models.GrantOptions{Role: role, ReadOnly: c.Bool("read-only")})
	if err != nil {
		return err
	}
	if st.format == formatTable {
		for _, stmt := range plan.Statements {
			if _, err := fmt.Fprintf(r.streams.Out, "%s;\n", stmt); err != nil {
				return err
			}
		}
		return nil
	}
	w := newRecordWriter(st.format, r.streams.Out, []string{"dialect", "statement"})
	for _, stmt := range plan.Statements {
		if err := w.write(record{{"dialect", plan.Dialect}, {"statement", stmt}}); err != nil {
			return err
		}
	}
	return w.flush()
}
