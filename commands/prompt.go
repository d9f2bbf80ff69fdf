package commands

import (
	"bufio"
	"context"
)

// readLine reads one line, returning early with ctx's error when the run
// is interrupted: Ctrl-C at a prompt must end totpadm, not wait for Enter.
func readLine(ctx context.Context, rd *bufio.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := rd.ReadString('\n')
		done <- result{line, err}
	}()
	select {
	case r := <-done:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
