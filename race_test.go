package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// racers is how many separate totpadm processes contend for one code.
const racers = 24

type raceResult struct {
	code   int
	stderr string
}

// raceProcesses starts n totpadm processes with the same arguments while
// hold keeps them from finishing, then releases them together, so they
// really meet at the conditional update rather than running one by one.
func raceProcesses(t *testing.T, db *testutil.DB, n int, hold func(started []*exec.Cmd) (release func()), argsFor func(i int) []string) []raceResult {
	t.Helper()
	bin := testutil.Binary(t)
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.Command(bin, db.Args(argsFor(i)...)...)
		outs[i] = &bytes.Buffer{}
		cmds[i].Stderr = outs[i]
	}
	release := hold(cmds)
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	release()
	results := make([]raceResult, n)
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Wait()
			results[i] = raceResult{code: exitCode(t, err), stderr: outs[i].String()}
		}()
	}
	wg.Wait()
	return results
}

func exitCode(t *testing.T, err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	t.Errorf("wait: %v", err)
	return -1
}

// holdWriteLock blocks every writer until release: on SQLite an open
// BEGIN IMMEDIATE transaction, elsewhere a FOR UPDATE lock on alice's
// credential. It waits until all n processes are queued where it can see
// them (pg_stat_activity, innodb_trx), on SQLite long enough for them to
// start.
func holdWriteLock(t *testing.T, db *testutil.DB, n int) func([]*exec.Cmd) func() {
	return func([]*exec.Cmd) func() {
		ctx := context.Background()
		sqlDB, err := db.Gorm.DB()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		begin, lock := "BEGIN IMMEDIATE", "SELECT 1"
		if db.Backend != "sqlite" {
			begin, lock = "BEGIN", "SELECT user_id FROM totp_credentials FOR UPDATE"
		}
		mustExec(t, conn, begin)
		mustExec(t, conn, lock)
		return func() {
			deadline := time.Now().Add(10 * time.Second)
			if db.Backend != "sqlite" {
				for time.Now().Before(deadline) && waitingOnLocks(t, db) < n {
					time.Sleep(20 * time.Millisecond)
				}
			} else {
				// SQLite shows no queue; give the processes time to reach it.
				time.Sleep(700 * time.Millisecond)
			}
			mustExec(t, conn, "COMMIT")
			conn.Close()
		}
	}
}

func waitingOnLocks(t *testing.T, db *testutil.DB) int {
	var n int
	q := "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
	if db.Backend == "mysql" {
		q = "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
	}
	err := db.Gorm.Raw(q).Scan(&n).Error
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustExec(t *testing.T, conn *sql.Conn, q string) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// checkExactlyOne asserts one winner, every other process rejected with
// exit 1 for one of reasons (default: "already used"), and no database
// error leaking out of any of them.
func checkExactlyOne(t *testing.T, results []raceResult, reasons ...string) {
	t.Helper()
	if len(reasons) == 0 {
		reasons = []string{"already used"}
	}
	wins := 0
	for i, r := range results {
		switch r.code {
		case 0:
			wins++
		case 1:
			if !slices.ContainsFunc(reasons, func(want string) bool { return strings.Contains(r.stderr, want) }) {
				t.Errorf("process %d: rejected for the wrong reason: %s", i, r.stderr)
			}
		default:
			t.Errorf("process %d: exit %d: %s", i, r.code, r.stderr)
		}
		for _, bad := range []string{"database is locked", "serializ", "deadlock", "busy"} {
			if strings.Contains(strings.ToLower(r.stderr), bad) {
				t.Errorf("process %d leaked a database error: %s", i, r.stderr)
			}
		}
	}
	if wins != 1 {
		t.Errorf("%d processes accepted the same code, want exactly 1", wins)
	}
}

func TestRaceSameTOTPCodeAcceptedOnce(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		code := testutil.Code(t, e.Secret, time.Now())
		results := raceProcesses(t, db, racers, holdWriteLock(t, db, racers), func(int) []string {
			return []string{"verify", "alice", code}
		})
		checkExactlyOne(t, results)
	})
}

func TestRaceSameBackupCodeAcceptedOnce(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		// Activate, so backup codes are accepted.
		if r := testutil.Run(t, testutil.Options{}, db.Args("verify", "alice", testutil.Code(t, e.Secret, time.Now()))...); r.Code != 0 {
			t.Fatalf("activate: %d %s", r.Code, r.Stderr)
		}
		results := raceProcesses(t, db, racers, holdWriteLock(t, db, racers), func(int) []string {
			return []string{"verify", "alice", e.BackupCodes[0]}
		})
		checkExactlyOne(t, results)
		if left := db.Count(t, "totp_backup_codes", "used_at IS NULL"); left != 9 {
			t.Errorf("%d unused backup codes left, want 9", left)
		}
	})
}

// TestRaceSameTempCodeAcceptedOnce: processes racing with one temporary
// access code; exactly one is let in (the conditional UPDATE on used_at
// IS NULL AND expires_at > now).
func TestRaceSameTempCodeAcceptedOnce(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		if r := testutil.Run(t, testutil.Options{}, db.Args("verify", "alice", testutil.Code(t, e.Secret, time.Now()))...); r.Code != 0 {
			t.Fatalf("activate: %d %s", r.Code, r.Stderr)
		}
		r := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "temp-code", "--reason", "race", "alice")...)
		var issued struct{ Code string }
		if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &issued); r.Code != 0 || err != nil || issued.Code == "" {
			t.Fatalf("temp-code: exit %d, %q, %q, %v", r.Code, r.Stdout, r.Stderr, err)
		}
		results := raceProcesses(t, db, racers, holdWriteLock(t, db, racers), func(int) []string {
			return []string{"verify", "alice", issued.Code}
		})
		checkExactlyOne(t, results)
		if n := db.Count(t, "totp_temp_codes", "used_at IS NOT NULL"); n != 1 {
			t.Errorf("%d used temp codes, want 1", n)
		}
	})
}

// A regeneration racing a verify of an old backup code: the old code is
// consumed before the regeneration or refused after it, never both.
func TestRaceRegenerationAgainstBackupCode(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		if r := testutil.Run(t, testutil.Options{}, db.Args("verify", "alice", testutil.Code(t, e.Secret, time.Now()))...); r.Code != 0 {
			t.Fatalf("activate: %d %s", r.Code, r.Stderr)
		}
		codes := e.BackupCodes
		for round := 0; round < 3; round++ {
			// Even-numbered processes regenerate, odd ones try an old code;
			// refused old codes count as failures, so lift the lockout.
			results := raceProcesses(t, db, 8, holdWriteLock(t, db, 8), func(i int) []string {
				if i%2 == 0 {
					return []string{"--max-failures", "1000", "backup-codes", "alice"}
				}
				return []string{"--max-failures", "1000", "verify", "alice", codes[i]}
			})
			for i, r := range results {
				if r.code != 0 && (i%2 == 0 || r.code != 1) {
					t.Fatalf("round %d, process %d: exit %d: %s", round, i, r.code, r.stderr)
				}
			}
			for i := 1; i < 8; i += 2 {
				if r := testutil.Run(t, testutil.Options{}, db.Args("--max-failures", "1000", "verify", "alice", codes[i])...); r.Code != 1 {
					t.Fatalf("round %d: old code %d still accepted after regeneration: exit %d", round, i, r.Code)
				}
			}
			if n := db.Count(t, "totp_backup_codes", "used_at IS NULL"); n != 10 {
				t.Fatalf("round %d: %d unused codes after regeneration, want 10", round, n)
			}
			r := testutil.Run(t, testutil.Options{}, db.Args("-o", "json", "backup-codes", "alice")...)
			var out struct {
				BackupCodes []string `json:"backup_codes"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || len(out.BackupCodes) != 10 {
				t.Fatalf("backup-codes -o json: %q: %v", r.Stdout, err)
			}
			codes = out.BackupCodes
		}
	})
}

// Verifications racing repeated re-enrollments (a bulk `enroll --force`,
// a "new phone" ticket) while the password holder keeps submitting: every
// verify process is accepted or rejected, and none ever reports the user
// as not enrolled, who is enrolled before and after every change.
func TestRaceVerifyAgainstForceEnrollNeverNotEnrolled(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := testutil.Enroll(t, db, "alice")
		code := testutil.Code(t, e.Secret, time.Now())
		const n = 12
		for round := 0; round < 3; round++ {
			results := raceProcesses(t, db, n, holdWriteLock(t, db, n), func(i int) []string {
				if i%3 == 0 {
					return []string{"enroll", "--force", "--no-confirm", "alice"}
				}
				return []string{"--max-failures", "1000", "verify", "alice", code}
			})
			for i, r := range results {
				if i%3 == 0 {
					if r.code != 0 {
						t.Fatalf("round %d: enroll --force: exit %d: %s", round, r.code, r.stderr)
					}
					continue
				}
				if r.code == 3 || strings.Contains(r.stderr, "not enrolled") {
					t.Fatalf("round %d: verify %d said alice is not enrolled while she was re-enrolled: exit %d: %s", round, i, r.code, r.stderr)
				}
				if r.code != 0 && r.code != 1 {
					t.Fatalf("round %d: verify %d: exit %d: %s", round, i, r.code, r.stderr)
				}
			}
		}
	})
}
