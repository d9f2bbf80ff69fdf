package commands

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

func init() {
	// Only --version: -v reads as "verbose" to most sysadmins (ssh, curl,
	// rsync, tar), and a one-letter global flag would shadow any command's
	// -v. The flag is global state in urfave/cli, hence init.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version, commit, Go version, schema version and SQLite support, and exit"}
	cli.VersionPrinter = func(c *cli.Context) {
		// Flags are parsed when cli calls this, the configuration file not
		// yet: -o and TOTPADM_OUTPUT apply, a file's output key does not.
		format, err := parseFormat(c.String(flagOutput))
		if err != nil {
			format = formatTable
		}
		writeVersion(c.App.Writer, format, currentBuild())
	}
}

// build is what support needs to know about the binary at hand.
type build struct {
	version    string // module version, or "devel"
	commit     string // vcs.revision; "" when not built from a checkout
	commitTime string // vcs.time: when the commit was made (Go records no build time)
	modified   bool   // vcs.modified: built from a tree with uncommitted changes
	goVersion  string
	platform   string
	schema     int  // the version of totpadm's own tables it reads and writes
	sqlite     bool // built with cgo, so SQLite support is compiled in
}

func currentBuild() build {
	info, _ := debug.ReadBuildInfo()
	return buildFrom(info)
}

// buildFrom reads what go build recorded. It records the commit only when
// it builds inside a git checkout, and not in a linked worktree, whose
// .git is a file (golang/go#58218); go run and go test record none.
func buildFrom(info *debug.BuildInfo) build {
	b := build{
		version:   "devel",
		goVersion: runtime.Version(),
		platform:  runtime.GOOS + "/" + runtime.GOARCH,
		schema:    models.SchemaVersion,
		sqlite:    config.SQLiteSupported,
	}
	if info == nil {
		return b
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		b.version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.commit = s.Value
		case "vcs.time":
			b.commitTime = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// appVersion is App.Version, shown by --help.
func appVersion() string { return currentBuild().version }

// oneLine is the version as doctor's first line shows it.
func (b build) oneLine() string {
	commit := "commit unknown"
	if b.commit != "" {
		commit = "commit " + shortCommit(b.commit)
		if b.commitTime != "" {
			commit += " of " + b.commitTime
		}
		if b.modified {
			commit += ", modified"
		}
	}
	return fmt.Sprintf("totpadm %s (%s; %s %s; schema %d; SQLite %s)",
		b.version, commit, b.goVersion, b.platform, b.schema, yesNo(b.sqlite))
}

func (b build) record() record {
	return record{
		{"version", b.version},
		{"commit", b.commit},
		{"commit_time", b.commitTime},
		{"modified", b.modified},
		{"go", b.goVersion},
		{"platform", b.platform},
		{"schema", b.schema},
		{"sqlite", b.sqlite},
	}
}

// writeVersion prints the block support pastes into a ticket, or one
// JSON object or CSV row.
func writeVersion(w io.Writer, format string, b build) error {
	if format != formatTable {
		rec := b.record()
		columns := make([]string, len(rec))
		for i, f := range rec {
			columns[i] = f.key
		}
		rw := newRecordWriter(format, w, columns)
		if err := rw.write(rec); err != nil {
			return err
		}
		return rw.flush()
	}
	commit, modified := b.commit, "no"
	if commit == "" {
		commit, modified = "unknown (not built from a git checkout)", "unknown"
	} else if b.modified {
		modified = "yes (built with uncommitted changes)"
	}
	committed := b.commitTime
	if committed == "" {
		committed = "unknown"
	}
	sqlite := "yes (built with cgo)"
	if !b.sqlite {
		sqlite = "no (built with CGO_ENABLED=0: PostgreSQL and MySQL only)"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "totpadm %s\n", b.version)
	fmt.Fprintf(&s, "commit:    %s\n", commit)
	fmt.Fprintf(&s, "committed: %s\n", committed)
	fmt.Fprintf(&s, "modified:  %s\n", modified)
	fmt.Fprintf(&s, "go:        %s %s\n", b.goVersion, b.platform)
	fmt.Fprintf(&s, "schema:    %d (the version of totpadm's tables it reads and writes)\n", b.schema)
	fmt.Fprintf(&s, "sqlite:    %s\n", sqlite)
	_, err := io.WriteString(w, s.String())
	return err
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (r *runner) versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit, Go version, schema version and SQLite support",
		Description: `The same as totpadm --version: what to paste into a support ticket. The commit
and its date come from the git checkout the binary was built from (go build
records them; go run does not). -o json prints one object.

Examples:
   totpadm version
   totpadm version -o json`,
		Action: func(c *cli.Context) error {
			format, err := parseFormat(c.String(flagOutput))
			if err != nil {
				return err
			}
			return writeVersion(r.streams.Out, format, currentBuild())
		},
	}
}
