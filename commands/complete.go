package commands

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"
	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

// The completion scripts ask `totpadm __complete -- WORD…` for the
// completions of the last WORD, the words before it being the command
// line typed so far. Unlike urfave/cli's --generate-bash-completion, this
// knows flag values and the users in the configured database.
const (
	completeCommandName = "__complete"
	// completeLimit bounds the logins offered: a shell shows them all.
	completeLimit = 50
	// completeTimeout bounds the database lookup: an unreachable or hung
	// server must never hang the shell.
	completeTimeout = time.Second
)

// completeValues are the values of the flags that have a fixed set.
var completeValues = map[string][]string{
	flagOutput:    {formatTable, formatJSON, formatCSV},
	"o":           {formatTable, formatJSON, formatCSV},
	flagAlgorithm: {"SHA1", "SHA256", "SHA512"},
	flagDigits:    {"6", "7", "8"},
	"state":       models.StatusStates,
	"action":      models.AuditActions,
	flagStore:     models.StoreNames(),
}

func (r *runner) completeCommand() *cli.Command {
	return &cli.Command{
		Name:      completeCommandName,
		Hidden:    true,
		ArgsUsage: "-- WORD…",
		Usage:     "print the completions of the last WORD (for the scripts of `totpadm completion`)",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "users", Usage: "print the logins that start with WORD"}},
		Action: func(c *cli.Context) error {
			words := c.Args().Slice()
			if c.Bool("users") {
				if len(words) == 1 {
					r.completeUsers(c, words[0])
				}
				return nil
			}
			for _, w := range r.completions(c, words) {
				fmt.Fprintln(r.streams.Out, w)
			}
			return nil // a completion never fails: the shell would print it
		},
	}
}

// completion is where the cursor is, as read from the words before it.
type completion struct {
	cmd        *cli.Command // nil: no command yet
	expecting  string       // a flag waiting for its value
	positional int          // arguments of cmd before the cursor
	dashDash   bool         // after a "--": only arguments
	unknown    bool         // an unknown command: nothing to offer
	globals    []string     // global flags and values, for the user lookup
}

func (r *runner) completions(c *cli.Context, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	st := readCompletion(c.App, before)
	if st.unknown {
		return nil
	}
	// bash splits "--output=j" at the "=" into its own words.
	if cur == "=" && st.expecting != "" {
		cur = ""
	}
	if st.expecting != "" {
		return withPrefix(completeValues[st.expecting], "", cur)
	}
	if !st.dashDash && strings.HasPrefix(cur, "-") {
		if name, value, ok := strings.Cut(cur, "="); ok {
			return withPrefix(completeValues[strings.TrimLeft(name, "-")], name+"=", value)
		}
		flags := c.App.VisibleFlags()
		if st.cmd != nil {
			flags = append(st.cmd.VisibleFlags(), flags...)
		}
		var names []string
		for _, f := range flags {
			for _, n := range f.Names() {
				if len(n) == 1 {
					names = append(names, "-"+n)
				} else {
					names = append(names, "--"+n)
				}
			}
		}
		return withPrefix(names, "", cur)
	}
	if st.cmd == nil {
		return withPrefix(commandNames(c.App.Commands), "", cur)
	}
	if len(st.cmd.Subcommands) > 0 && st.positional == 0 {
		return withPrefix(commandNames(st.cmd.Subcommands), "", cur)
	}
	switch argumentKind(st.cmd, st.positional) {
	case "USER":
		return r.lookUpUsers(c, st.globals, cur)
	case "SHELL":
		return withPrefix([]string{"bash", "zsh", "fish"}, "", cur)
	}
	return nil // files, or nothing: the shell decides
}

// readCompletion walks the words before the cursor the way the command
// line will be parsed.
func readCompletion(app *cli.App, words []string) completion {
	var st completion
	globals := flagArity(app.Flags)
	valueIsGlobal := false
	for _, w := range words {
		switch {
		case st.expecting != "":
			if w == "=" {
				continue // bash's word for the = of --flag=value
			}
			if valueIsGlobal {
				st.globals = append(st.globals, w)
			}
			st.expecting = ""
			continue
		case st.dashDash:
			st.positional++
			continue
		case w == "--":
			st.dashDash = true
			continue
		}
		if name, hasValue, ok := flagName(w); ok {
			var own map[string]bool
			if st.cmd != nil {
				own = flagArity(st.cmd.Flags)
			}
			takes, isOwn := own[name]
			if !isOwn {
				var isGlobal bool
				if takes, isGlobal = globals[name]; isGlobal && name != "help" && name != "h" && name != "version" {
					st.globals = append(st.globals, w)
				}
			}
			if takes && !hasValue {
				st.expecting, valueIsGlobal = name, !isOwn
			}
			continue
		}
		switch {
		case st.cmd == nil:
			if st.cmd = findCommand(app.Commands, w); st.cmd == nil {
				return completion{unknown: true}
			}
		case st.positional == 0 && findCommand(st.cmd.Subcommands, w) != nil:
			st.cmd = findCommand(st.cmd.Subcommands, w)
		default:
			st.positional++
		}
	}
	return st
}

// argumentKind reads from ArgsUsage ("USER CODE", "[USER…]", "SHELL")
// what the n-th argument of cmd is.
func argumentKind(cmd *cli.Command, n int) string {
	fields := strings.Fields(cmd.ArgsUsage)
	if len(fields) == 0 {
		return ""
	}
	field := fields[min(n, len(fields)-1)]
	if n >= len(fields) && !strings.Contains(field, "…") {
		return ""
	}
	return strings.Trim(field, "[]…")
}

func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	return names
}

func withPrefix(words []string, add, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, add+w)
		}
	}
	return out
}

// lookUpUsers runs totpadm again with the global flags typed so far, so
// that the database, the users-table mapping and the configuration file
// are found exactly as the command being typed will find them.
func (r *runner) lookUpUsers(c *cli.Context, globals []string, prefix string) []string {
	args := append([]string{"totpadm"}, globals...)
	args = append(args, completeCommandName, "--users", "--", prefix)
	var out strings.Builder
	Run(c.Context, args, Streams{Out: &out, Err: io.Discard, LookupEnv: r.streams.LookupEnv, Hostname: r.streams.Hostname, Now: r.streams.Now})
	return strings.Fields(out.String())
}

// completeUsers prints up to completeLimit logins starting with prefix,
// or nothing when the database does not answer within completeTimeout.
func (r *runner) completeUsers(c *cli.Context, prefix string) {
	if usesDemoDatabase(c) {
		// Completing must not create the demo database.
		if _, err := os.Stat(config.DemoDBPath); err != nil {
			return
		}
	}
	st, err := r.settings(c)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(config.ReadOnlyContext(c.Context), completeTimeout)
	defer cancel()
	c.Context = ctx
	found := make(chan []string, 1)
	// The lookup runs apart, so that a driver that does not honour the
	// context (a server that accepts the connection and never answers)
	// cannot hold the shell past the timeout; the process ends with it.
	go func() {
		db, _, err := r.connect(c, st.tables, &st.svc.Users)
		if err != nil {
			found <- nil
			return
		}
		defer config.Close(db)
		found <- queryLogins(ctx, db, st.svc.Users, prefix)
	}()
	select {
	case logins := <-found:
		for _, l := range logins {
			fmt.Fprintln(r.streams.Out, l)
		}
	case <-ctx.Done():
	}
}

// queryLogins returns logins that start with prefix, in order. LIKE is
// case-insensitive on some databases, so the prefix is checked again
// here; logins a shell could not take as one word, or that would reach
// the terminal as control characters, are left out.
func queryLogins(ctx context.Context, db *gorm.DB, users models.UsersTable, prefix string) []string {
	q := db.Statement.Quote
	login, table := q(users.LoginColumn), q(users.Table)
	pattern := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(prefix) + "%"
	rows, err := db.WithContext(ctx).Raw(fmt.Sprintf("SELECT %s FROM %s WHERE %s LIKE ? ESCAPE '!' ORDER BY %s LIMIT %d",
		login, table, login, login, 4*completeLimit), pattern).Rows()
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() && len(out) < completeLimit {
		var l sql.NullString
		if rows.Scan(&l) != nil {
			return out
		}
		if l.Valid && strings.HasPrefix(l.String, prefix) && shellWord(l.String) && (strings.HasPrefix(prefix, "-") || !strings.HasPrefix(l.String, "-")) {
			out = append(out, l.String)
		}
	}
	return out
}

func shellWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}
