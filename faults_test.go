package main_test

// Environment faults: an unreachable or vanishing PostgreSQL server, a
// SQLite database locked by another writer, read-only, or on a full disk.
// Each must end in exit 5 with one clear "totpadm:" line per failure, and
// leave every user completely changed or untouched.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

// faultLines returns the lines of stderr, failing unless each is one
// "totpadm: …" message with no stack trace.
func faultLines(t *testing.T, stderr string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if stderr == "" {
		return nil
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "totpadm: ") {
			t.Errorf("stderr line not prefixed \"totpadm: \": %q", l)
		}
		for _, bad := range []string{"goroutine ", "panic", ".go:"} {
			if strings.Contains(l, bad) {
				t.Errorf("stderr line looks like a stack trace (%q): %q", bad, l)
			}
		}
	}
	return lines
}

// faultOneLine fails unless stderr is exactly one well-formed line.
func faultOneLine(t *testing.T, stderr string) string {
	t.Helper()
	lines := faultLines(t, stderr)
	if len(lines) != 1 {
		t.Errorf("want exactly one stderr line, got %d: %q", len(lines), stderr)
		return stderr
	}
	return lines[0]
}

func faultContainsAny(s string, subs ...string) bool {
	s = strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// faultKeyFile writes a fresh key file, for runs that have no test DB.
func faultKeyFile(t *testing.T) string {
	t.Helper()
	key, err := models.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "totpadm.key")
	if err := keyfile.Write(path, key); err != nil {
		t.Fatal(err)
	}
	return path
}

// faultWriteCommands are commands that must write, each on an enrolled
// user (bob) except enroll (alice).
var faultWriteCommands = [][]string{
	{"enroll", "--no-confirm", "alice"},
	{"verify", "bob", "000000"},
	{"backup-codes", "bob"},
	{"disable", "--yes", "--reason", "fault test", "bob"},
	{"unlock", "bob"},
}

// --- (a) PostgreSQL unreachable -------------------------------------------

// faultSilentServer accepts TCP connections and never says a word, like a
// server behind a dead firewall rule or a hung postmaster.
func faultSilentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestFaultPostgresUnreachable(t *testing.T) {
	const password = "Unre4chable-Pw"
	keyFile := faultKeyFile(t)
	testutil.Binary(t) // built before the clock starts
	servers := map[string]string{
		"connection refused": "127.0.0.1:1",
		"silent server":      faultSilentServer(t),
	}
	commands := append([][]string{{"status"}, {"status", "alice"}, {"migrate"}}, faultWriteCommands...)
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := "postgres://admin:" + password + "@" + addr + "/app?sslmode=disable"
			for _, args := range commands {
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					t.Parallel()
					start := time.Now()
					res := testutil.Exec(t, t.TempDir(), "", nil, append([]string{"--db", spec, "--key-file", keyFile, "--actor", "tester"}, args...)...)
					elapsed := time.Since(start)
					if res.Code != 5 {
						t.Errorf("exit %d, want 5; stderr %q", res.Code, res.Stderr)
					}
					line := faultOneLine(t, res.Stderr)
					if strings.Contains(res.Stderr+res.Stdout, password) {
						t.Errorf("password leaked: %q", res.Stderr)
					}
					if !strings.Contains(line, "xxxxx") && !strings.Contains(line, addr) {
						t.Errorf("error does not say which database: %q", line)
					}
					if elapsed > 10*time.Second {
						t.Errorf("took %v, want under 10 s", elapsed)
					}
					t.Logf("%v: %s", elapsed.Round(time.Millisecond), line)
				})
			}
		})
	}
}

// --- (b) PostgreSQL connection dropped mid-command --------------------------

// faultProxy forwards TCP to the PostgreSQL server until told to fail: then
// it cuts every open connection and either refuses new ones (the server
// went away) or accepts them and never answers (a network black hole).
type faultProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	silent bool
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { p.fail(false) })
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.mu.Lock()
		silent := p.silent
		p.mu.Unlock()
		if silent {
			continue // hold it open, say nothing
		}
		go func() {
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.track(up)
			go func() { io.Copy(up, c); up.Close() }()
			io.Copy(c, up)
			c.Close()
		}()
	}
}

// fail cuts every connection; silent keeps accepting without answering,
// otherwise the port is closed and connections are refused.
func (p *faultProxy) fail(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = silent
	if !silent {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// faultBulkEnroll starts a bulk enroll of the crash users against spec,
// calls fault once the first batch has committed, and waits up to limit
// for the process to end (killing it after that).
type faultRun struct {
	exit     int
	timedOut bool
	afterCut time.Duration // from the fault to the end of the process
	stdout   string
	stderr   string
}

func faultBulkEnroll(t *testing.T, db *testutil.DB, spec, file string, fault func(), limit time.Duration) faultRun {
	t.Helper()
	args := []string{"--db", spec, "--key-file", db.KeyFile, "--actor", "tester", "-o", "json", "enroll", "--no-confirm", "--from-file", file}
	cmd := exec.Command(testutil.Binary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for db.Count(t, "totp_credentials", "") == 0 && time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("enroll ended before the first batch was seen: %s", stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	fault()
	cut := time.Now()
	var run faultRun
	select {
	case <-done:
	case <-time.After(limit):
		run.timedOut = true
		cmd.Process.Kill()
		<-done
	}
	run.afterCut = time.Since(cut)
	run.exit = cmd.ProcessState.ExitCode()
	run.stdout, run.stderr = stdout.String(), stderr.String()
	return run
}

// faultCheckReported checks that every user reported enrolled really is,
// and logs users reported as failed whose enrollment committed anyway
// (a lost COMMIT acknowledgement: the secret was never shown).
func faultCheckReported(t *testing.T, db *testutil.DB, stdout string) map[string]int {
	t.Helper()
	outcomes := map[string]int{}
	var failed []string
	if i := strings.LastIndexByte(stdout, '\n'); i+1 < len(stdout) {
		stdout = stdout[:i+1] // a killed run's last line may be cut short
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var enrolled []string
	for sc.Scan() {
		var rec struct{ Login, Outcome string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("output %q: %v", sc.Text(), err)
		}
		outcomes[rec.Outcome]++
		switch rec.Outcome {
		case "enrolled":
			enrolled = append(enrolled, rec.Login)
		case "skipped":
		default:
			failed = append(failed, rec.Login)
		}
	}
	for lo := 0; lo < len(enrolled); lo += 500 {
		chunk := enrolled[lo:min(lo+500, len(enrolled))]
		var n int64
		db.Gorm.Raw("SELECT COUNT(*) FROM totp_credentials c JOIN users u ON c.user_id = "+crashIDText(db)+" WHERE u.username IN ?", chunk).Scan(&n)
		if int(n) != len(chunk) {
			t.Errorf("%d users reported enrolled have no credential", len(chunk)-int(n))
		}
	}
	if len(failed) > 0 {
		var n int64
		db.Gorm.Raw("SELECT COUNT(*) FROM totp_credentials c JOIN users u ON c.user_id = "+crashIDText(db)+" WHERE u.username IN ?", failed[:min(len(failed), 30000)]).Scan(&n)
		if n > 0 {
			t.Logf("note: %d users reported failed were enrolled anyway (COMMIT acknowledgement lost)", n)
		}
	}
	return outcomes
}

func faultRandomName(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestFaultPostgresConnectionDropped(t *testing.T) {
	// The backend serving totpadm is terminated once mid-run, as by an
	// administrator or a failover. Only totpadm's own connections are
	// terminated, found by an application_name unique to this test: other
	// tests share the server and must not be disturbed.
	t.Run("backend terminated", func(t *testing.T) {
		t.Parallel()
		db := testutil.NewPostgres(t)
		file := crashAddUsers(t, db, crashUsers)
		app := "totpadm_fault_" + faultRandomName(t)
		spec := testutil.WithQuery(t, db.Spec, "application_name", app)
		terminated := 0
		run := faultBulkEnroll(t, db, spec, file, func() {
			var pids []bool
			if err := db.Gorm.Raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ? AND pid <> pg_backend_pid()", app).Scan(&pids).Error; err != nil {
				t.Fatal(err)
			}
			terminated = len(pids)
		}, 60*time.Second)
		if terminated == 0 {
			t.Fatalf("no backend with application_name %s to terminate", app)
		}
		lines := faultLines(t, run.stderr)
		t.Logf("terminated %d backend(s): exit %d after %v, %d stderr lines, first %q", terminated, run.exit, run.afterCut.Round(time.Millisecond), len(lines), faultFirstLine(lines))
		switch run.exit {
		case 0: // reconnected and carried on: fine
		case 4:
			// Possible only if the terminate hit a COMMIT that the server
			// completed but never acknowledged: the batch is then retried
			// user by user and each is "already enrolled" — by this very
			// run, with a secret nobody was shown. A known limit of
			// retrying after an unacknowledged COMMIT, not a torn user.
			t.Logf("note: exit 4 after a lost COMMIT acknowledgement: %q", faultFirstLine(lines))
		case 5:
			for _, l := range lines {
				if !faultContainsAny(l, "terminating connection", "connection", "eof", "closed") {
					t.Errorf("unclear error: %q", l)
				}
			}
		default:
			t.Errorf("exit %d, want 0 (reconnected) or 5", run.exit)
		}
		faultCheckReported(t, db, run.stdout)
		crashCheckShapes(t, db, "after the terminated backend", crashUntouched, crashEnrolled)
		out, _ := crashRerun(t, db, "-o", "json", "enroll", "--no-confirm", "--skip-enrolled", "--from-file", file)
		if out["enrolled"]+out["skipped"] != crashUsers {
			t.Errorf("re-run: %v", out)
		}
		crashCheckShapes(t, db, "after the re-run", crashEnrolled)
	})

	// The server goes away for good mid-run: open connections are cut and
	// new ones refused (stopped server) or never answered (black hole).
	// totpadm must stop with exit 5 within seconds, not try every
	// remaining user against a dead server.
	for _, mode := range []struct {
		name   string
		silent bool
	}{{"server gone", false}, {"network black hole", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			db := testutil.NewPostgres(t)
			file := crashAddUsers(t, db, crashUsers)
			u, err := url.Parse(db.Spec)
			if err != nil {
				t.Fatal(err)
			}
			target := u.Host
			if u.Port() == "" {
				target = net.JoinHostPort(u.Hostname(), "5432")
			}
			proxy := newFaultProxy(t, target)
			u.Host = proxy.addr()
			spec := testutil.WithQuery(t, u.String(), "connect_timeout", "2")
			const limit = 15 * time.Second
			run := faultBulkEnroll(t, db, spec, file, func() { proxy.fail(mode.silent) }, limit)
			lines := faultLines(t, run.stderr)
			t.Logf("exit %d %v after the outage, %d stderr lines, first %q", run.exit, run.afterCut.Round(time.Millisecond), len(lines), faultFirstLine(lines))
			switch {
			case run.timedOut:
				t.Errorf("still running %v after the database went away (killed; %d users reported failed so far): every remaining user is retried against the dead server", limit, len(lines))
			case run.exit != 5:
				t.Errorf("exit %d, want 5", run.exit)
			case len(lines) == 0:
				t.Errorf("no error reported")
			case len(lines) > 1:
				t.Errorf("%d stderr lines for one outage, want one clear error (first: %q)", len(lines), lines[0])
			}
			outcomes := faultCheckReported(t, db, run.stdout)
			t.Logf("reported outcomes: %v", outcomes)
			crashCheckShapes(t, db, "after the outage", crashUntouched, crashEnrolled)
			out, _ := crashRerun(t, db, "-o", "json", "enroll", "--no-confirm", "--skip-enrolled", "--from-file", file)
			if out["enrolled"]+out["skipped"] != crashUsers {
				t.Errorf("re-run: %v", out)
			}
			crashCheckShapes(t, db, "after the re-run", crashEnrolled)
		})
	}
}

// faultExec is a run of the binary that may have been killed at its
// time limit.
type faultExec struct {
	exit     int
	timedOut bool
	elapsed  time.Duration
	stderr   string
}

func faultExecWithin(t *testing.T, db *testutil.DB, limit time.Duration, args ...string) faultExec {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t), db.Args(args...)...)
	cmd.Dir = db.Dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var run faultExec
	select {
	case <-done:
	case <-time.After(limit):
		run.timedOut = true
		cmd.Process.Kill()
		<-done
	}
	run.elapsed = time.Since(start)
	run.exit = cmd.ProcessState.ExitCode()
	run.stderr = stderr.String()
	return run
}

func faultFirstLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

// --- (c) SQLite locked by another writer -----------------------------------

func TestFaultSQLiteLockedLongerThanBusyTimeout(t *testing.T) {
	db := testutil.NewSQLite(t)
	testutil.Enroll(t, db, "bob")
	file := crashAddUsers(t, db, 1000)
	before := db.Dump(t)
	testutil.Binary(t) // built before any clock starts

	ctx := context.Background()
	sqlDB, err := db.Gorm.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
		}
	}
	defer release()

	for _, args := range faultWriteCommands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			start := time.Now()
			res := testutil.Exec(t, db.Dir, "", nil, db.Args(append([]string{"--busy-timeout", "300ms"}, args...)...)...)
			elapsed := time.Since(start)
			if res.Code != 5 {
				t.Errorf("exit %d, want 5: %q", res.Code, res.Stderr)
			}
			line := faultOneLine(t, res.Stderr)
			if !faultContainsAny(line, "busy", "locked") {
				t.Errorf("error does not say the database is busy/locked: %q", line)
			}
			if elapsed < 300*time.Millisecond || elapsed > 5*time.Second {
				t.Errorf("took %v with --busy-timeout 300ms", elapsed)
			}
			t.Logf("%v: %s", elapsed.Round(time.Millisecond), line)
		})
	}
	// A bulk run gives up as a whole: it must not wait out the busy
	// timeout once per user (with the default 10 s, 10,000 users would
	// wait 28 hours).
	t.Run("bulk enroll", func(t *testing.T) {
		const limit = 10 * time.Second
		run := faultExecWithin(t, db, limit, "--busy-timeout", "200ms", "enroll", "--no-confirm", "--from-file", file)
		lines := faultLines(t, run.stderr)
		t.Logf("exit %d after %v, %d stderr lines, first %q", run.exit, run.elapsed.Round(time.Millisecond), len(lines), faultFirstLine(lines))
		switch {
		case run.timedOut:
			t.Errorf("still running after %v (killed; %d users reported so far): each user waits out --busy-timeout alone after the batch failed", limit, len(lines))
		case run.exit != 5:
			t.Errorf("exit %d, want 5", run.exit)
		}
		for _, l := range lines {
			if !faultContainsAny(l, "busy", "locked") {
				t.Errorf("error does not say the database is busy/locked: %q", l)
				break
			}
		}
	})
	// A reader is not blocked by a writer (WAL).
	if res := testutil.Exec(t, db.Dir, "", nil, db.Args("--busy-timeout", "300ms", "status", "bob")...); res.Code != 0 {
		t.Errorf("status while another process writes: exit %d: %s", res.Code, res.Stderr)
	}
	release()
	if after := db.Dump(t); after != before {
		t.Errorf("database changed by commands that failed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if res := testutil.Exec(t, db.Dir, "", nil, db.Args("--busy-timeout", "300ms", "enroll", "--no-confirm", "alice")...); res.Code != 0 {
		t.Errorf("enroll after the lock is released: exit %d: %s", res.Code, res.Stderr)
	}
}

// --- (d) Read-only database and full disk ----------------------------------

// TestFaultSQLiteReadOnly makes the database file immutable with chattr
// +i: tests run as root here, and root ignores chmod 0400, but not the
// immutable attribute.
func TestFaultSQLiteReadOnly(t *testing.T) {
	db := testutil.NewSQLite(t)
	testutil.Enroll(t, db, "bob")
	before := db.Dump(t)
	path := db.Spec
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(path, 0o600) })
	} else {
		if _, err := exec.LookPath("chattr"); err != nil {
			t.Skip("running as root, where chmod 0400 does not stop writes, and chattr is not installed")
		}
		if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
			t.Skipf("running as root, where chmod 0400 does not stop writes, and chattr +i failed: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
	}
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Fatalf("%s is still writable", path)
	}

	if res := testutil.Exec(t, db.Dir, "", nil, db.Args("status", "bob")...); res.Code != 0 {
		t.Errorf("status on a read-only database: exit %d: %s", res.Code, res.Stderr)
	}
	for _, args := range faultWriteCommands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := testutil.Exec(t, db.Dir, "", nil, db.Args(args...)...)
			if res.Code != 5 {
				t.Errorf("exit %d, want 5: %q", res.Code, res.Stderr)
			}
			line := faultOneLine(t, res.Stderr)
			if !faultContainsAny(line, "readonly", "read-only", "read only") {
				t.Errorf("error does not say the database is read-only: %q", line)
			}
			t.Log(line)
		})
	}
	if after := db.Dump(t); after != before {
		t.Errorf("read-only database changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestFaultSQLiteDiskFull puts the database on a small tmpfs (root only),
// fills it mid bulk enroll, then makes room and re-runs.
func TestFaultSQLiteDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs that can fill up")
	}
	src := testutil.NewSQLite(t)
	file := crashAddUsers(t, src, crashUsers)
	src.Exec(t, "PRAGMA wal_checkpoint(TRUNCATE)")
	data, err := os.ReadFile(src.Spec)
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	size := len(data) + 3<<20
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (%v): disk-full not tested", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "app.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	gdb, err := config.Open(context.Background(), config.Target{Driver: "sqlite", Path: path}, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { config.Close(gdb) })
	db := &testutil.DB{Backend: "sqlite", Spec: path, KeyFile: src.KeyFile, Dir: src.Dir, Gorm: gdb}

	args := []string{"-o", "json", "enroll", "--no-confirm", "--from-file", file}
	res := testutil.Exec(t, db.Dir, "", nil, db.Args(args...)...)
	lines := faultLines(t, res.Stderr)
	t.Logf("bulk enroll on a %d-byte tmpfs: exit %d, %d stderr lines, first %q", size, res.Code, len(lines), faultFirstLine(lines))
	if res.Code != 5 {
		t.Errorf("exit %d, want 5", res.Code)
	}
	for _, l := range lines {
		if !faultContainsAny(l, "full", "no space") {
			t.Errorf("error does not say the disk is full: %q", l)
			break
		}
	}
	faultCheckReported(t, db, res.Stdout)
	shapes := crashCheckShapes(t, db, "after the disk filled", crashUntouched, crashEnrolled)
	t.Logf("%d of %d users enrolled before the disk filled", shapes[crashEnrolled], crashUsers)

	// Fill what is left, then a single write fails with one line and
	// changes nothing; a read still works.
	filler := filepath.Join(dir, "filler")
	faultFillDisk(t, filler)
	mid := db.Dump(t)
	// One of the run's own users that it did not reach (the last line of
	// its input): whatever happens to it, the re-run below accounts for it.
	lastLogin := faultLastLine(t, file)
	one := testutil.Exec(t, db.Dir, "", nil, db.Args("enroll", "--no-confirm", lastLogin)...)
	switch one.Code {
	case 0:
		// The bulk run now stops at the first "disk full", leaving free
		// pages in SQLite's own WAL file: a small write may still fit
		// there. Then it must be a whole enrollment.
		t.Logf("enroll %s fitted into space SQLite had already allocated", lastLogin)
		crashCheckShapes(t, db, "after a single enroll on a full disk", crashUntouched, crashEnrolled)
	case 5:
		if line := faultOneLine(t, one.Stderr); !faultContainsAny(line, "full", "no space") {
			t.Errorf("error does not say the disk is full: %q", line)
		}
		if after := db.Dump(t); after != mid {
			t.Errorf("failed enroll changed the database")
		}
	default:
		t.Errorf("enroll %s on a full disk: exit %d, want 5 (or 0 if it fitted): %s", lastLogin, one.Code, one.Stderr)
	}
	if st := testutil.Exec(t, db.Dir, "", nil, db.Args("status", "alice")...); st.Code != 0 {
		t.Errorf("status on a full disk: exit %d: %s", st.Code, st.Stderr)
	}

	// Make room: the re-run finishes the job.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=256m,mode=0700"); err != nil {
		t.Fatalf("grow tmpfs: %v", err)
	}
	out, _ := crashRerun(t, db, append(args, "--skip-enrolled")...)
	if out["enrolled"]+out["skipped"] != crashUsers {
		t.Errorf("re-run: %v", out)
	}
	crashCheckShapes(t, db, "after the re-run", crashEnrolled)
}

// faultFillDisk writes path until the file system is full.
func faultFillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return
		}
	}
}

// faultLastLine is the last non-empty line of a users file.
func faultLastLine(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	if len(lines) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return lines[len(lines)-1]
}
