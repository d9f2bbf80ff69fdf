package commands

// Benchmarks of the command layer: rendering status rows in each output
// format, and whole in-process runs of status, verify, enroll and disable
// against a real SQLite file. Run with:
//
//	go test -bench . -run '^$' ./commands/
//
// In package commands to reach the record writers; the databases are built
// here with config and models (internal/testutil imports commands).

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/models"
)

// benchStatusRows are n status rows as a listing yields them: one user in
// ten enrolled, most of those enabled and used, a few pending or locked.
func benchStatusRows(n int) []models.StatusRow {
	t0 := time.Date(2026, 11, 1, 9, 30, 0, 123456000, time.UTC)
	rows := make([]models.StatusRow, n)
	for i := range rows {
		id := i + 1
		r := models.StatusRow{
			User:  models.User{ID: fmt.Sprint(id), Login: fmt.Sprintf("user%d", id), Email: fmt.Sprintf("user%d@example.com", id)},
			State: models.StatusDisabled,
		}
		if id%10 == 0 {
			enrolled, used := t0.Add(time.Duration(id)*time.Second), t0.Add(time.Duration(id)*time.Minute)
			r.State, r.BackupCodesLeft, r.EnrolledAt, r.LastUsedAt = models.StatusEnabled, 10, &enrolled, &used
			switch {
			case id%100 == 50:
				r.State, r.LastUsedAt = models.StatusPending, nil
			case id%1000 == 70:
				until := used.Add(15 * time.Minute)
				r.State, r.Failures, r.LockedUntil = models.StatusLocked, 5, &until
			}
		}
		rows[i] = r
	}
	return rows
}

// BenchmarkStatusRecords renders 10,000 status rows per op as generic
// records (benchRecord), the way the other commands build their output, to
// io.Discard. status itself renders through its column specification:
// BenchmarkStatusWriter.
func BenchmarkStatusRecords(b *testing.B) {
	rows := benchStatusRows(10000)
	for _, format := range []string{formatCSV, formatJSON, formatTable} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rw := newRecordWriter(format, io.Discard, benchRecordColumns)
				for _, r := range rows {
					if err := rw.write(benchRecord(r)); err != nil {
						b.Fatal(err)
					}
				}
				if err := rw.flush(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
		})
	}
}

var benchRecordColumns = []string{"id", "login", "email", "state", "backup_codes_left", "enrolled_at", "last_used_at", "failures", "locked_until", "temp_code_until"}

// benchRecord is a status row as a generic record.
func benchRecord(s models.StatusRow) record {
	return record{
		{"id", s.ID}, {"login", s.Login}, {"email", s.Email}, {"state", s.State},
		{"backup_codes_left", s.BackupCodesLeft}, {"enrolled_at", s.EnrolledAt},
		{"last_used_at", s.LastUsedAt}, {"failures", s.Failures}, {"locked_until", s.LockedUntil},
		{"temp_code_until", s.TempCodeUntil},
	}
}

// benchDB is a SQLite file with users user1…userN and a key file.
type benchDB struct {
	path, keyFile string
	db            *gorm.DB
	svc           *models.Service
}

func newBenchDB(b *testing.B, users int) *benchDB {
	b.Helper()
	dir := b.TempDir()
	bd := &benchDB{path: filepath.Join(dir, "bench.db"), keyFile: filepath.Join(dir, "bench.key")}
	ctx := context.Background()
	db, err := config.Open(ctx, config.Target{Driver: "sqlite", Path: bd.path}, config.OpenOptions{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	bd.db = db
	b.Cleanup(func() { config.Close(db) })
	for _, stmt := range []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT)`,
		fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
INSERT INTO users SELECT i, 'user' || i, 'user' || i || '@example.com' FROM s`, users),
	} {
		if err := db.Exec(stmt).Error; err != nil {
			b.Fatal(err)
		}
	}
	cfg := models.DefaultConfig()
	if _, err := models.Migrate(ctx, db, cfg.Tables, false); err != nil {
		b.Fatal(err)
	}
	return bd.withKey(b, cfg)
}

func (bd *benchDB) withKey(b *testing.B, cfg models.Config) *benchDB {
	b.Helper()
	text, err := models.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(bd.keyFile, []byte(text+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	if cfg.Key, err = models.ParseKey(text); err != nil {
		b.Fatal(err)
	}
	cfg.Users.EmailColumn = "email"
	cfg.Actor = "bench"
	if bd.svc, err = models.NewService(cfg); err != nil {
		b.Fatal(err)
	}
	return bd
}

// enroll enrolls the users with ids in ids (pending) and returns their
// base32 secrets.
func (bd *benchDB) enroll(b *testing.B, ids []int) []string {
	b.Helper()
	es := make([]*models.Enrollment, len(ids))
	for i, id := range ids {
		e, err := bd.svc.NewEnrollment(models.User{ID: fmt.Sprint(id), Login: fmt.Sprintf("user%d", id)}, models.Params{})
		if err != nil {
			b.Fatal(err)
		}
		es[i] = e
	}
	err := bd.svc.EnrollMany(context.Background(), bd.db, es, models.EnrollOptions{}, models.BulkOptions{}, func(i int, _ models.EnrollResult, err error) {
		if err != nil {
			b.Fatal(err)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	secrets := make([]string, len(es))
	for i, e := range es {
		secrets[i] = e.Secret()
	}
	return secrets
}

// run is one in-process totpadm run on bd; it fails the benchmark on an
// exit status other than 0.
func (bd *benchDB) run(b *testing.B, stdin string, out io.Writer, now func() time.Time, args ...string) {
	b.Helper()
	var errOut strings.Builder
	full := append([]string{"totpadm", "--db", bd.path, "--key-file", bd.keyFile, "--actor", "bench", "--user-email-column", "email"}, args...)
	code := Run(context.Background(), full, Streams{In: strings.NewReader(stdin), Out: out, Err: &errOut, Hostname: "bench", Now: now})
	if code != ExitOK {
		b.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
}

func everyTenth(n int) []int {
	ids := make([]int, 0, n/10)
	for id := 10; id <= n; id += 10 {
		ids = append(ids, id)
	}
	return ids
}

// BenchmarkStatusCommand is `totpadm status -o FORMAT` over 100,000 users
// (10,000 enrolled) in-process, output to io.Discard: open, check schema,
// query, scan and render.
func BenchmarkStatusCommand(b *testing.B) {
	bd := newBenchDB(b, 100000)
	bd.enroll(b, everyTenth(100000))
	for _, format := range []string{formatCSV, formatJSON, formatTable} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bd.run(b, "", io.Discard, nil, "status", "-o", format)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100000, "ns/row")
		})
	}
}

// BenchmarkVerifyCommand is `totpadm verify user500 CODE` in-process on
// 100,000 users: everything a verify process does except starting. The
// injected clock moves one time step per run so every code is accepted.
func BenchmarkVerifyCommand(b *testing.B) {
	bd := newBenchDB(b, 100000)
	secrets := bd.enroll(b, everyTenth(100000)[:1000])
	secret, err := models.DecodeSecret(secrets[49]) // user500
	if err != nil {
		b.Fatal(err)
	}
	clock := time.Now()
	now := func() time.Time { return clock }
	b.ReportAllocs()
	for b.Loop() {
		clock = clock.Add(30 * time.Second)
		code, err := models.GenerateCode(secret, models.DefaultParams.Step(clock), models.DefaultParams)
		if err != nil {
			b.Fatal(err)
		}
		bd.run(b, "", io.Discard, now, "verify", "user500", code)
	}
}

// BenchmarkEnrollCommand is `enroll --no-confirm -o json --from-file -` of
// 1,000 users per op; the rows are deleted outside the timer.
func BenchmarkEnrollCommand(b *testing.B) {
	bd := newBenchDB(b, 10000)
	logins := benchLogins(everyTenth(10000))
	b.ReportAllocs()
	for b.Loop() {
		bd.run(b, logins, io.Discard, nil, "enroll", "--no-confirm", "-o", "json", "--from-file", "-")
		b.StopTimer()
		bd.db.Exec("DELETE FROM totp_backup_codes")
		bd.db.Exec("DELETE FROM totp_credentials")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/user")
}

// BenchmarkDisableCommand is `disable --yes --reason bench --from-file -`
// of 1,000 enrolled users per op; they are enrolled again outside the
// timer.
func BenchmarkDisableCommand(b *testing.B) {
	bd := newBenchDB(b, 10000)
	ids := everyTenth(10000)
	logins := benchLogins(ids)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		bd.enroll(b, ids)
		b.StartTimer()
		bd.run(b, logins, io.Discard, nil, "disable", "--yes", "--reason", "bench", "--from-file", "-")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/user")
}

func benchLogins(ids []int) string {
	var s strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&s, "user%d\n", id)
	}
	return s.String()
}
