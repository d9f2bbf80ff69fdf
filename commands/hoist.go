package commands

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistGlobalFlags moves global flags written after the subcommand
// ("totpadm status -o json") to before it, where urfave/cli v2 looks for
// them. A flag the subcommand defines itself stays put, and nothing after
// a "--" moves.
func hoistGlobalFlags(args []string, globals []cli.Flag, cmds []*cli.Command) []string {
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
	own := map[string]bool{}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			own[n] = true
		}
	}
	head := append([]string(nil), args[:i]...)
	var rest []string
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			rest = append(rest, args[j:]...)
			break
		}
		name, hasValue, ok := flagName(a)
		if _, global := takesValue[name]; !ok || !global || own[name] {
			rest = append(rest, a)
			continue
		}
		head = append(head, a)
		if takesValue[name] && !hasValue && j+1 < len(args) {
			j++
			head = append(head, args[j])
		}
	}
	out := append(head, args[i])
	return append(out, rest...)
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
