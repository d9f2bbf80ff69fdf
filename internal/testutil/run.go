package testutil

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpadm/totpadm/commands"
)

// Result is what one totpadm run printed and returned.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Options adjust an in-process run.
type Options struct {
	Stdin       string
	Interactive bool // pretend stdin and stderr are a terminal
	Env         map[string]string
	Now         func() time.Time
}

// Run executes the real cli.App in-process, with the given arguments
// (without the program name).
func Run(t *testing.T, opt Options, args ...string) Result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := commands.Run(context.Background(), append([]string{"totpadm"}, args...), commands.Streams{
		In:          strings.NewReader(opt.Stdin),
		Out:         &out,
		Err:         &errOut,
		Interactive: opt.Interactive,
		LookupEnv: func(k string) (string, bool) {
			v, ok := opt.Env[k]
			return v, ok
		},
		Hostname: "testhost",
		Now:      opt.Now,
	})
	return Result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// binary builds totpadm once per test process; every test that needs a
// real process shares it.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "totpadm-bin-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "totpadm")
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", path, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return path, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// Binary returns the path of a freshly built totpadm.
func Binary(t *testing.T) string {
	t.Helper()
	path, err := binary()
	if err != nil {
		t.Fatalf("build totpadm: %v", err)
	}
	return path
}

// Exec runs the built binary in dir with args, stdin and extra env.
func Exec(t *testing.T, dir, stdin string, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run totpadm: %v", err)
		}
		code = exitErr.ExitCode()
	}
	return Result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
