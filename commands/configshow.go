package commands

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

func (r *runner) configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "show the effective configuration",
		Description: `Examples:
   totpadm config show
   totpadm --config /etc/totpadm/config.toml config show -o json`,
		Subcommands: []*cli.Command{{
			Name:  "show",
			Usage: "print every setting, its value and where it came from (flag, environment, file, default)",
			Description: `Prints each global setting with its effective value and its source, in the
precedence order flag > environment > configuration file > default. A value
every command would refuse is shown marked "(invalid, refused: …)", and config
show then exits as those commands do: 2 when it was typed as a flag, 5 when it
came from the environment or the configuration file. Database
passwords and the key are never printed: TOTPADM_KEY shows only its key id,
and a --db value that is not valid shows only why, as "(invalid; hidden: …)".

Examples:
   totpadm config show
   TOTPADM_OUTPUT=json totpadm --config /etc/totpadm/config.toml config show`,
			Action: r.configShow,
		}},
		// Reached only when no subcommand matched.
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "":
				cli.ShowSubcommandHelp(c)
				return usagef("config: no subcommand given (want show)")
			case "help", "h":
				return cli.ShowSubcommandHelp(c)
			}
			return usagef("config: unknown subcommand %q (want show)", c.Args().First())
		},
	}
}

func (r *runner) configShow(c *cli.Context) error {
	format, err := parseFormat(c.String(flagOutput))
	if err != nil {
		return r.badSetting(c, flagOutput, err)
	}
	rw := newRecordWriter(format, r.streams.Out, []string{"setting", "value", "source"})
	demo := usesDemoDatabase(c)
	invalid := map[string]string{}
	for _, s := range settingChecks {
		if err := s.check(r, c); err != nil {
			invalid[s.name] = err.Error()
		}
	}
	for _, f := range c.App.Flags {
		name := f.Names()[0]
		if name == "help" || name == "generate-bash-completion" {
			continue
		}
		value := c.Value(name)
		shown := plainValue(value)
		if s, ok := value.(string); ok {
			shown = s
		}
		source := r.sourceOf(c, f)
		switch {
		case name == flagConfig && shown == "" && r.configFile != "":
			shown, source = r.configFile, "discovered"
		case name == flagActor && shown == "":
			shown = r.defaultActor()
			source = "default ($SUDO_USER, else the OS user)"
		// Without --db the demo database is used, and with it come the
		// key file beside it and its users table's email column: show
		// what a command would really use.
		case demo && name == flagDB:
			shown, source = "./"+config.DemoDBPath, "default (demo database, created on first use)"
		case demo && name == flagKeyFile && shown == "" && r.streams.Getenv("TOTPADM_KEY") == "":
			shown, source = "./"+config.DemoKeyFile, "default (demo key file)"
		case demo && name == flagEmailColumn && shown == "":
			shown, source = "email", "default (demo users table)"
		case !c.IsSet(name) && storeUsersDefault(c, name) != "":
			shown, source = storeUsersDefault(c, name), "default ("+c.String(flagStore)+" store)"
		}
		if name == flagDB && shown != "" {
			shown = dbForDisplay(shown)
		}
		if name == flagOnChange {
			shown = config.Redact(shown, "") // a hook may name a database URL, password and all
		}
		switch msg, bad := invalid[name]; {
		case bad:
			// Nothing is in force: every command refuses this value.
			shown += " (invalid, refused: " + msg + ")"
		case name == flagBusyTimeout:
			shown = busyTimeout(c).String() // SQLite counts whole milliseconds
		}
		rw.write(record{{"setting", name}, {"value", shown}, {"source", source}})
	}
	keySource, keyValue := "unset", ""
	if text := r.streams.Getenv("TOTPADM_KEY"); text != "" {
		keySource = "env TOTPADM_KEY"
		if k, err := models.ParseKey(text); err == nil {
			keyValue = "(hidden) key id " + k.ID()
		} else {
			keyValue = "(hidden) invalid: " + err.Error()
		}
	}
	rw.write(record{{"setting", "key"}, {"value", keyValue}, {"source", keySource}})
	if err := rw.flush(); err != nil {
		return err
	}
	// Shown all the same, so that the source of a bad value can be found;
	// then refused as every other command refuses it.
	return r.settingProblem(c)
}

// sourceOf says where a global flag's value came from.
func (r *runner) sourceOf(_ *cli.Context, f cli.Flag) string {
	if source := r.sources[f.Names()[0]]; source != "" {
		return source
	}
	return "default"
}

// dbForDisplay is the --db value as config show prints it. A value that
// parses is shown through Target.String(), password hidden. One that does
// not parse is never shown, not even redacted: with no grammar to go by
// (postgres:/…, a bad %-escape, pgsql://…, a quoted keyword value with a
// blank in it), no redaction can know where a password starts and ends,
// and a partial one leaks the rest. The admin gets ParseTarget's reason
// instead, which never quotes a password and says how to write the value.
func dbForDisplay(value string) string {
	t, err := config.ParseTarget(value)
	if err == nil {
		return t.String()
	}
	reason := strings.TrimPrefix(err.Error(), config.ErrInvalidDSN.Error()+": ")
	return "(invalid; hidden: " + config.Redact(reason, "") + ")"
}

// storeUsersDefault is the users-table mapping a framework store uses when
// none is configured (settings applies the same), or "".
func storeUsersDefault(c *cli.Context, name string) string {
	store := c.String(flagStore)
	if store == models.StoreTotpadm || models.CheckStoreName(store) != nil {
		return ""
	}
	def := models.StoreUsersTable(store)
	return map[string]string{flagUsersTable: def.Table, flagIDColumn: def.IDColumn, flagLoginColumn: def.LoginColumn, flagEmailColumn: def.EmailColumn}[name]
}
