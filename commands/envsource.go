package commands

import (
	"fmt"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// The environment reaches the flags through the injected Streams.Getenv
// only. urfave/cli would read a flag's EnvVars from the process itself,
// behind the injected environment's back (a test's Options.Env would be
// ignored, a real TOTPADM_DB would leak into an in-process run), so the
// global flags declare their variable in EnvVars and takeEnvVars moves it
// out before cli sees the flag; applyEnv then feeds the values in through
// altsrc, the same way the configuration file comes in, just before it:
// flag > environment > file > default.

// takeEnvVars clears the EnvVars of flags, shows each variable in its
// flag's usage as cli would, and returns flag name → variable.
func takeEnvVars(flags []cli.Flag) map[string]string {
	vars := map[string]string{}
	take := func(name string, envVars *[]string, usage *string) {
		if len(*envVars) == 0 {
			return
		}
		vars[name] = (*envVars)[0]
		*usage += " [$" + (*envVars)[0] + "]"
		*envVars = nil
	}
	for _, f := range flags {
		switch t := unwrap(f).(type) {
		case *cli.StringFlag:
			take(t.Name, &t.EnvVars, &t.Usage)
		case *cli.IntFlag:
			take(t.Name, &t.EnvVars, &t.Usage)
		case *cli.DurationFlag:
			take(t.Name, &t.EnvVars, &t.Usage)
		case *cli.BoolFlag:
			take(t.Name, &t.EnvVars, &t.Usage)
		}
	}
	return vars
}

// envSource reads the variables of vars into an altsrc source, each value
// typed as its flag wants it. A variable set to "" is unset
// (TOTPADM_OUTPUT= totpadm … means the default) — except TOTPADM_DB: a
// script whose URL variable came out empty must be refused, not pointed
// at the demo database. One of blanks is a value (TOTPADM_ISSUER=" " is
// an issuer of one space, refused later). A value
// the flag's type cannot hold is a configuration error (exit 5) naming
// the variable.
func envSource(flags []cli.Flag, vars map[string]string, lookupEnv func(string) (string, bool)) (altsrc.InputSourceContext, map[string]string, error) {
	values := map[any]any{}
	from := map[string]string{} // flag name → the variable it was taken from
	for _, f := range flags {
		name := f.Names()[0]
		variable, ok := vars[name]
		if !ok {
			continue
		}
		raw, present := lookupEnv(variable)
		if raw == "" && !(present && name == flagDB) {
			continue
		}
		var v any = raw
		switch unwrap(f).(type) {
		case *cli.IntFlag:
			n, err := strconv.Atoi(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s=%s: --%s wants a whole number", ErrConfig, variable, raw, name)
			}
			v = n
		case *cli.DurationFlag:
			if _, err := time.ParseDuration(raw); err != nil {
				return nil, nil, fmt.Errorf("%w: %s=%s: --%s wants a duration (like 10s or 15m)", ErrConfig, variable, raw, name)
			}
		case *cli.BoolFlag:
			b, err := strconv.ParseBool(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s=%s: --%s wants true or false", ErrConfig, variable, raw, name)
			}
			v = b
		}
		values[name] = v
		from[name] = variable
	}
	return altsrc.NewMapInputSource("environment", values), from, nil
}

// unwrap is the cli flag inside an altsrc wrapper.
func unwrap(f cli.Flag) cli.Flag {
	switch t := f.(type) {
	case *altsrc.StringFlag:
		return t.StringFlag
	case *altsrc.IntFlag:
		return t.IntFlag
	case *altsrc.DurationFlag:
		return t.DurationFlag
	case *altsrc.BoolFlag:
		return t.BoolFlag
	}
	return f
}
