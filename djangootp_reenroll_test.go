package main_test

import (
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/djangotest"
)

// A verification queued behind `enroll --force` finds the replacement
// device, never "not enrolled": the device row is rewritten in place, so
// a verify waiting on its lock cannot see the user without 2FA — the
// fail-open window a delete-and-insert would open on PostgreSQL, where a
// row deleted under a waiting SELECT … FOR UPDATE simply vanishes.
func TestDjangoRaceVerifyAgainstForceEnrollNeverNotEnrolled(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		for round := 0; round < 3; round++ {
			args := make([][]string, 9)
			for i := range args {
				args[i] = []string{"verify", "alice", "123456"}
				if i%3 == 0 {
					args[i] = []string{"enroll", "--force", "--no-confirm", "alice"}
				}
			}
			for i, r := range djRace(t, p, args, nil) {
				if i%3 == 0 {
					if r.code != 0 {
						t.Fatalf("round %d: enroll --force: exit %d: %s", round, r.code, r.stderr)
					}
					continue
				}
				if r.code == 3 || strings.Contains(r.stderr, "not enrolled") {
					t.Fatalf("round %d: verify %d said alice is not enrolled while she was re-enrolled: exit %d: %s", round, i, r.code, r.stderr)
				}
				if r.code != 1 {
					t.Fatalf("round %d: verify %d of a wrong code: exit %d: %s", round, i, r.code, r.stderr)
				}
			}
			devs := p.Devices(t, "alice")
			totp := 0
			for _, d := range devs {
				if d.Kind == "totp" {
					totp++
				}
			}
			if totp != 1 {
				t.Fatalf("round %d: alice has %d TOTP devices after the race, want 1: %+v", round, totp, devs)
			}
		}
	})
}
