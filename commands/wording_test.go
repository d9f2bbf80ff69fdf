package commands_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// A user without 2FA is "not enrolled" in status, disable and verify alike
// — never "disabled", disable's word for what it just did — and every
// spelling a script may use selects them.
func TestNoSecondFactorOneWording(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		testutil.Enroll(t, db, "alice")

		st := testutil.Run(t, testutil.Options{}, db.Args("status", "carol")...)
		if st.Code != 0 {
			t.Fatalf("status carol: exit %d, %q", st.Code, st.Stderr)
		}
		lines := strings.Split(strings.TrimSpace(st.Stdout), "\n")
		if len(lines) != 2 || strings.Fields(lines[1])[3] != "not-enrolled" || strings.Contains(st.Stdout, "disabled") {
			t.Errorf("status carol shows:\n%s\nwant state not-enrolled", st.Stdout)
		}

		dis := testutil.Run(t, testutil.Options{}, db.Args("disable", "--yes", "--reason", "r", "carol")...)
		if dis.Code != 0 || !strings.Contains(dis.Stdout, "carol: not enrolled") {
			t.Errorf("disable carol: exit %d, stdout %q", dis.Code, dis.Stdout)
		}
		ver := testutil.Run(t, testutil.Options{}, db.Args("verify", "carol", "123456")...)
		if ver.Code != 3 || !strings.Contains(ver.Stderr, "not enrolled") {
			t.Errorf("verify carol: exit %d, stderr %q", ver.Code, ver.Stderr)
		}

		// JSON keeps "disabled", for the scripts that parse it; every
		// spelling selects the same users.
		for _, state := range []string{"not-enrolled", "none", "disabled"} {
			res := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "status", "--state", state)...)
			if res.Code != 0 {
				t.Fatalf("--state %s: exit %d, %q", state, res.Code, res.Stderr)
			}
			var logins []string
			for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
				var row struct{ Login, State string }
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatalf("--state %s: %q: %v", state, line, err)
				}
				if row.State != "disabled" {
					t.Errorf("--state %s -o json: state %q, want disabled", state, row.State)
				}
				logins = append(logins, row.Login)
			}
			if strings.Join(logins, " ") != "bob carol" {
				t.Errorf("--state %s selects %v, want bob carol", state, logins)
			}
		}
		if res := testutil.Run(t, testutil.Options{}, db.Args("status", "--state", "nope")...); res.Code != 2 || !strings.Contains(res.Stderr, "not-enrolled") {
			t.Errorf("--state nope: exit %d, %q; want 2 naming not-enrolled", res.Code, res.Stderr)
		}
	})
}
