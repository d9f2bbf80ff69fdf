package commands

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistGlobalFlags reorders the command line the way people write it into
// the order urfave/cli v2 parses: global flags written after the
// subcommand ("totpadm status -o json", "totpadm config show --db x") move
// before it, and a command's own flags written after its arguments
// ("disable alice --dry-run") move before those. Without this, v2 stops at
// the first argument and would take "--dry-run" for a user name — after
// disabling alice for real.
//
// The arguments then follow a "--" of their own, so that cli takes none
// of them for a flag and never a "--" for an argument: "status alice --
// -x" looks up alice and -x. Nothing after the user's "--" moves.
func hoistGlobalFlags(args []string, globals []cli.Flag, cmds []*cli.Command) []string {
	// The shell-completion request must stay last, where cli looks for it.
	if n := len(args); n > 1 && args[n-1] == "--generate-bash-completion" {
		return append(hoistGlobalFlags(args[:n-1:n-1], globals, cmds), args[n-1])
	}
	if len(args) < 2 {
		return args
	}
	takesValue := flagArity(globals)
	// Find the subcommand: the first argument that is not a global flag or
	// a global flag's value.
	i := 1
	for i < len(args) {
		name, hasValue, ok := flagName(args[i])
		if !ok {
			break
		}
		i++
		if takesValue[name] && !hasValue {
			i++
		}
	}
	if i >= len(args) {
		return args
	}
	cmd := findCommand(cmds, args[i])
	if cmd == nil {
		return args
	}
	head := append([]string(nil), args[:i]...)
	tail := hoistCommand(cmd, args[i+1:], takesValue, &head)
	return append(append(head, args[i]), tail...)
}

// hoistCommand sorts what follows cmd on the command line: global flags
// onto head, cmd's own flags first, then a subcommand with what follows
// it, sorted likewise, or else the arguments behind a "--".
func hoistCommand(cmd *cli.Command, rest []string, globals map[string]bool, head *[]string) []string {
	own := flagArity(cmd.Flags)
	var flags, positional []string
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j+1:]...)
			break
		}
		name, hasValue, ok := flagName(a)
		if !ok {
			if sub := findCommand(cmd.Subcommands, a); sub != nil && len(positional) == 0 {
				return append(append(flags, a), hoistCommand(sub, rest[j+1:], globals, head)...)
			}
			positional = append(positional, a)
			continue
		}
		dest, valued := &flags, own[name]
		if _, mine := own[name]; !mine {
			if global, isGlobal := globals[name]; isGlobal {
				dest, valued = head, global
			}
			// An unknown flag stays with the command, which reports it.
		}
		*dest = append(*dest, a)
		if valued && !hasValue && j+1 < len(rest) {
			j++
			*dest = append(*dest, rest[j])
		}
	}
	if len(positional) > 0 {
		flags = append(append(flags, "--"), positional...)
	}
	return flags
}

// flagArity maps each name of flags to whether it takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// flagName parses "-o", "--output" or "--output=json".
func flagName(a string) (name string, hasValue, ok bool) {
	if len(a) < 2 || a[0] != '-' || a == "--" {
		return "", false, false
	}
	name = strings.TrimLeft(a, "-")
	name, _, hasValue = strings.Cut(name, "=")
	return name, hasValue, name != ""
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}
