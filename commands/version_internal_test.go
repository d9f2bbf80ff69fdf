package commands

import (
	"runtime/debug"
	"strings"
	"testing"
)

// Go stamps no commit in this repository's test binaries (go test never
// does), so the reading of what go build records is tested on its own.
func TestBuildFrom(t *testing.T) {
	b := buildFrom(&debug.BuildInfo{
		Main: debug.Module{Path: "github.com/totpadm/totpadm", Version: "v1.4.2"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-30T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	})
	if b.version != "v1.4.2" || b.commit != "0123456789abcdef0123456789abcdef01234567" || b.commitTime != "2026-11-30T12:00:00Z" || !b.modified {
		t.Fatalf("%+v", b)
	}
	if got, want := b.oneLine(), "totpadm v1.4.2 (commit 0123456789ab of 2026-11-30T12:00:00Z, modified; "; !strings.HasPrefix(got, want) {
		t.Errorf("oneLine %q, want prefix %q", got, want)
	}
	var out strings.Builder
	if err := writeVersion(&out, formatTable, b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"totpadm v1.4.2\n", "commit:    0123456789abcdef0123456789abcdef01234567\n", "committed: 2026-11-30T12:00:00Z\n", "modified:  yes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("block lacks %q:\n%s", want, out.String())
		}
	}

	devel := buildFrom(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
	if devel.version != "devel" || devel.commit != "" || !strings.Contains(devel.oneLine(), "commit unknown") {
		t.Errorf("(devel): %+v, %q", devel, devel.oneLine())
	}
	if b := buildFrom(nil); b.version != "devel" {
		t.Errorf("no build info: %+v", b)
	}
}
