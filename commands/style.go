package commands

import (
	"fmt"
	"time"

	"github.com/totpadm/totpadm/models"
)

// --time values of status.
const (
	timeAbsolute = "absolute"
	timeRelative = "relative"
)

// ANSI SGR colours of the state column on a colour terminal (Streams.Color:
// stdout is a terminal and NO_COLOR is unset or empty).
var stateColours = map[string]string{
	models.StatusEnabled: "\x1b[32m", // green
	models.StatusPending: "\x1b[33m", // yellow
	models.StatusLocked:  "\x1b[31m", // red
	stateNotEnrolled:     "\x1b[2m",  // dim
}

const colourReset = "\x1b[0m"

// colourStateColumn is a tableWriter style that colours the cells of
// column col by the state they name. The codes sit outside the cell's
// width, so they never shift a column.
func colourStateColumn(col int) func(int, string) (string, string) {
	return func(i int, cell string) (string, string) {
		if i != col {
			return "", ""
		}
		if c, ok := stateColours[cell]; ok {
			return c, colourReset
		}
		return "", ""
	}
}

// relativeTime says how far t is from now the way a person says it: "now",
// "3 min ago", "in 12 min", "5 h ago", "3 days ago". The past rounds down
// and the future up, so a lockout "in 13 min" has ended by then.
func relativeTime(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	unit, name := time.Second, "s"
	switch {
	case d < time.Second:
		return "now"
	case d >= 48*time.Hour:
		unit, name = 24*time.Hour, "days"
	case d >= time.Hour:
		unit, name = time.Hour, "h"
	case d >= time.Minute:
		unit, name = time.Minute, "min"
	}
	n := d / unit
	if future {
		n = (d + unit - 1) / unit
		return fmt.Sprintf("in %d %s", n, name)
	}
	return fmt.Sprintf("%d %s ago", n, name)
}
