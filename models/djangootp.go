package models

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"gorm.io/gorm"
)

// DjangoOTP is the store of an application that keeps its 2FA with
// django-otp (https://django-otp-official.readthedocs.io), the library
// django-two-factor-auth builds on. totpadm works on django-otp's own
// tables with django-otp's rules, so that what the admin tool does is
// exactly what the application sees:
//
//   - a user is enabled when a confirmed TOTP device exists, pending when
//     only unconfirmed ones do; backup codes are the tokens of the user's
//     static devices;
//   - a TOTP code is checked as TOTPDevice.verify_token checks it (hex key,
//     step, t0, digits, tolerance around drift, only a step later than
//     last_t) and a static token is consumed by deleting its row, as
//     StaticDevice.verify_token does;
//   - throttling is django-otp's exponential back-off: after n consecutive
//     failures a device refuses every code for factor·2^(n−1) seconds.
//
// It never alters the schema of a Django table: the only tables it
// creates are totpadm's audit log and its schema version
// (DjangoOTP.Migrate). django-otp keeps TOTP keys and static tokens in
// plain text; totpadm cannot change that and doctor says so.
//
// The Django settings that change these rules are Config.DjangoOTP;
// Django's USE_TZ is taken to be True (naive times in SQLite are UTC).
type DjangoOTP struct {
	svc *Service
	t   djangoTables
	set djangoSettings
}

type djangoTables struct {
	totp, static, token string
	audit               Tables // totpadm's own: audit log and schema version
}

// DjangoOTPSettings are the Django settings that change django-otp's
// rules. The zero value is django-otp's defaults, so that a Config built
// without them throttles as django-otp does.
type DjangoOTPSettings struct {
	// TOTPThrottleFactor is OTP_TOTP_THROTTLE_FACTOR, the seconds of the
	// first back-off; 0 means django-otp's default, 1. NoTOTPThrottling
	// is the setting 0 (throttling off).
	TOTPThrottleFactor float64
	NoTOTPThrottling   bool
	// StaticThrottleFactor and NoStaticThrottling are the same for
	// OTP_STATIC_THROTTLE_FACTOR.
	StaticThrottleFactor float64
	NoStaticThrottling   bool
	// NoTOTPSync is OTP_TOTP_SYNC = False: an accepted code does not
	// update the device's drift.
	NoTOTPSync bool
}

func (s DjangoOTPSettings) rules() djangoSettings {
	factor := func(f float64, off bool) float64 {
		switch {
		case off:
			return 0
		case f <= 0:
			return 1
		}
		return f
	}
	return djangoSettings{
		totpThrottleFactor:   factor(s.TOTPThrottleFactor, s.NoTOTPThrottling),
		staticThrottleFactor: factor(s.StaticThrottleFactor, s.NoStaticThrottling),
		totpSync:             !s.NoTOTPSync,
	}
}

// djangoSettings are the rules DjangoOTPSettings stand for.
type djangoSettings struct {
	totpThrottleFactor   float64 // OTP_TOTP_THROTTLE_FACTOR
	staticThrottleFactor float64 // OTP_STATIC_THROTTLE_FACTOR
	totpSync             bool    // OTP_TOTP_SYNC: remember the drift of an accepted code
}

// Device names as django-two-factor-auth gives them, so that the devices
// totpadm creates are the ones its views show.
const (
	djangoTOTPName   = "default"
	djangoStaticName = "backup"
)

// djangoSchemaVersion is the version of the tables totpadm keeps beside
// django-otp's: the audit log and its own version table.
const djangoSchemaVersion = 1

// NewDjangoOTP returns the django-otp store over svc, whose configuration
// supplies the users table (Django's auth_user by default, see
// StoreUsersTable), the audit log's table prefix, the clock and the actor.
func NewDjangoOTP(svc *Service) *DjangoOTP {
	// Tables keep no prefix of their own; the audit log's name holds it.
	prefix := strings.TrimSuffix(svc.cfg.Tables.AuditLog, "audit_log")
	return &DjangoOTP{
		svc: svc,
		t: djangoTables{
			totp:   "otp_totp_totpdevice",
			static: "otp_static_staticdevice",
			token:  "otp_static_statictoken",
			// A version table of its own: totpadm's native version table
			// at version 1 would claim credential tables that are not
			// there.
			audit: Tables{AuditLog: svc.cfg.Tables.AuditLog, SchemaVersion: prefix + "django_otp_schema_version"},
		},
		set: svc.cfg.DjangoOTP.rules(),
	}
}

// Info describes the django-otp store.
func (z *DjangoOTP) Info() StoreInfo {
	return StoreInfo{Name: StoreDjangoOTP, Tables: []string{z.t.totp, z.t.static, z.t.token}, DeviceCounts: true}
}

var djangoMigrations = []migration{
	{version: 1, sql: func(d dialect, t Tables) []string {
		return append([]string{versionTableSQL(d, t)}, auditTableSQL(d, t)...)
	}},
}

// Migrate creates totpadm's audit log and version table, and nothing
// else: django-otp's tables are Django's to create (manage.py migrate).
func (z *DjangoOTP) Migrate(ctx context.Context, db *gorm.DB, dryRun bool) (MigrationPlan, error) {
	return migrate(ctx, db, z.t.audit, djangoMigrations, dryRun)
}

// CheckSchema checks totpadm's audit tables and that django-otp's tables
// are there to be read.
func (z *DjangoOTP) CheckSchema(ctx context.Context, db *gorm.DB) error {
	if err := checkSchema(ctx, db, z.t.audit, djangoSchemaVersion); err != nil {
		return err
	}
	d, err := dialectOf(db)
	if err != nil {
		return err
	}
	for _, table := range []string{z.t.totp, z.t.static, z.t.token} {
		if err := db.WithContext(ctx).Exec("SELECT 1 FROM " + d.quote(table) + " WHERE 1 = 0").Error; err != nil {
			return fmt.Errorf("%w: django-otp's table %s cannot be read (is django_otp.plugins.otp_totp and otp_static installed and migrated?): %v", ErrSchemaMissing, table, err)
		}
	}
	return nil
}

// djangoDevice is one of a user's django-otp devices: a TOTP device, or a
// static device with the number of tokens it has left.
type djangoDevice struct {
	static    bool
	id        int64
	confirmed bool
	failures  int64
	failedAt  *time.Time
	tokens    int64 // static: tokens left
	// TOTP only.
	key                         string
	step, t0, digits, tolerance int64
	drift, lastT                int64
	userID                      string
}

// djangoState sums up a user's devices.
type djangoState struct {
	totp   []djangoDevice
	static []djangoDevice
}

// count is how many devices the user has, of both kinds; 0 for nil.
func (st *djangoState) count() int {
	if st == nil {
		return 0
	}
	return len(st.totp) + len(st.static)
}

// all is every device, TOTP first.
func (st *djangoState) all() []djangoDevice {
	return append(append([]djangoDevice(nil), st.totp...), st.static...)
}

// tokensLeft is the static tokens django-otp would accept: those of
// confirmed static devices.
func (st *djangoState) tokensLeft() int64 {
	var n int64
	for _, d := range st.static {
		if d.confirmed {
			n += d.tokens
		}
	}
	return n
}

// Device states as the write engine sees them: the two of a credential,
// and a user with static devices only (backup codes, no TOTP).
const djangoStaticOnly = "static"

func (st *djangoState) engineState() (string, bool) {
	for _, d := range st.totp {
		if d.confirmed {
			return StateActive, true
		}
	}
	if len(st.totp) > 0 {
		return StatePending, true
	}
	if len(st.static) > 0 {
		return djangoStaticOnly, true
	}
	return "", false
}

// lockedUntil is when the last of the devices' back-offs ends, or nil.
func (z *DjangoOTP) lockedUntil(devs []djangoDevice, now time.Time) *time.Time {
	var until *time.Time
	for i := range devs {
		if u := z.backoffEnd(&devs[i]); u != nil && now.Before(*u) && (until == nil || u.After(*until)) {
			until = u
		}
	}
	return until
}

// backoffEnd is when django-otp next allows a code on dev
// (ThrottlingMixin.verify_is_allowed): factor·2^(n−1) seconds after the
// last of n consecutive failures. nil when it has no failures.
func (z *DjangoOTP) backoffEnd(dev *djangoDevice) *time.Time {
	factor := z.set.totpThrottleFactor
	if dev.static {
		factor = z.set.staticThrottleFactor
	}
	if factor <= 0 || dev.failures <= 0 || dev.failedAt == nil {
		return nil
	}
	seconds := factor * math.Pow(2, float64(dev.failures-1))
	const farFuture = 100 * 365 * 24 * time.Hour
	d := farFuture
	if seconds < farFuture.Seconds() {
		d = time.Duration(seconds * float64(time.Second))
	}
	t := dev.failedAt.Add(d)
	return &t
}

func (z *DjangoOTP) allowed(dev *djangoDevice, now time.Time) bool {
	u := z.backoffEnd(dev)
	return u == nil || !now.Before(*u)
}

// statusRow is the one rule for a user's status, whether listed or asked.
func (z *DjangoOTP) statusRow(u User, st *djangoState, now time.Time) StatusRow {
	r := StatusRow{User: u, State: StatusDisabled, Devices: st.count(), BackupCodesLeft: int(st.tokensLeft())}
	all := st.all()
	for _, d := range all {
		r.Failures = max(r.Failures, int(d.failures))
	}
	state, ok := st.engineState()
	if !ok || state == djangoStaticOnly {
		return r
	}
	r.State = StatusEnabled
	if state == StatePending {
		r.State = StatusPending
	}
	if until := z.lockedUntil(all, now); until != nil {
		r.State, r.LockedUntil = StatusLocked, until
	}
	return r
}

// deviceQuery selects devices of one kind with the columns scanDevice
// reads: kind (0 TOTP, 1 static), id, user id as text, confirmed,
// failures, failure time, tokens left, and the TOTP fields (zero for
// static devices). where filters on the alias x. The key is read only
// with keys: status and the writes never need a secret in memory.
func (z *DjangoOTP) deviceQuery(d dialect, static, keys bool, where string) string {
	q := d.quote
	if static {
		return fmt.Sprintf(`SELECT 1 AS kind, x.id, %s AS user_id, x.confirmed, x.throttling_failure_count AS failures, x.throttling_failure_timestamp AS failed_at,
  (SELECT COUNT(*) FROM %s k WHERE k.device_id = x.id) AS tokens, '' AS key_hex, 0 AS step, 0 AS t0, 0 AS digits, 0 AS tolerance, 0 AS drift, 0 AS last_t
FROM %s x WHERE %s`, d.asText("x.user_id"), q(z.t.token), q(z.t.static), where)
	}
	key := "''"
	if keys {
		key = "x." + q("key")
	}
	return fmt.Sprintf(`SELECT 0 AS kind, x.id, %s AS user_id, x.confirmed, x.throttling_failure_count AS failures, x.throttling_failure_timestamp AS failed_at,
  0 AS tokens, %s AS key_hex, x.step, x.t0, x.digits, x.tolerance, x.drift, x.last_t
FROM %s x WHERE %s`, d.asText("x.user_id"), key, q(z.t.totp), where)
}

// scanDevice reads one row of deviceUnion.
func scanDevice(rows interface{ Scan(...any) error }) (djangoDevice, error) {
	var (
		dev      djangoDevice
		kind     int64
		failedAt any
	)
	err := rows.Scan(&kind, &dev.id, &dev.userID, &dev.confirmed, &dev.failures, &failedAt, &dev.tokens,
		&dev.key, &dev.step, &dev.t0, &dev.digits, &dev.tolerance, &dev.drift, &dev.lastT)
	if err != nil {
		return dev, err
	}
	dev.static = kind == 1
	dev.failedAt, err = djangoTimeValue(failedAt)
	return dev, err
}

// devicesOf reads the devices of users (by id), locking them when lock is
// set (django-otp's own select_for_update, on databases with row locks),
// with their keys when keys is set.
func (z *DjangoOTP) devicesOf(tx *gorm.DB, d dialect, ids []string, lock, keys bool) (map[string]*djangoState, error) {
	states := make(map[string]*djangoState, len(ids))
	if len(ids) == 0 {
		return states, nil
	}
	for _, static := range []bool{false, true} {
		q := z.deviceQuery(d, static, keys, "x.user_id IN ?") + " ORDER BY x.id"
		if lock {
			q += d.forUpdate()
		}
		rows, err := tx.Raw(q, ids).Rows()
		if err != nil {
			return nil, fmt.Errorf("read django-otp devices: %w", err)
		}
		for rows.Next() {
			dev, err := scanDevice(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("read django-otp devices: %w", err)
			}
			st := states[dev.userID]
			if st == nil {
				st = &djangoState{}
				states[dev.userID] = st
			}
			if dev.static {
				st.static = append(st.static, dev)
			} else {
				st.totp = append(st.totp, dev)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read django-otp devices: %w", err)
		}
	}
	return states, nil
}

// SecondFactor tells a login path whether user must give a code: yes when
// they have any django-otp device, confirmed or not; and on any error.
func (z *DjangoOTP) SecondFactor(ctx context.Context, db *gorm.DB, user User) (Requirement, error) {
	sess, err := z.svc.session(ctx, db)
	if err != nil {
		return SecondFactorRequired, err
	}
	states, err := z.devicesOf(sess.db, sess.d, []string{user.ID}, false, false)
	if err != nil {
		return SecondFactorRequired, fmt.Errorf("second factor of %s: %w", user, err)
	}
	if states[user.ID].count() == 0 {
		return NoSecondFactor, nil
	}
	return SecondFactorRequired, nil
}

// UserStatus returns user's 2FA state under django-otp's rules.
func (z *DjangoOTP) UserStatus(ctx context.Context, db *gorm.DB, user User) (StatusRow, error) {
	sess, err := z.svc.session(ctx, db)
	if err != nil {
		return StatusRow{}, err
	}
	states, err := z.devicesOf(sess.db, sess.d, []string{user.ID}, false, false)
	if err != nil {
		return StatusRow{}, fmt.Errorf("status of %s: %w", user, err)
	}
	st := states[user.ID]
	if st == nil {
		st = &djangoState{}
	}
	return z.statusRow(user, st, z.svc.now()), nil
}

// EachStatus streams every user's state, ordered by id, in one query:
// the users table joined with a union of both device kinds, one row per
// device, so a user's rows arrive together and are summed up by the same
// rule as UserStatus.
func (z *DjangoOTP) EachStatus(ctx context.Context, db *gorm.DB, state string, fn func(StatusRow) error) error {
	sess, err := z.svc.session(ctx, db)
	if err != nil {
		return err
	}
	d := sess.d
	u := z.svc.cfg.Users
	query := fmt.Sprintf(`SELECT %s, dv.kind, dv.id, dv.user_id, dv.confirmed, dv.failures, dv.failed_at, dv.tokens,
  dv.key_hex, dv.step, dv.t0, dv.digits, dv.tolerance, dv.drift, dv.last_t
FROM %s u LEFT JOIN (%s UNION ALL %s) dv ON dv.user_id = %s
ORDER BY u.%s, dv.kind, dv.id`,
		z.svc.userColumns(d, "u"), d.quote(u.Table), z.deviceQuery(d, false, false, "1 = 1"), z.deviceQuery(d, true, false, "1 = 1"), d.asText("u."+d.quote(u.IDColumn)), d.quote(u.IDColumn))
	rows, err := sess.db.WithContext(rowContext(ctx, d)).Raw(query).Rows()
	if err != nil {
		return fmt.Errorf("list status: %w", err)
	}
	defer rows.Close()
	now := z.svc.now()
	var (
		cur     User
		st      djangoState
		started bool
	)
	flush := func() error {
		if !started {
			return nil
		}
		r := z.statusRow(cur, &st, now)
		if state != "" && r.State != state {
			return nil
		}
		return fn(r)
	}
	for n := 0; rows.Next(); n++ {
		if n%cancelCheckRows == 0 && ctx.Err() != nil {
			return fmt.Errorf("list status: %w", ctx.Err())
		}
		var (
			us       userScan
			kind, id sql.NullInt64
			userID   sql.NullString
			conf     sql.NullBool
			failures sql.NullInt64
			failedAt any
			tokens   sql.NullInt64
			key      sql.NullString
			nums     [6]sql.NullInt64
		)
		dest := append(us.dest(), &kind, &id, &userID, &conf, &failures, &failedAt, &tokens, &key)
		for i := range nums {
			dest = append(dest, &nums[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("list status: %w", err)
		}
		user := us.user()
		if !started || user.ID != cur.ID {
			if err := flush(); err != nil {
				return err
			}
			cur, st, started = user, djangoState{}, true
		}
		if !kind.Valid {
			continue
		}
		at, err := djangoTimeValue(failedAt)
		if err != nil {
			return fmt.Errorf("list status of %s: %w", user, err)
		}
		dev := djangoDevice{static: kind.Int64 == 1, id: id.Int64, confirmed: conf.Bool, failures: failures.Int64, failedAt: at, tokens: tokens.Int64}
		if dev.static {
			st.static = append(st.static, dev)
		} else {
			st.totp = append(st.totp, dev)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list status: %w", err)
	}
	return flush()
}

// djangoTimeValue reads a DateTimeField. PostgreSQL and MySQL hand over a
// time; SQLite hands over Django's text ("2006-01-02 15:04:05.999999",
// UTC under USE_TZ) when the driver cannot tell the column's type, as in
// a UNION.
func djangoTimeValue(v any) (*time.Time, error) {
	var s string
	switch v := v.(type) {
	case nil:
		return nil, nil
	case time.Time:
		t := v.UTC()
		return &t, nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return nil, fmt.Errorf("unexpected time value %T", v)
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, fmt.Errorf("unreadable django-otp time %q", s)
}

// djangoTime is t as Django stores a DateTimeField: on SQLite, text in
// Django's own form (naive UTC); elsewhere a time the driver binds.
func djangoTime(d dialect, t time.Time) any {
	if d.name == "sqlite" {
		return t.UTC().Format("2006-01-02 15:04:05.000000")
	}
	return t.UTC()
}

// errDjangoKey is a device whose key or parameters django-otp itself could
// not use; the device is refused, never skipped.
var errDjangoKey = fmt.Errorf("%w: a django-otp device has an unusable key or parameters", ErrCorruptCredential)
