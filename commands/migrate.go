package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/config"
)

func (r *runner) migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade totpadm's own tables",
		Description: `Creates totpadm's tables (credentials, backup codes, audit log, schema version,
all under --table-prefix) or upgrades them to this version of totpadm. It never
alters any other table. --dry-run prints the SQL instead of running it.

SQLite: --wal also switches the database file to WAL journal mode, where readers
do not block the writer, so a verify from the login path or a status does not
wait for a long bulk enroll or disable. It is a lasting property of the file and
affects every program using it (the -wal and -shm files appear beside it, and
the directory must be writable), so totpadm never changes the journal mode
unless asked.

Examples:
   totpadm --db postgres://admin@db.internal/app migrate --dry-run
   totpadm --db postgres://admin@db.internal/app migrate
   totpadm --db /var/lib/app/app.db migrate --wal`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print the SQL, change nothing"},
			&cli.BoolFlag{Name: "wal", Usage: "SQLite: also switch the database file to WAL journal mode (readers do not block the writer)"},
		},
		Action: r.migrate,
	}
}

func (r *runner) migrate(c *cli.Context) error {
	st, err := r.settings(c)
	if err != nil {
		return err
	}
	wal := c.Bool("wal")
	if wal && !usesDemoDatabase(c) {
		if t, err := config.ParseTarget(c.String(flagDB)); err == nil && t.Driver != "sqlite" {
			return usagef("migrate: --wal applies to SQLite only; %s is %s", t, t.Driver)
		}
	}
	db, _, err := r.connect(c, st.tables, &st.svc.Users)
	if err != nil {
		return err
	}
	sess := &session{db: db}
	defer sess.close()

	dryRun := c.Bool("dry-run")
	store, err := st.bareStore()
	if err != nil {
		return err
	}
	plan, err := store.Migrate(c.Context, db, dryRun)
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
	if !wal {
		return nil
	}
	if dryRun {
		fmt.Fprintln(w, "PRAGMA journal_mode=WAL;")
		return nil
	}
	before, err := config.SwitchToWAL(c.Context, db)
	if err != nil {
		return err
	}
	if before == "wal" {
		fmt.Fprintln(w, "journal mode is already WAL; nothing to do")
	} else {
		fmt.Fprintf(w, "switched the journal mode from %s to WAL\n", before)
	}
	return nil
}
