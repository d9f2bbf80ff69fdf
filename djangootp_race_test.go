package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/djangotest"
	"github.com/totpadm/totpadm/internal/testutil"
)

// djRacers is how many totpadm processes contend for one code.
const djRacers = 10

// djHold blocks every writer of the user's django-otp rows until the
// returned release: on SQLite an open BEGIN IMMEDIATE, elsewhere FOR
// UPDATE locks on the device and token rows. release waits until n
// processes queue where it can see them (pg_stat_activity, the process
// list), on
// SQLite long enough for them to get there, and then commits.
func djHold(t *testing.T, p *djangotest.Project, n int) (release func()) {
	t.Helper()
	ctx := context.Background()
	sqlDB, err := p.Gorm(t).DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{"BEGIN IMMEDIATE"}
	if p.Backend != "sqlite" {
		stmts = []string{"BEGIN",
			"SELECT id FROM otp_totp_totpdevice FOR UPDATE",
			"SELECT id FROM otp_static_staticdevice FOR UPDATE",
			"SELECT id FROM otp_static_statictoken FOR UPDATE"}
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		t.Helper()
		if p.Backend == "sqlite" {
			time.Sleep(700 * time.Millisecond)
		} else {
			q := "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
			if p.Backend == "mysql" {
				// MariaDB's innodb_trx shows only some of the waiters as LOCK
				// WAIT; the process list shows every locking read still
				// running.
				q = "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND info LIKE '%FOR UPDATE%' AND id <> CONNECTION_ID()"
			}
			// Asked on another connection: inside the locking transaction
			// PostgreSQL would show the same snapshot of pg_stat_activity
			// every time.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				var waiting int
				if err := sqlDB.QueryRowContext(ctx, q).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting >= n {
					break
				}
			}
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			t.Fatalf("COMMIT: %v", err)
		}
		conn.Close()
	}
}

// djRace runs one totpadm process per args at once, against the held
// lock, with extra (if not nil) let go at the same moment, and returns
// their results.
func djRace(t *testing.T, p *djangotest.Project, args [][]string, extra *djangotest.Pending) []raceResult {
	t.Helper()
	waiters := len(args)
	if extra != nil {
		waiters++
	}
	release := djHold(t, p, waiters)
	bin := testutil.Binary(t)
	cmds := make([]*exec.Cmd, len(args))
	errs := make([]*bytes.Buffer, len(args))
	for i, a := range args {
		cmds[i] = exec.Command(bin, p.Args(a...)...)
		errs[i] = &bytes.Buffer{}
		cmds[i].Stderr = errs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	if extra != nil {
		extra.Go()
	}
	release()
	results := make([]raceResult, len(args))
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = raceResult{code: exitCode(t, c.Wait()), stderr: errs[i].String()}
		}()
	}
	wg.Wait()
	return results
}

// djRefusals are the words a losing process may be refused with: under
// django-otp's rules a refused replay is a failure that starts the
// back-off, so the losers after the first are refused as throttled.
var djRefusals = []string{"already used", "wrong code", "locked until"}

// Concurrent verifications of one TOTP code: exactly one process wins.
func TestDjangoRaceSameTOTPCode(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		key := p.CreateTOTPDevice(t, "alice", "phone", true)
		code := djangotest.Code(t, key, time.Now())
		args := make([][]string, djRacers)
		for i := range args {
			args[i] = []string{"verify", "alice", code}
		}
		checkExactlyOne(t, djRace(t, p, args, nil), djRefusals...)
		if p.VerifyTOTP(t, "alice", code) {
			t.Error("Django accepted the code after the race")
		}
	})
}

// Concurrent verifications of one static token: exactly one consumes it.
func TestDjangoRaceSameStaticToken(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		p.CreateStaticDevice(t, "alice", []string{"ka7rt3xm", "q2wz5p4n"})
		args := make([][]string, djRacers)
		for i := range args {
			args[i] = []string{"verify", "alice", "ka7rt3xm"}
		}
		checkExactlyOne(t, djRace(t, p, args, nil), djRefusals...)
		if d := djDevice(t, p, "alice", "static"); len(d.Tokens) != 1 || d.Tokens[0] != "q2wz5p4n" {
			t.Errorf("tokens after the race: %v, want only q2wz5p4n", d.Tokens)
		}
	})
}

// totpadm racing Django's own verify_token for the same code: exactly one
// of them accepts it, for each of three users.
func TestDjangoRaceAgainstDjango(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		users := []string{"alice", "bob", "carol"}
		now := time.Now()
		codes := map[string]string{}
		var ops []djangotest.Op
		var args [][]string
		for _, u := range users {
			codes[u] = djangotest.Code(t, p.CreateTOTPDevice(t, u, "phone", true), now)
			ops = append(ops, djangotest.VerifyTOTPOp(u, codes[u]))
			for range 3 {
				args = append(args, []string{"verify", u, codes[u]})
			}
		}
		pd := p.Start(t, ops...)
		results := djRace(t, p, args, pd)
		verdicts := pd.Wait()
		for i, u := range users {
			// An error is a refusal: on SQLite, Django's verify_token can
			// fail with "database is locked" when totpadm wrote first
			// (Django reads in a deferred transaction, then cannot write).
			var v djangotest.Verdict
			if err := json.Unmarshal(verdicts[i], &v); err != nil {
				t.Fatalf("%s: Django's verdict %s: %v", u, verdicts[i], err)
			}
			wins := 0
			if v.Accepted {
				wins++
			}
			for j, r := range results[3*i : 3*i+3] {
				switch r.code {
				case 0:
					wins++
				case 1:
				default:
					t.Errorf("%s: process %d: exit %d: %s", u, j, r.code, r.stderr)
				}
				if low := strings.ToLower(r.stderr); strings.Contains(low, "database is locked") || strings.Contains(low, "deadlock") {
					t.Errorf("%s: process %d leaked a database error: %s", u, j, r.stderr)
				}
			}
			if wins != 1 {
				t.Errorf("%s: %d accepted the same code (Django %+v), want exactly 1", u, wins, v)
			}
			if v.Error != "" {
				t.Logf("%s: Django's verify_token raised %s (a refusal)", u, v.Error)
			}
		}
	})
}
