package commands

import (
	"fmt"
	"strings"
)

// reporter prints one result per user: a sentence in table mode, a record
// in JSON and CSV. Failures also go to stderr as one "totpadm:" line each,
// so a person sees them even when stdout goes to a file.
type reporter struct {
	r      *runner
	format string
	rw     recordWriter
	tally  tally
}

func (r *runner) newReporter(format string, extraColumns ...string) *reporter {
	rep := &reporter{r: r, format: format}
	if format != formatTable {
		rep.rw = newRecordWriter(format, r.streams.Out, append(append([]string(nil), outcomeColumns...), extraColumns...))
	}
	return rep
}

// report records o; human is the table-mode line for a success.
func (rep *reporter) report(o outcome, human string) {
	rep.tally.add(o.err)
	if o.err != nil {
		fmt.Fprintf(rep.r.streams.Err, "totpadm: %s\n", rep.r.oneLine(errorText(o.err)))
	}
	if rep.rw != nil {
		rep.rw.write(o.record())
		return
	}
	if o.err == nil && human != "" {
		lines := strings.Split(strings.TrimSuffix(human, "\n"), "\n")
		for _, line := range lines {
			fmt.Fprintln(rep.r.streams.Out, terminalSafe(line))
		}
	}
}

// finish flushes the output and returns the run's exit status.
func (rep *reporter) finish() error {
	if rep.rw != nil {
		if err := rep.rw.flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return rep.tally.result()
}
