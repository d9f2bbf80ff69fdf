package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/totpadm/totpadm/models"
)

// Change-hook flag names.
const (
	flagOnChange        = "on-change"
	flagOnChangeTimeout = "on-change-timeout"
)

// defaultHookTimeout bounds one run of the on-change command.
const defaultHookTimeout = 10 * time.Second

func hookFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagOnChange, EnvVars: env("ON_CHANGE"), Usage: "shell command run (sh -c) after each committed change, with its events as JSON lines on stdin (never a secret); once per batch in bulk work"},
		&cli.DurationFlag{Name: flagOnChangeTimeout, EnvVars: env("ON_CHANGE_TIMEOUT"), Value: defaultHookTimeout, Usage: "time limit of one run of the --on-change command; it is killed after it"},
	}
}

// checkHookTimeout is the settings check of --on-change-timeout.
func checkHookTimeout(_ *runner, c *cli.Context) error {
	if c.Duration(flagOnChangeTimeout) <= 0 {
		return fmt.Errorf("--%s must be positive", flagOnChangeTimeout)
	}
	return nil
}

// changeHook is the run's models.ChangeHook, nil without --on-change.
func (r *runner) changeHook(c *cli.Context) models.ChangeHook {
	command := c.String(flagOnChange)
	if strings.TrimSpace(command) == "" {
		return nil
	}
	// stderr is looked up at each run: a progress bar wraps it meanwhile,
	// so that the hook's lines erase the bar instead of running into it.
	return (&hookRunner{command: command, timeout: c.Duration(flagOnChangeTimeout), stderr: func() io.Writer { return r.streams.Err }}).run
}

// hookRunner runs the on-change command once per call: the events as
// JSON lines on its stdin, its stdout and stderr to totpadm's stderr
// (each line prefixed "on-change: "; stdout is for what scripts parse),
// its environment totpadm's minus TOTPADM_KEY. A failure or a timeout is
// one warning line; the change stays committed and the exit code is
// untouched (the engine records the failure in the audit log).
type hookRunner struct {
	command string
	timeout time.Duration
	stderr  func() io.Writer
}

// errHookTimedOut wraps context.DeadlineExceeded, which the engine
// audits as "timed out".
var errHookTimedOut = fmt.Errorf("timed out: %w", context.DeadlineExceeded)

func (h *hookRunner) run(ctx context.Context, events []models.ChangeEvent) error {
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	cmd := shellCommand(ctx, h.command)
	cmd.Stdin = &in
	out := &prefixWriter{w: h.stderr(), prefix: "totpadm: on-change: "}
	cmd.Stdout, cmd.Stderr = out, out // one writer: one pipe, lines in order
	cmd.Env = hookEnvironment(os.Environ())
	// A command that exits while a child it started still holds the
	// output open (`notify &`) is not waited for longer than this.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	out.flush()
	if err == nil {
		return nil
	}
	var exit *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = errHookTimedOut
		h.warn(fmt.Sprintf("timed out after %s and was killed", h.timeout), events)
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		err = fmt.Errorf("exit %d", exit.ExitCode())
		h.warn("failed ("+err.Error()+")", events)
	case errors.As(err, &exit):
		err = fmt.Errorf("killed: %s", exit.ProcessState)
		h.warn("was "+err.Error(), events)
	default:
		h.warn("failed: "+err.Error(), events)
	}
	return err
}

func (h *hookRunner) warn(what string, events []models.ChangeEvent) {
	subject := events[0].Action
	if events[0].Login != "" {
		subject += " of " + events[0].Login
	}
	if len(events) > 1 {
		subject = fmt.Sprintf("%d changes", len(events))
	}
	fmt.Fprintf(h.stderr(), "totpadm: warning: on-change hook %s, after %s; the change is committed (audit action %s)\n",
		terminalSafe(what), terminalSafe(subject), models.ActionOnChange)
}

// hookEnvironment is env without the encryption key: a hook has no use
// for it, and whatever it runs must not inherit it.
func hookEnvironment(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "TOTPADM_KEY=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// shellCommand runs command through sh -c (cmd /C on Windows), killed with
// everything it started when ctx ends.
func shellCommand(ctx context.Context, command string) *exec.Cmd {
	if runtime.GOOS == "windows" {
		return exec.CommandContext(ctx, "cmd", "/C", command)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	killGroup(cmd)
	return cmd
}

// prefixWriter writes each line with prefix in front of it.
type prefixWriter struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.partial[:i])
		p.partial = p.partial[i+1:]
	}
	return n, nil
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.partial) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.partial)
		p.partial = nil
	}
}
