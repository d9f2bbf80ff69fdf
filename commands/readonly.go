package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/config"
)

// readOnly declares that cmd (and its subcommands) only reads the
// database. Its connection is then opened read-only (config.ReadOnlyContext),
// so that SQLite refuses any write — the application's file stays
// byte-identical — and a database on a read-only filesystem can still be
// inspected. Commands not declared read-only are refused up front on a
// database they cannot write.
func readOnly(cmd *cli.Command) *cli.Command {
	before := cmd.Before
	cmd.Before = func(c *cli.Context) error {
		c.Context = config.ReadOnlyContext(c.Context)
		if before != nil {
			return before(c)
		}
		return nil
	}
	return cmd
}
