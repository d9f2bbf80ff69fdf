package commands_test

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// Settings come from the injected environment only: what a caller of
// commands.Run passes is honoured, and the process's own TOTPADM_*
// variables are not read behind its back.
func TestEnvironmentIsInjected(t *testing.T) {
	t.Setenv("TOTPADM_ISSUER", "FromTheProcess")
	t.Setenv("TOTPADM_SKEW", "not a number")
	issuer := func(opt testutil.Options) string {
		t.Helper()
		res := testutil.Run(t, opt, "-o", "csv", "config", "show")
		if res.Code != 0 {
			t.Fatalf("config show: exit %d: %s", res.Code, res.Stderr)
		}
		rows, err := csv.NewReader(strings.NewReader(res.Stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows[1:] {
			if r[0] == "issuer" {
				return r[1] + " from " + r[2]
			}
		}
		t.Fatalf("no issuer row in %q", res.Stdout)
		return ""
	}
	if got := issuer(testutil.Options{}); got != "totpadm from default" {
		t.Errorf("with nothing injected: issuer %s; the process environment leaked in", got)
	}
	if got := issuer(testutil.Options{Env: map[string]string{"TOTPADM_ISSUER": "Injected"}}); got != "Injected from env TOTPADM_ISSUER" {
		t.Errorf("injected TOTPADM_ISSUER: issuer %s", got)
	}
}
