// Command totpadm manages TOTP two-factor authentication directly on an
// application's user database. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/totpadm/totpadm/commands"
)

func main() {
	// Ctrl-C cancels the context: the transaction in flight rolls back and
	// the run ends with what it reported so far.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	host, _ := os.Hostname()
	stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
	stderrTTY := term.IsTerminal(int(os.Stderr.Fd()))
	code := commands.Run(ctx, os.Args, commands.Streams{
		In:          os.Stdin,
		Out:         os.Stdout,
		Err:         os.Stderr,
		Interactive: stdinTTY && stderrTTY,
		Color:       term.IsTerminal(int(os.Stdout.Fd())) && os.Getenv("NO_COLOR") == "",
		ProgressTTY: stderrTTY,
		LookupEnv:   os.LookupEnv,
		Hostname:    host,
	})
	stop()
	os.Exit(code)
}
