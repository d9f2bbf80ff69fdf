package models_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/keyfile"
	"github.com/totpadm/totpadm/models"
)

// refHOTP is an independent RFC 4226 §5.3 implementation (HMAC, dynamic
// truncation, modulo 10^digits), used as the reference the package under
// test is compared with. It is itself checked against the RFC vectors.
func refHOTP(secret []byte, counter uint64, alg string, digits int) string {
	var h func() hash.Hash
	switch strings.ToUpper(alg) {
	case "SHA1":
		h = sha1.New
	case "SHA256":
		h = sha256.New
	case "SHA512":
		h = sha512.New
	default:
		panic("refHOTP: unknown algorithm " + alg)
	}
	mac := hmac.New(h, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := uint64(sum[off]&0x7f)<<24 | uint64(sum[off+1])<<16 | uint64(sum[off+2])<<8 | uint64(sum[off+3])
	mod := uint64(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// refTOTP is RFC 6238: HOTP with T = floor(unix / period).
func refTOTP(secret []byte, at time.Time, p models.Params) string {
	return refHOTP(secret, uint64(at.Unix()/int64(p.Period)), p.Algorithm, p.Digits)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func decodeB32(t *testing.T, s string) []byte {
	t.Helper()
	raw, err := b32.DecodeString(s)
	if err != nil {
		t.Fatalf("decode base32 %q: %v", s, err)
	}
	return raw
}

// fakeClock is the injected models.Config.Now; tests move it instead of
// sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// baseTime is 10 s into a 30 s time step (1_700_000_010 = 30 × 56_666_667).
var baseTime = time.Unix(1_700_000_020, 0).UTC()

// env is one test database with a Service bound to its key and a fake clock.
type env struct {
	t     *testing.T
	db    *testutil.DB
	clock *fakeClock
	key   *models.Key
	svc   *models.Service
	ctx   context.Context
}

func newEnv(t *testing.T, db *testutil.DB, mutate ...func(*models.Config)) *env {
	t.Helper()
	key, err := keyfile.Read(db.KeyFile, "")
	if err != nil {
		t.Fatalf("load key: %v", err)
	}
	if key == nil {
		t.Fatal("load key: no key in the test database's key file")
	}
	e := &env{t: t, db: db, clock: &fakeClock{now: baseTime}, key: key, ctx: context.Background()}
	e.svc = e.service(mutate...)
	return e
}

// service builds another Service sharing the env's clock and key (unless
// mutate changes them).
func (e *env) service(mutate ...func(*models.Config)) *models.Service {
	e.t.Helper()
	cfg := models.DefaultConfig()
	cfg.Key = e.key
	cfg.Now = e.clock.Now
	cfg.Actor = "tester"
	cfg.Host = "testhost"
	for _, m := range mutate {
		m(&cfg)
	}
	svc, err := models.NewService(cfg)
	if err != nil {
		e.t.Fatalf("new service: %v", err)
	}
	return svc
}

func (e *env) user(ref string) models.User {
	e.t.Helper()
	r, err := models.ParseUserRef(ref)
	if err != nil {
		e.t.Fatalf("parse user %q: %v", ref, err)
	}
	u, err := e.svc.LookupUser(e.ctx, e.db.Gorm, r)
	if err != nil {
		e.t.Fatalf("look up %q: %v", ref, err)
	}
	return u
}

type enrolled struct {
	user   models.User
	secret []byte
	params models.Params
	codes  []string
	res    models.EnrollResult
}

// enroll saves a new enrollment for login with the service's default
// parameters; confirm makes it active with the code of the current step.
func (e *env) enroll(login string, confirm bool) enrolled {
	e.t.Helper()
	return e.enrollWith(e.svc, login, models.Params{}, models.EnrollOptions{}, confirm)
}

func (e *env) enrollWith(svc *models.Service, login string, p models.Params, opt models.EnrollOptions, confirm bool) enrolled {
	e.t.Helper()
	u := e.user(login)
	enr, err := svc.NewEnrollment(u, p)
	if err != nil {
		e.t.Fatalf("new enrollment %s: %v", login, err)
	}
	secret := decodeB32(e.t, enr.Secret())
	if confirm {
		opt.ConfirmCode = refTOTP(secret, e.clock.Now(), enr.Params)
	}
	res, err := svc.Enroll(e.ctx, e.db.Gorm, enr, opt)
	if err != nil {
		e.t.Fatalf("enroll %s: %v", login, err)
	}
	return enrolled{user: u, secret: secret, params: enr.Params, codes: res.BackupCodes, res: res}
}

// code is the reference code of en at the clock's current time plus
// offset time steps.
func (e *env) code(en enrolled, offset int) string {
	at := e.clock.Now().Add(time.Duration(offset*en.params.Period) * time.Second)
	return refTOTP(en.secret, at, en.params)
}

func (e *env) step(en enrolled) int64 {
	return e.clock.Now().Unix() / int64(en.params.Period)
}

// wrong returns a well-formed code that matches none of the steps within
// ±3 of now, so it is wrong whatever the skew.
func (e *env) wrong(en enrolled) string {
	e.t.Helper()
	near := map[string]bool{}
	for d := -3; d <= 3; d++ {
		near[e.code(en, d)] = true
	}
	for i := 0; i < 100; i++ {
		c := fmt.Sprintf("%0*d", en.params.Digits, 123456+i*7919)
		if !near[c] {
			return c
		}
	}
	e.t.Fatal("no wrong code found")
	return ""
}

func (e *env) verify(en enrolled, code string) (models.VerifyResult, error) {
	return e.svc.Verify(e.ctx, e.db.Gorm, en.user, code)
}

// mustVerify verifies code and fails the test unless it is accepted.
func (e *env) mustVerify(en enrolled, code string) models.VerifyResult {
	e.t.Helper()
	res, err := e.verify(en, code)
	if err != nil {
		e.t.Fatalf("verify %s with a valid code: %v", en.user, err)
	}
	return res
}

type credState struct {
	Found       bool
	State       string
	LastStep    int64
	Failures    int
	LockedUntil *time.Time
	Secret      []byte
	KeyID       string
}

// cred reads a credential row directly, not through the package.
func (e *env) cred(userID string) credState {
	e.t.Helper()
	rows, err := e.db.Gorm.Raw("SELECT state, last_step, failures, locked_until, secret, key_id FROM totp_credentials WHERE user_id = ?", userID).Rows()
	if err != nil {
		e.t.Fatalf("read credential: %v", err)
	}
	defer rows.Close()
	var c credState
	for rows.Next() {
		var locked sql.NullTime
		if err := rows.Scan(&c.State, &c.LastStep, &c.Failures, &locked, &c.Secret, &c.KeyID); err != nil {
			e.t.Fatalf("scan credential: %v", err)
		}
		if locked.Valid {
			v := locked.Time
			c.LockedUntil = &v
		}
		c.Found = true
	}
	if err := rows.Err(); err != nil {
		e.t.Fatalf("read credential: %v", err)
	}
	return c
}

// unusedCodes counts a user's backup-code rows not yet used.
func (e *env) unusedCodes(userID string) int {
	e.t.Helper()
	return e.db.Count(e.t, "totp_backup_codes", "user_id = ? AND used_at IS NULL", userID)
}

type auditRow struct {
	ID                                              int64
	Actor, Host, Action, UserID, UserLogin, Outcome string
	Reason                                          sql.NullString
}

// audit reads the audit log directly, oldest first.
func (e *env) audit() []auditRow {
	e.t.Helper()
	rows, err := e.db.Gorm.Raw("SELECT id, actor, host, action, user_id, user_login, outcome, reason FROM totp_audit_log ORDER BY id").Rows()
	if err != nil {
		e.t.Fatalf("read audit log: %v", err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.ID, &r.Actor, &r.Host, &r.Action, &r.UserID, &r.UserLogin, &r.Outcome, &r.Reason); err != nil {
			e.t.Fatalf("scan audit log: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatalf("read audit log: %v", err)
	}
	return out
}

// assertUnchanged fails when the database differs from the dump before.
func (e *env) assertUnchanged(before, what string) {
	e.t.Helper()
	if after := e.db.Dump(e.t); after != before {
		e.t.Errorf("%s changed the database:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// openConn opens a separate connection pool on the test database, as a
// second process would.
func openConn(t *testing.T, db *testutil.DB) *gorm.DB {
	t.Helper()
	target, err := config.ParseTarget(db.Spec)
	if err != nil {
		t.Fatal(err)
	}
	g, err := config.Open(context.Background(), target, config.OpenOptions{})
	if err != nil {
		t.Fatalf("open connection: %v", err)
	}
	t.Cleanup(func() { config.Close(g) })
	return g
}

// plainRejection reports whether err is a wrong-code rejection and
// nothing more specific (not a replay, lockout or pending refusal).
func plainRejection(err error) bool {
	return errors.Is(err, models.ErrCodeRejected) && !errors.Is(err, models.ErrReplayed) &&
		!errors.Is(err, models.ErrLocked) && !errors.Is(err, models.ErrPending)
}
