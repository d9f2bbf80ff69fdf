package commands

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// A subcommand's own flags are its own, also after its arguments; the
// real command tree has no subcommand with flags yet, so a made-up one.
func TestHoistSubcommandFlags(t *testing.T) {
	globals := []cli.Flag{&cli.StringFlag{Name: "db"}, &cli.StringFlag{Name: "output", Aliases: []string{"o"}}}
	cmds := []*cli.Command{{
		Name: "key",
		Subcommands: []*cli.Command{{
			Name:  "rotate",
			Flags: []cli.Flag{&cli.StringFlag{Name: "new"}, &cli.BoolFlag{Name: "dry-run"}},
		}},
	}}
	for _, tc := range []struct{ in, want []string }{
		{
			in:   []string{"totpadm", "key", "rotate", "alice", "--new", "k2", "--db", "x", "--dry-run"},
			want: []string{"totpadm", "--db", "x", "key", "rotate", "--new", "k2", "--dry-run", "--", "alice"},
		},
		{
			in:   []string{"totpadm", "key", "-o", "json", "rotate", "--", "--dry-run"},
			want: []string{"totpadm", "-o", "json", "key", "rotate", "--", "--dry-run"},
		},
		{
			in:   []string{"totpadm", "key", "rotate", "--dry-run", "--generate-bash-completion"},
			want: []string{"totpadm", "key", "rotate", "--dry-run", "--generate-bash-completion"},
		},
	} {
		if got := hoistGlobalFlags(tc.in, globals, cmds); !slices.Equal(got, tc.want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
