package main_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/djangotest"
	"github.com/totpadm/totpadm/internal/testutil"
)

// A verification queued behind `enroll --force` finds the replacement
// device, never "not enrolled": the device row is rewritten in place, so
// a verify waiting on its lock cannot see the user without 2FA — the
// fail-open window a delete-and-insert opens on PostgreSQL, where a row
// deleted under a waiting SELECT … FOR UPDATE simply vanishes and the
// re-inserted one is not in the waiter's snapshot.
//
// The order is forced: a held lock on alice's devices keeps the
// enrollment waiting first, the verifications queue behind it, and only
// then is the lock let go, so the verifications run after the
// replacement commits.
func TestDjangoRaceVerifyAgainstForceEnrollNeverNotEnrolled(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		bin := testutil.Binary(t)
		const verifiers = 6
		for round := 0; round < 3; round++ {
			release := djHold(t, p, 1+verifiers)
			start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
				cmd := exec.Command(bin, p.Args(args...)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd, &stderr
			}
			enroll, enrollErr := start("enroll", "--force", "--no-confirm", "alice")
			time.Sleep(500 * time.Millisecond) // the enrollment queues first
			type proc struct {
				cmd    *exec.Cmd
				stderr *bytes.Buffer
			}
			var verifies []proc
			for i := 0; i < verifiers; i++ {
				cmd, stderr := start("verify", "alice", "123456")
				verifies = append(verifies, proc{cmd, stderr})
			}
			release()
			if code := exitCode(t, enroll.Wait()); code != 0 {
				t.Fatalf("round %d: enroll --force: exit %d: %s", round, code, enrollErr)
			}
			for i, v := range verifies {
				code := exitCode(t, v.cmd.Wait())
				if code == 3 || strings.Contains(v.stderr.String(), "not enrolled") {
					t.Fatalf("round %d: verify %d said alice is not enrolled while she was re-enrolled: exit %d: %s", round, i, code, v.stderr)
				}
				if code != 1 {
					t.Fatalf("round %d: verify %d of a wrong code: exit %d: %s", round, i, code, v.stderr)
				}
			}
			totp := 0
			for _, d := range p.Devices(t, "alice") {
				if d.Kind == "totp" {
					totp++
				}
			}
			if totp != 1 {
				t.Fatalf("round %d: alice has %d TOTP devices after the race, want 1", round, totp)
			}
		}
	})
}
