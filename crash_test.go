package main_test

// Crash safety: a bulk run killed with SIGKILL at a random moment leaves
// every user either completely changed or untouched, and a re-run finishes
// the job. SPEC §3: "Bulk work is atomic per user (a user is changed
// completely or not at all, also when the process is killed) … can be
// re-run safely".

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// crashUsers is how many users each bulk run covers: 20 batches of 500,
// so a kill lands between, inside and at the commit of batches.
const crashUsers = 10000

// crashRounds is how many enroll/disable rounds each backend survives.
const crashRounds = 3

// crashSeed seeds the kill timing: TOTPADM_CRASH_SEED replays a run,
// otherwise the clock. Timing itself cannot be replayed exactly, but the
// chosen delays can.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("TOTPADM_CRASH_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TOTPADM_CRASH_SEED=%q: %v", s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// crashAddUsers inserts n users crash1…crashN, a thousand a statement,
// and returns a --from-file listing them, one a line.
func crashAddUsers(t *testing.T, db *testutil.DB, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# crash-test users\n")
	for lo := 1; lo <= n; lo += 1000 {
		var values []string
		var args []any
		for i := lo; i < lo+1000 && i <= n; i++ {
			login := fmt.Sprintf("crash%d", i)
			values = append(values, "(?, ?)")
			args = append(args, login, login+"@example.com")
			b.WriteString(login + "\n")
		}
		db.Exec(t, "INSERT INTO users (username, email) VALUES "+strings.Join(values, ", "), args...)
	}
	if got := db.Count(t, "users", "username LIKE 'crash%'"); got != n {
		t.Fatalf("inserted %d users, want %d", got, n)
	}
	path := filepath.Join(db.Dir, "users.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// crashIDText is the users-table id as text, as totpadm's tables store it.
func crashIDText(db *testutil.DB) string {
	if db.Backend == "mysql" {
		return "CAST(u.id AS CHAR)"
	}
	return "CAST(u.id AS TEXT)"
}

// crashShape is what one user has: credentials, backup codes, enroll and
// disable audit rows.
type crashShape struct{ creds, codes, enrolls, disables int }

func (s crashShape) String() string {
	return fmt.Sprintf("credential=%d codes=%d enroll-audit=%d disable-audit=%d", s.creds, s.codes, s.enrolls, s.disables)
}

// crashShapes counts the crash users by shape, with SQL on the test's own
// connection, and checks that no row of totpadm's tables belongs to
// anybody else (alice, bob, carol, or an id that is not a user).
func crashShapes(t *testing.T, db *testutil.DB) map[crashShape]int {
	t.Helper()
	id := crashIDText(db)
	rows, err := db.Gorm.Raw(`SELECT COALESCE(c.n, 0), COALESCE(b.n, 0), COALESCE(e.n, 0), COALESCE(d.n, 0), COUNT(*)
FROM users u
LEFT JOIN (SELECT user_id, COUNT(*) AS n FROM totp_credentials GROUP BY user_id) c ON c.user_id = ` + id + `
LEFT JOIN (SELECT user_id, COUNT(*) AS n FROM totp_backup_codes GROUP BY user_id) b ON b.user_id = ` + id + `
LEFT JOIN (SELECT user_id, COUNT(*) AS n FROM totp_audit_log WHERE action = 'enroll' GROUP BY user_id) e ON e.user_id = ` + id + `
LEFT JOIN (SELECT user_id, COUNT(*) AS n FROM totp_audit_log WHERE action = 'disable' GROUP BY user_id) d ON d.user_id = ` + id + `
WHERE u.username LIKE 'crash%'
GROUP BY COALESCE(c.n, 0), COALESCE(b.n, 0), COALESCE(e.n, 0), COALESCE(d.n, 0)`).Rows()
	if err != nil {
		t.Fatalf("count shapes: %v", err)
	}
	defer rows.Close()
	shapes := map[crashShape]int{}
	var sum crashShape
	for rows.Next() {
		var s crashShape
		var n int
		if err := rows.Scan(&s.creds, &s.codes, &s.enrolls, &s.disables, &n); err != nil {
			t.Fatalf("count shapes: %v", err)
		}
		shapes[s] += n
		sum.creds += s.creds * n
		sum.codes += s.codes * n
		sum.enrolls += s.enrolls * n
		sum.disables += s.disables * n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("count shapes: %v", err)
	}
	total := crashShape{
		creds:    db.Count(t, "totp_credentials", ""),
		codes:    db.Count(t, "totp_backup_codes", ""),
		enrolls:  db.Count(t, "totp_audit_log", "action = 'enroll'"),
		disables: db.Count(t, "totp_audit_log", "action = 'disable'"),
	}
	if total != sum {
		t.Errorf("rows outside the crash users (orphans, or alice/bob/carol touched): table totals %v, crash users %v", total, sum)
	}
	if other := db.Count(t, "totp_audit_log", "action NOT IN ('enroll', 'disable')"); other != 0 {
		t.Errorf("%d audit rows of other actions", other)
	}
	return shapes
}

func crashFormatShapes(shapes map[crashShape]int) string {
	var parts []string
	for s, n := range shapes {
		parts = append(parts, fmt.Sprintf("%d×{%v}", n, s))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// crashCheckShapes fails unless every crash user has one of the allowed shapes,
// and returns how many have each.
func crashCheckShapes(t *testing.T, db *testutil.DB, when string, allowed ...crashShape) map[crashShape]int {
	t.Helper()
	shapes := crashShapes(t, db)
	total := 0
	for s, n := range shapes {
		total += n
		ok := false
		for _, a := range allowed {
			ok = ok || s == a
		}
		if !ok {
			t.Errorf("%s: %d users half-written: %v (all shapes: %s)", when, n, s, crashFormatShapes(shapes))
		}
	}
	if total != crashUsers {
		t.Errorf("%s: shapes cover %d users, want %d", when, total, crashUsers)
	}
	if db.Backend == "sqlite" {
		var ok string
		if err := db.Gorm.Raw("PRAGMA integrity_check").Row().Scan(&ok); err != nil || ok != "ok" {
			t.Errorf("%s: integrity_check = %q, %v", when, ok, err)
		}
	}
	return shapes
}

// Shapes a user may have.
var (
	crashUntouched = crashShape{}
	crashEnrolled  = crashShape{creds: 1, codes: 10, enrolls: 1}
	crashDisabled  = crashShape{enrolls: 1, disables: 1}
)

// crashKill is one killed run.
type crashKill struct {
	delay    time.Duration // from start to the kill
	killed   bool          // the kill hit a running process
	exitCode int           // when the process ended before the kill
	stderr   string
}

// crashRunAndKill starts the built binary with stdout discarded, waits for
// trigger (or for the process to end by itself), then kills it with
// SIGKILL — no deferred function, no rollback, no flush.
func crashRunAndKill(t *testing.T, db *testutil.DB, trigger func(done <-chan struct{}), args ...string) crashKill {
	t.Helper()
	spec, app := db.Spec, ""
	if db.Backend == "postgres" {
		// Named, so that crashSettle can wait for its server sessions.
		app = "totpadm_crash_" + strconv.FormatUint(rand.Uint64(), 36)
		spec = testutil.WithQuery(t, db.Spec, "application_name", app)
	}
	cmd := exec.Command(testutil.Binary(t), append([]string{"--db", spec, "--key-file", db.KeyFile, "--actor", "tester"}, args...)...)
	defer crashSettle(t, db, app)
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	trigger(done)
	res := crashKill{delay: time.Since(start)}
	select {
	case <-done:
	default:
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill: %v", err)
		}
	}
	<-done
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		res.killed = true
	} else {
		res.exitCode = cmd.ProcessState.ExitCode()
	}
	res.stderr = stderr.String()
	return res
}

// crashSettle waits until the killed process's last statement is over on
// the server. A client killed right after sending COMMIT leaves the server
// to finish it: the database is consistent at every moment (that is what
// is tested), but the counts compared with the re-run would be stale.
func crashSettle(t *testing.T, db *testutil.DB, app string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	switch db.Backend {
	case "postgres":
		for time.Now().Before(deadline) {
			var n int64
			if err := db.Gorm.Raw("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ?", app).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("the killed process's sessions are still on the server after 15 s")
	case "mysql":
		// No session name to wait for: wait until the rows stop changing.
		last := ""
		for time.Now().Before(deadline) {
			now := fmt.Sprint(db.Count(t, "totp_credentials", ""), db.Count(t, "totp_backup_codes", ""), db.Count(t, "totp_audit_log", ""))
			if now == last {
				return
			}
			last = now
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// crashAfterDelay kills after d.
func crashAfterDelay(d time.Duration) func(<-chan struct{}) {
	return func(done <-chan struct{}) {
		select {
		case <-done:
		case <-time.After(d):
		}
	}
}

// crashAfterProgress kills jitter after the database first shows progress
// (some batch committed), so at least one kill per run lands mid-way
// whatever the machine's speed.
func crashAfterProgress(t *testing.T, db *testutil.DB, progressed func() bool, jitter time.Duration) func(<-chan struct{}) {
	return func(done <-chan struct{}) {
		deadline := time.After(30 * time.Second)
		for !progressed() {
			select {
			case <-done:
				return
			case <-deadline:
				t.Errorf("no progress in 30 s")
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		crashAfterDelay(jitter)(done)
	}
}

// crashRerun runs the binary to completion and counts the JSON outcomes.
func crashRerun(t *testing.T, db *testutil.DB, args ...string) (map[string]int, time.Duration) {
	t.Helper()
	start := time.Now()
	res := testutil.Exec(t, db.Dir, "", nil, db.Args(args...)...)
	elapsed := time.Since(start)
	if res.Code != 0 {
		t.Fatalf("re-run %v: exit %d: %.500s", args, res.Code, res.Stderr)
	}
	outcomes := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(res.Stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Outcome string `json:"outcome"`
			Error   string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("re-run output %q: %v", sc.Text(), err)
		}
		if rec.Error != "" {
			t.Errorf("re-run reported an error: %s", rec.Error)
		}
		outcomes[rec.Outcome]++
	}
	return outcomes, elapsed
}

func TestCrashKilledBulkRunsLeaveUsersWholeAndRerunsFinish(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		t.Parallel()
		seed := crashSeed(t)
		t.Logf("kill timing seed %d (replay with TOTPADM_CRASH_SEED=%d)", seed, seed)
		rng := rand.New(rand.NewPCG(seed, 0x7074))
		testStart := time.Now()
		file := crashAddUsers(t, db, crashUsers)
		enrollArgs := []string{"-o", "json", "enroll", "--no-confirm", "--from-file", file}
		disableArgs := []string{"-o", "json", "disable", "--yes", "--reason", "crash", "--from-file", file}
		var midEnroll, midDisable int
		creds := func() int { return db.Count(t, "totp_credentials", "") }

		for round := 0; round < crashRounds; round++ {
			// A clean slate, so each round's audit rows are its own.
			for _, table := range []string{"totp_backup_codes", "totp_credentials", "totp_audit_log"} {
				db.Exec(t, "DELETE FROM "+table)
			}

			// Bulk enroll, killed. The last round waits for the first
			// committed batch, so some kill lands mid-way on any machine.
			trigger := crashAfterDelay(time.Duration(50+rng.IntN(1450)) * time.Millisecond)
			if round == crashRounds-1 {
				trigger = crashAfterProgress(t, db, func() bool { return creds() > 0 }, time.Duration(rng.IntN(300))*time.Millisecond)
			}
			k := crashRunAndKill(t, db, trigger, enrollArgs...)
			shapes := crashCheckShapes(t, db, fmt.Sprintf("round %d, enroll killed", round), crashUntouched, crashEnrolled)
			done := shapes[crashEnrolled]
			t.Logf("round %d: enroll killed=%v after %v: %d of %d users enrolled", round, k.killed, k.delay.Round(time.Millisecond), done, crashUsers)
			if !k.killed && k.exitCode != 0 {
				t.Errorf("round %d: enroll ended by itself with exit %d: %s", round, k.exitCode, k.stderr)
			}
			if k.killed && done > 0 && done < crashUsers {
				midEnroll++
			}

			// The re-run skips exactly the users the killed run saved.
			out, took := crashRerun(t, db, append(enrollArgs, "--skip-enrolled")...)
			if out["skipped"] != done || out["enrolled"] != crashUsers-done {
				t.Errorf("round %d: enroll --skip-enrolled reported %v, want %d skipped and %d enrolled", round, out, done, crashUsers-done)
			}
			t.Logf("round %d: enroll --skip-enrolled re-run: %v in %v", round, out, took.Round(time.Millisecond))
			crashCheckShapes(t, db, fmt.Sprintf("round %d, after enroll re-run", round), crashEnrolled)
			if n := db.Count(t, "totp_credentials", "state = 'pending' AND enrolled_by = 'tester'"); n != crashUsers {
				t.Errorf("round %d: %d pending credentials by tester, want %d", round, n, crashUsers)
			}
			if n := db.Count(t, "totp_backup_codes", "used_at IS NULL"); n != 10*crashUsers {
				t.Errorf("round %d: %d unused backup codes, want %d", round, n, 10*crashUsers)
			}

			// Bulk disable, killed.
			trigger = crashAfterDelay(time.Duration(80+rng.IntN(720)) * time.Millisecond)
			if round == crashRounds-1 {
				trigger = crashAfterProgress(t, db, func() bool { return creds() < crashUsers }, time.Duration(rng.IntN(150))*time.Millisecond)
			}
			k = crashRunAndKill(t, db, trigger, disableArgs...)
			shapes = crashCheckShapes(t, db, fmt.Sprintf("round %d, disable killed", round), crashEnrolled, crashDisabled)
			left := shapes[crashEnrolled]
			t.Logf("round %d: disable killed=%v after %v: %d of %d users still enrolled", round, k.killed, k.delay.Round(time.Millisecond), left, crashUsers)
			if !k.killed && k.exitCode != 0 {
				t.Errorf("round %d: disable ended by itself with exit %d: %s", round, k.exitCode, k.stderr)
			}
			if k.killed && left > 0 && left < crashUsers {
				midDisable++
			}

			// The re-run disables the rest; the others are "not enrolled",
			// which counts as done.
			out, took = crashRerun(t, db, disableArgs...)
			if out["disabled"] != left || out["not enrolled"] != crashUsers-left {
				t.Errorf("round %d: disable re-run reported %v, want %d disabled and %d not enrolled", round, out, left, crashUsers-left)
			}
			t.Logf("round %d: disable re-run: %v in %v", round, out, took.Round(time.Millisecond))
			crashCheckShapes(t, db, fmt.Sprintf("round %d, after disable re-run", round), crashDisabled)
		}
		if midEnroll == 0 || midDisable == 0 {
			t.Errorf("only %d enroll and %d disable kills landed mid-run: the test proved little (slow machine?)", midEnroll, midDisable)
		}
		t.Logf("%s: %d rounds in %v (%d mid-run enroll kills, %d mid-run disable kills)", db.Backend, crashRounds, time.Since(testStart).Round(time.Millisecond), midEnroll, midDisable)
	})
}

// TestCrashInterruptedBulkEnrollReportsEverySavedUser: Ctrl-C (SIGINT)
// mid bulk enroll rolls back the batch in flight and ends "with what it
// reported so far" (main.go). Every user whose enrollment was saved must
// have been reported, with the secret and backup codes that are shown
// only once: a saved enrollment nobody saw the secret of locks its user
// out until someone notices.
func TestCrashInterruptedBulkEnrollReportsEverySavedUser(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		t.Parallel()
		file := crashAddUsers(t, db, crashUsers)
		cmd := exec.Command(testutil.Binary(t), db.Args("-o", "json", "enroll", "--no-confirm", "--from-file", file)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		crashAfterProgress(t, db, func() bool { return db.Count(t, "totp_credentials", "") > 0 }, 50*time.Millisecond)(done)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Logf("interrupt: %v", err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("still running 30 s after Ctrl-C")
		}
		shapes := crashCheckShapes(t, db, "after Ctrl-C", crashUntouched, crashEnrolled)
		saved := shapes[crashEnrolled]

		out := stdout.String()
		if i := strings.LastIndexByte(out, '\n'); i+1 < len(out) {
			t.Errorf("output ends mid-record after Ctrl-C: %.80q…", out[i+1:])
			out = out[:i+1]
		}
		reported := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct {
				Login, Outcome, Secret string
				BackupCodes            []string `json:"backup_codes"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("output line %q: %v", sc.Text(), err)
			}
			if rec.Outcome == "enrolled" && rec.Secret != "" && len(rec.BackupCodes) == 10 {
				reported[rec.Login] = true
			}
		}
		t.Logf("exit %d; %d users saved, %d reported with their secret; stderr %q", cmd.ProcessState.ExitCode(), saved, len(reported), stderr.String())
		if cmd.ProcessState.ExitCode() == 0 && saved < crashUsers {
			t.Errorf("interrupted run exited 0 with %d of %d users enrolled", saved, crashUsers)
		}
		var unseen int64
		logins := make([]string, 0, len(reported))
		for l := range reported {
			logins = append(logins, l)
		}
		// Saved users whose secret was never printed.
		q := db.Gorm.Table("totp_credentials c").Joins("JOIN users u ON c.user_id = " + crashIDText(db))
		if len(logins) > 0 {
			q = q.Where("u.username NOT IN ?", logins)
		}
		if err := q.Count(&unseen).Error; err != nil {
			t.Fatal(err)
		}
		if unseen > 0 {
			t.Errorf("%d of %d saved enrollments were never reported: their secrets and backup codes are lost (output not flushed on interrupt?)", unseen, saved)
		}
	})
}
