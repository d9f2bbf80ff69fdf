package commands

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"
)

const flagConfig = "config"

// defaultConfigFiles are tried in order when --config is not given; the
// first that exists is used.
var defaultConfigFiles = []string{"/etc/totpadm/config.toml", "totpadm.toml"}

// ErrConfig marks an unreadable or invalid configuration file.
var ErrConfig = errors.New("configuration")

// fileBackedFlags makes every global flag settable from the config file,
// under its own name: precedence is flag, then environment, then file,
// then default (altsrc skips flags already set by the first two).
func fileBackedFlags(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, 0, len(flags)+1)
	out = append(out, &cli.StringFlag{Name: flagConfig, EnvVars: env("CONFIG"), Usage: "configuration `FILE` (TOML, or YAML by .yaml/.yml); default /etc/totpadm/config.toml, then ./totpadm.toml, when present"})
	for _, f := range flags {
		switch t := f.(type) {
		case *cli.StringFlag:
			out = append(out, altsrc.NewStringFlag(t))
		case *cli.IntFlag:
			out = append(out, altsrc.NewIntFlag(t))
		case *cli.DurationFlag:
			out = append(out, altsrc.NewDurationFlag(t))
		case *cli.BoolFlag:
			out = append(out, altsrc.NewBoolFlag(t))
		default:
			out = append(out, f)
		}
	}
	return out
}

// loadConfigFile applies the configuration file, if any, to the flags,
// and remembers which file it was for doctor. An unusable file stops every
// command but doctor, whose job is to report it.
func (r *runner) loadConfigFile(flags []cli.Flag) cli.BeforeFunc {
	return func(c *cli.Context) error {
		err := r.applySources(c, flags)
		if err != nil && c.Args().First() == "doctor" {
			r.configErr = err
			return nil
		}
		return err
	}
}

// applySources fills the global flags not given on the command line from
// the injected environment, then the rest from the configuration file, and
// records where each value came from (config show, error messages).
func (r *runner) applySources(c *cli.Context, flags []cli.Flag) error {
	r.sources = map[string]string{}
	for _, f := range flags {
		if name := f.Names()[0]; c.IsSet(name) {
			r.sources[name] = "flag"
		}
	}
	src, from, err := envSource(flags, r.envVars, r.streams.LookupEnv)
	if err != nil {
		return err
	}
	if err := altsrc.ApplyInputSourceValues(c, src, flags); err != nil {
		return fmt.Errorf("%w: environment: %w", ErrConfig, err)
	}
	for name, variable := range from {
		if r.sources[name] == "" {
			r.sources[name] = "env " + variable
		}
	}
	if err := r.applyConfigFile(c, flags); err != nil {
		return err
	}
	for _, f := range flags {
		if name := f.Names()[0]; c.IsSet(name) && r.sources[name] == "" && r.configFile != "" {
			r.sources[name] = "file " + r.configFile
		}
	}
	return nil
}

func (r *runner) applyConfigFile(c *cli.Context, flags []cli.Flag) error {
	path, explicit := c.String(flagConfig), c.IsSet(flagConfig)
	if !explicit {
		for _, candidate := range defaultConfigFiles {
			if _, err := os.Stat(candidate); err == nil {
				path = candidate
				break
			}
		}
	}
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: config file %s does not exist", ErrConfig, path)
		}
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	yamlFile := isYAMLConfig(path)
	var (
		src altsrc.InputSourceContext
		err error
	)
	if yamlFile {
		src, err = altsrc.NewYamlSourceFromFile(path)
	} else {
		src, err = altsrc.NewTomlSourceFromFile(path)
	}
	if err != nil {
		return fmt.Errorf("%w: config file %s: %s", ErrConfig, path, strings.Join(strings.Fields(err.Error()), " "))
	}
	if err := checkConfigKeys(path, yamlFile); err != nil {
		return err
	}
	if err := altsrc.ApplyInputSourceValues(c, src, flags); err != nil {
		return fmt.Errorf("%w: config file %s: %w", ErrConfig, path, err)
	}
	r.configFile = path
	return nil
}

// checkConfigKeys refuses a configuration file with a setting totpadm does
// not know. altsrc reads only the keys it is asked for, so a misspelt
// "max-failure" would be ignored without a word and the default would
// quietly apply: on a security setting that is the worst kind of typo.
func checkConfigKeys(path string, yamlFile bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var settings map[string]any
	if yamlFile {
		err = yaml.Unmarshal(data, &settings)
	} else {
		err = toml.Unmarshal(data, &settings)
	}
	if err != nil {
		return fmt.Errorf("%w: config file %s: %s", ErrConfig, path, strings.Join(strings.Fields(err.Error()), " "))
	}
	known := map[string]bool{}
	for _, f := range globalFlags() {
		for _, name := range f.Names() {
			known[name] = true
		}
	}
	var unknown []string
	for key, value := range settings {
		if !known[key] {
			unknown = append(unknown, fmt.Sprintf("%q", key))
			continue
		}
		switch value.(type) {
		case map[string]any, []any:
			return fmt.Errorf("%w: config file %s: setting %q must be a single value, not a table or list", ErrConfig, path, key)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("%w: config file %s: unknown setting %s (the settings are the global flags' names; `totpadm config show` lists them)",
		ErrConfig, path, strings.Join(unknown, ", "))
}

// isYAMLConfig: a configuration file is YAML by its .yaml or .yml ending,
// else TOML.
func isYAMLConfig(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return true
	}
	return false
}
