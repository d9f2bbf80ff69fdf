package commands

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestPNGNameStaysInsideTheDirectory(t *testing.T) {
	cases := []struct {
		login string
		plain bool // the file is exactly login.png
	}{
		{"alice", true},
		{"alice@example.com", true},
		{"a.b-c_d+e", true},
		{"../etc/passwd", false},
		{"a/b", false},
		{"a_b", true},
		{".hidden", false},
		{"..", false},
		{"C:\\x", false},
		{"ünïcode", false},
		{"", false},
		{strings.Repeat("x", 300), false},
	}
	seen := map[string]string{}
	for _, c := range cases {
		name := pngName(c.login)
		if name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
			t.Errorf("pngName(%q) = %q escapes or hides", c.login, name)
		}
		if !strings.HasSuffix(name, ".png") || len(name) > 120 {
			t.Errorf("pngName(%q) = %q: want a short .png name", c.login, name)
		}
		if got := name == c.login+".png"; got != c.plain {
			t.Errorf("pngName(%q) = %q: plain=%v, want %v", c.login, name, got, c.plain)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("logins %q and %q share the file %q", other, c.login, name)
		}
		seen[name] = c.login
	}
}
