package models

// Benchmarks of the hot paths: the CPU work of one code check, one backup
// code, one sealed secret, and whole operations against a real SQLite
// file. Run with:
//
//	go test -bench . -run '^$' ./models/
//
// They are in package models to reach the internal helpers (matchStep,
// hashBackupCode, Key.seal/open); the SQLite handle is opened here the
// way config.Open does (config imports models, so it cannot be used).

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

var benchSink any

func benchKey(b *testing.B) *Key {
	b.Helper()
	raw := make([]byte, KeySize)
	rand.Read(raw)
	k, err := NewKey(raw)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

func benchSecret() []byte {
	s := make([]byte, SecretSize)
	rand.Read(s)
	return s
}

func BenchmarkGenerateCode(b *testing.B) {
	secret := benchSecret()
	step := DefaultParams.Step(time.Now())
	for b.Loop() {
		code, err := GenerateCode(secret, step, DefaultParams)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = code
	}
}

// BenchmarkMatchStep is the CPU cost of checking one TOTP code with the
// default ±1 step window: three HOTP computations whatever the outcome.
func BenchmarkMatchStep(b *testing.B) {
	secret := benchSecret()
	now := time.Now()
	good, _ := GenerateCode(secret, DefaultParams.Step(now), DefaultParams)
	for _, c := range []struct{ name, code string }{{"match", good}, {"nomatch", "000000"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				_, ok, err := matchStep(secret, c.code, now, 1, DefaultParams)
				if err != nil {
					b.Fatal(err)
				}
				benchSink = ok
			}
		})
	}
}

// BenchmarkCheckCode goes through the exported API an enroll prompt uses.
func BenchmarkCheckCode(b *testing.B) {
	cfg := DefaultConfig() // skew ±1, as configured by default
	cfg.Key = benchKey(b)
	svc, err := NewService(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e, err := svc.NewEnrollment(User{ID: "1", Login: "alice"}, Params{})
	if err != nil {
		b.Fatal(err)
	}
	code, _ := GenerateCode(e.secret, DefaultParams.Step(time.Now()), DefaultParams)
	for b.Loop() {
		ok, err := svc.CheckCode(e, code)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = ok
	}
}

func BenchmarkNormalizeBackupCode(b *testing.B) {
	for b.Loop() {
		c, ok := NormalizeBackupCode(" 7K3M-9Q2X-H4TZ ")
		if !ok {
			b.Fatal("not a code")
		}
		benchSink = c
	}
}

func BenchmarkNewBackupCode(b *testing.B) {
	for b.Loop() {
		c, err := newBackupCode(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = c
	}
}

func BenchmarkHashBackupCode(b *testing.B) {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	for b.Loop() {
		benchSink = hashBackupCode(salt, "7k3m9q2xh4tz")
	}
}

// BenchmarkBackupCodeCheck is what verify does for a backup code: normalize
// the input and compare it with each of a user's 10 stored hashes.
func BenchmarkBackupCodeCheck(b *testing.B) {
	type row struct{ salt, hash []byte }
	rows := make([]row, 10)
	for i := range rows {
		rows[i].salt = make([]byte, saltLen)
		rand.Read(rows[i].salt)
		rows[i].hash = hashBackupCode(rows[i].salt, fmt.Sprintf("%012d", i))
	}
	for b.Loop() {
		code, _ := NormalizeBackupCode("0000-0000-0009")
		n := 0
		for _, r := range rows {
			if backupCodeMatches(r.salt, r.hash, code) {
				n++
			}
		}
		if n != 1 {
			b.Fatal("no match")
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	k, secret := benchKey(b), benchSecret()
	for b.Loop() {
		sealed, err := k.seal("123456", secret)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = sealed
	}
}

func BenchmarkOpen(b *testing.B) {
	k := benchKey(b)
	sealed, err := k.seal("123456", benchSecret())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		plain, err := k.open("123456", k.ID(), sealed)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = plain
	}
}

// BenchmarkNewEnrollment is the first per-user step of a bulk enroll: a
// fresh secret and its otpauth URI. Sealing, backup codes and the writes
// follow in EnrollMany (BenchmarkEnrollMany).
func BenchmarkNewEnrollment(b *testing.B) {
	svc, err := NewService(Config{Key: benchKey(b)})
	if err != nil {
		b.Fatal(err)
	}
	u := User{ID: "123456", Login: "user123456"}
	for b.Loop() {
		e, err := svc.NewEnrollment(u, Params{})
		if err != nil {
			b.Fatal(err)
		}
		benchSink = e
	}
}

// ---- against a real SQLite file

type benchDB struct {
	db    *gorm.DB
	svc   *Service
	clock time.Time
}

// openBenchSQLite creates a migrated SQLite file with users user1…userN,
// opened with the DSN config.Open uses (WAL, synchronous=NORMAL,
// BEGIN IMMEDIATE, one connection).
func openBenchSQLite(b *testing.B, users int) *benchDB {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	dsn := "file:" + path + "?mode=rwc&_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate&_foreign_keys=1"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		b.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		b.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	b.Cleanup(func() { sqlDB.Close() })
	for _, stmt := range []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT)`,
		fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
INSERT INTO users SELECT i, 'user' || i, 'user' || i || '@example.com' FROM s`, users),
	} {
		if err := db.Exec(stmt).Error; err != nil {
			b.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Key = benchKey(b)
	cfg.Users.EmailColumn = "email"
	cfg.Actor = "bench"
	if _, err := Migrate(context.Background(), db, cfg.Tables, false); err != nil {
		b.Fatal(err)
	}
	bd := &benchDB{db: db, clock: time.Now().UTC()}
	cfg.Now = func() time.Time { return bd.clock }
	if bd.svc, err = NewService(cfg); err != nil {
		b.Fatal(err)
	}
	return bd
}

// enroll enrolls users [lo, hi] (ids) pending, in one bulk run.
func (bd *benchDB) enroll(b *testing.B, lo, hi int) []*Enrollment {
	b.Helper()
	es := make([]*Enrollment, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		e, err := bd.svc.NewEnrollment(User{ID: fmt.Sprint(i), Login: fmt.Sprintf("user%d", i)}, Params{})
		if err != nil {
			b.Fatal(err)
		}
		es = append(es, e)
	}
	err := bd.svc.EnrollMany(context.Background(), bd.db, es, EnrollOptions{}, BulkOptions{}, func(i int, _ EnrollResult, err error) {
		if err != nil {
			b.Fatal(err)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return es
}

// BenchmarkVerifySQLite is one Service.Verify on a 10,000-user database:
// a transaction that reads the credential, checks the code, moves
// last_step forward and writes the audit row. The clock moves one step
// per iteration so that every code is accepted.
func BenchmarkVerifySQLite(b *testing.B) {
	bd := openBenchSQLite(b, 10000)
	es := bd.enroll(b, 1, 1000)
	e := es[500]
	ctx := context.Background()
	b.Run("totp", func(b *testing.B) {
		for b.Loop() {
			bd.clock = bd.clock.Add(30 * time.Second)
			code, _ := GenerateCode(e.secret, DefaultParams.Step(bd.clock), DefaultParams)
			if _, err := bd.svc.Verify(ctx, bd.db, e.User, code); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("totp-lookup", func(b *testing.B) {
		// What `totpadm verify user501 CODE` does after opening: look the
		// user up by login, then verify.
		for b.Loop() {
			bd.clock = bd.clock.Add(30 * time.Second)
			code, _ := GenerateCode(e.secret, DefaultParams.Step(bd.clock), DefaultParams)
			u, err := bd.svc.LookupUser(ctx, bd.db, UserRef{Value: e.User.Login})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bd.svc.Verify(ctx, bd.db, u, code); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEachStatusSQLite streams the status of 100,000 users (10,000
// enrolled) without rendering them; ns/op is per full listing.
func BenchmarkEachStatusSQLite(b *testing.B) {
	bd := openBenchSQLite(b, 100000)
	for lo := 1; lo <= 100000; lo += 10000 {
		bd.enroll(b, lo, lo+999)
	}
	ctx := context.Background()
	for b.Loop() {
		n := 0
		err := bd.svc.EachStatus(ctx, bd.db, "", func(r StatusRow) error { n++; return nil })
		if err != nil {
			b.Fatal(err)
		}
		if n != 100000 {
			b.Fatalf("%d rows", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100000, "ns/row")
}

// BenchmarkEnrollMany saves 500 pending enrollments (one batch) per op;
// the rows are deleted again outside the timer.
func BenchmarkEnrollMany(b *testing.B) {
	bd := openBenchSQLite(b, 1000)
	ctx := context.Background()
	users := make([]User, 500)
	for i := range users {
		users[i] = User{ID: fmt.Sprint(i + 1), Login: fmt.Sprintf("user%d", i+1)}
	}
	for b.Loop() {
		es := make([]*Enrollment, len(users))
		for i, u := range users {
			e, err := bd.svc.NewEnrollment(u, Params{})
			if err != nil {
				b.Fatal(err)
			}
			es[i] = e
		}
		err := bd.svc.EnrollMany(ctx, bd.db, es, EnrollOptions{}, BulkOptions{}, func(i int, _ EnrollResult, err error) {
			if err != nil {
				b.Fatal(err)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		bd.db.Exec("DELETE FROM totp_backup_codes")
		bd.db.Exec("DELETE FROM totp_credentials")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/user")
}

// BenchmarkDisableMany disables 500 enrolled users (one batch) per op;
// they are enrolled again outside the timer.
func BenchmarkDisableMany(b *testing.B) {
	bd := openBenchSQLite(b, 1000)
	ctx := context.Background()
	users := make([]User, 500)
	for i := range users {
		users[i] = User{ID: fmt.Sprint(i + 1), Login: fmt.Sprintf("user%d", i+1)}
	}
	for b.Loop() {
		b.StopTimer()
		bd.enroll(b, 1, 500)
		b.StartTimer()
		err := bd.svc.DisableMany(ctx, bd.db, users, "bench", BulkOptions{}, func(i int, err error) {
			if err != nil {
				b.Fatal(err)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/user")
}

// BenchmarkLookupUsers resolves 10,000 logins (every tenth user of
// 100,000) per op, as a bulk command's --from-file does before its first
// batch; B/op and allocs/op are the resolver's memory per run.
func BenchmarkLookupUsers(b *testing.B) {
	bd := openBenchSQLite(b, 100000)
	refs := make([]UserRef, 10000)
	for i := range refs {
		refs[i] = UserRef{Value: fmt.Sprintf("user%d", (i+1)*10)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, errs, err := bd.svc.LookupUsers(ctx, bd.db, refs)
		if err != nil {
			b.Fatal(err)
		}
		if errs[0] != nil || errs[len(errs)-1] != nil {
			b.Fatal(errs[0], errs[len(errs)-1])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(refs)), "ns/ref")
}
