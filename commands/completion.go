package commands

import (
	"fmt"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"
)

// Shell glue: the shell asks totpadm itself (`totpadm __complete -- WORD…`,
// the words typed so far, the last one being completed), so completions
// match the commands and flags of the binary at hand and know flag values
// and the users in the configured database. Nothing printed means the
// shell's own completion (files, for --db or --from-file).
const bashCompletion = `# totpadm bash completion; load with: source <(totpadm completion bash)
_totpadm_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" IFS=$'\n'
  # bash splits --output=json at the "=": complete what follows it.
  [[ "$cur" == "=" ]] && cur=""
  COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur"))
  return 0
}
complete -o bashdefault -o default -F _totpadm_complete totpadm
`

const zshCompletion = `#compdef totpadm
# totpadm zsh completion; load with: source <(totpadm completion zsh)
_totpadm() {
  local -a opts
  opts=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ -n "${opts[1]}" ]]; then
    compadd -Q -- "${opts[@]}"
  else
    _files
  fi
}
compdef _totpadm totpadm
`

const fishCompletion = `# totpadm fish completion; load with: totpadm completion fish | source
function __totpadm_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l out ($tokens[1] __complete -- $tokens[2..-1] "$current" 2>/dev/null)
    if test (count $out) -gt 0
        printf '%s\n' $out
    else
        __fish_complete_path "$current"
    end
end
complete -c totpadm -f -a '(__totpadm_complete)'
`

func (r *runner) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "SHELL",
		Description: `Prints a completion script that asks totpadm itself what fits: commands, flags,
flag values (--output, --state, --algorithm, --action) and the logins of the
configured database (up to 50 that start with what is typed; a database that
does not answer within a second offers none rather than hang the shell).

Examples:
   source <(totpadm completion bash)                     # add to ~/.bashrc
   totpadm completion zsh > "${fpath[1]}/_totpadm"
   totpadm completion fish > ~/.config/fish/completions/totpadm.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion: want one SHELL: bash, zsh or fish")
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				script = fishCompletion
			default:
				return usagef("completion: unknown shell %q: want bash, zsh or fish", shell)
			}
			_, err := fmt.Fprint(r.streams.Out, script)
			return err
		},
	}
}

func (r *runner) manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print totpadm's manual page (roff), generated from the commands themselves",
		Description: `Examples:
   totpadm man | man -l -
   totpadm man > /usr/local/share/man/man8/totpadm.8`,
		Action: func(c *cli.Context) error {
			_, err := r.streams.Out.Write(manPage(c.App))
			return err
		},
	}
}

// manPage renders the app — every command with its description, examples
// and flags — as markdown and converts it to roff, so the page is always
// the help text of this very binary.
func manPage(app *cli.App) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%% %s 8\n\n# NAME\n\n%s - %s\n\n# SYNOPSIS\n\n**%s** [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGUMENTS]\n\n# DESCRIPTION\n\n",
		app.Name, app.Name, app.Usage, app.Name)
	writeIndented(&b, app.Description)
	b.WriteString("# GLOBAL OPTIONS\n\n")
	writeFlags(&b, app.Flags)
	b.WriteString("# COMMANDS\n\n")
	for _, cmd := range app.Commands {
		if cmd.Hidden {
			continue
		}
		name := cmd.Name
		if len(cmd.Aliases) > 0 {
			name += ", " + strings.Join(cmd.Aliases, ", ")
		}
		fmt.Fprintf(&b, "## %s\n\n**%s %s** %s\n\n%s\n\n", name, app.Name, cmd.Name, cmd.ArgsUsage, cmd.Usage)
		writeIndented(&b, cmd.Description)
		writeFlags(&b, cmd.Flags)
	}
	b.WriteString("# FILES\n\n/etc/totpadm/config.toml, ./totpadm.toml\n: configuration, when --config is not given\n\n" +
		"./totpadm.db, ./totpadm.key\n: the demo database and its key, created when --db is not given\n\n")
	return md2man.Render([]byte(b.String()))
}

// writeIndented keeps the layout of help text (examples, lists) by
// setting it as a code block.
func writeIndented(b *strings.Builder, text string) {
	if strings.TrimSpace(text) == "" {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	b.WriteString("\n")
}

func writeFlags(b *strings.Builder, flags []cli.Flag) {
	for _, f := range flags {
		names := f.Names()
		for i, n := range names {
			if len(n) == 1 {
				names[i] = "-" + n
			} else {
				names[i] = "--" + n
			}
		}
		usage := ""
		if d, ok := f.(cli.DocGenerationFlag); ok {
			usage = d.GetUsage()
			if env := d.GetEnvVars(); len(env) > 0 {
				usage += " (environment: " + strings.Join(env, ", ") + ")"
			}
		}
		fmt.Fprintf(b, "**%s**\n: %s\n\n", strings.Join(names, "**, **"), strings.ReplaceAll(usage, "`", ""))
	}
}
