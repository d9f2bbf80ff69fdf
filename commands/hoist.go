package commands

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistGlobalFlags reorders the command line the way people write it into
// the order urfave/cli v2 parses: global flags written after the
// subcommand ("totpadm status -o json") move before it, and the
// subcommand's own flags written after its arguments ("disable alice
// --dry-run") move before those. Without this, v2 stops at the first
// argument and would take "--dry-run" for a user name — after disabling
// alice for real. Nothing after a "--" moves.
func hoistGlobalFlags(args []string, globals []cli.Flag, cmds []*cli.Command) []string {
	// The shell-completion request must stay last, where cli looks for it.
	if n := len(args); n > 1 && args[n-1] == "--generate-bash-completion" {
		return append(hoistGlobalFlags(args[:n-1:n-1], globals, cmds), args[n-1])
	}
	if len(args) < 2 {
		return args
	}
	takesValue := map[string]bool{} // global flag name → takes a value
	for _, f := range globals {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
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
	own := map[string]bool{} // command flag name → takes a value
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			own[n] = !isBool
		}
	}
	head := append([]string(nil), args[:i]...)
	var cmdFlags, positional []string
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			positional = append(positional, args[j:]...)
			break
		}
		name, hasValue, ok := flagName(a)
		if !ok {
			positional = append(positional, a)
			continue
		}
		dest, valued := &cmdFlags, own[name]
		if _, mine := own[name]; !mine {
			if global, isGlobal := takesValue[name]; isGlobal {
				dest, valued = &head, global
			}
			// An unknown flag stays with the command, which reports it.
		}
		*dest = append(*dest, a)
		if valued && !hasValue && j+1 < len(args) {
			j++
			*dest = append(*dest, args[j])
		}
	}
	out := append(head, args[i])
	out = append(out, cmdFlags...)
	return append(out, positional...)
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
