package main_test

// Acceptance tests of the django-otp store (--store django-otp), judged by
// Django and django-otp themselves (internal/djangotest): every device
// totpadm writes is read back, and every code checked, by django-otp's own
// code, and every device Django writes is what totpadm works on.

import (
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/djangotest"
	"github.com/totpadm/totpadm/internal/testutil"
)

// djBackends runs fn on each backend with a Django project that has users
// alice, bob and carol (ids 1, 2, 3) and totpadm's tables migrated. When
// the test ends, Django's tables must be defined exactly as Django's
// migrate left them: no command alters a table totpadm does not own.
func djBackends(t *testing.T, fn func(t *testing.T, p *djangotest.Project)) {
	t.Helper()
	for _, b := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(b, func(t *testing.T) { fn(t, djSetup(t, b, true)) })
	}
}

func djSetup(t *testing.T, backend string, migrate bool) *djangotest.Project {
	t.Helper()
	p := djangotest.New(t, backend)
	djCreateUsers(t, p, "alice", "bob", "carol")
	schema := p.SchemaDump(t)
	t.Cleanup(func() {
		if got := p.SchemaDump(t); got != schema {
			t.Errorf("Django's tables were altered:\nbefore:\n%s\nafter:\n%s", schema, got)
		}
	})
	if migrate {
		djOK(t, p, "migrate")
	}
	return p
}

func djCreateUsers(t *testing.T, p *djangotest.Project, logins ...string) {
	t.Helper()
	var ops []djangotest.Op
	for _, l := range logins {
		ops = append(ops, djangotest.CreateUserOp(l, l+"@example.com"))
	}
	for i, raw := range p.Batch(t, ops...) {
		var r struct{ ID int }
		djangotest.Decode(t, ops[i], raw, &r)
	}
}

func djRun(t *testing.T, p *djangotest.Project, args ...string) testutil.Result {
	t.Helper()
	return testutil.Run(t, testutil.Options{}, p.Args(args...)...)
}

func djOK(t *testing.T, p *djangotest.Project, args ...string) testutil.Result {
	t.Helper()
	r := djRun(t, p, args...)
	if r.Code != 0 {
		t.Fatalf("totpadm %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// djJSON parses -o json output, one object a line.
func djJSON(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// djStatus is `status -o json` by login.
func djStatus(t *testing.T, p *djangotest.Project, users ...string) map[string]map[string]any {
	t.Helper()
	r := djOK(t, p, append([]string{"-o", "json", "status"}, users...)...)
	out := map[string]map[string]any{}
	for _, rec := range djJSON(t, r.Stdout) {
		out[fmt.Sprint(rec["login"])] = rec
	}
	return out
}

// djDevice returns the user's only device of kind, failing otherwise.
func djDevice(t *testing.T, p *djangotest.Project, login, kind string) djangotest.Device {
	t.Helper()
	var found []djangotest.Device
	for _, d := range p.Devices(t, login) {
		if d.Kind == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s has %d %s devices, want 1: %+v", login, len(found), kind, found)
	}
	return found[0]
}

// djWrongCode is a 6-digit code none of the steps around at accept.
func djWrongCode(t *testing.T, key string, at time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for i := -3; i <= 3; i++ {
		near[djangotest.Code(t, key, at.Add(time.Duration(i)*30*time.Second))] = true
	}
	for n := 0; ; n++ {
		if c := fmt.Sprintf("%06d", (n*7919)%1000000); !near[c] {
			return c
		}
	}
}

// djHexSecret is a base32 secret (as totpadm prints it) in hex (as
// django-otp stores it).
func djHexSecret(t *testing.T, secret string) string {
	t.Helper()
	s := strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		t.Fatalf("secret %q is not base32: %v", secret, err)
	}
	return hex.EncodeToString(raw)
}

func djStep(at time.Time) int64 { return at.Unix() / 30 }

// `migrate` creates totpadm's audit log and version table, nothing else;
// the default store is totpadm's own, which a Django database does not
// have, and no other command creates a table.
func TestDjangoMigrateCreatesOnlyTotpadmTables(t *testing.T) {
	for _, b := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(b, func(t *testing.T) {
			p := djSetup(t, b, false)
			tables, data := p.Tables(t), p.DataDump(t)

			for _, args := range [][]string{
				{"status"},
				{"verify", "alice", "123456"},
				{"enroll", "--no-confirm", "alice"},
				{"migrate", "--dry-run"},
			} {
				r := djRun(t, p, args...)
				if args[0] != "migrate" && r.Code == 0 {
					t.Errorf("%v before migrate: exit 0, want an error saying to run migrate", args)
				}
				if args[0] == "migrate" && r.Code != 0 {
					t.Errorf("migrate --dry-run: exit %d: %s", r.Code, r.Stderr)
				}
				if got := p.Tables(t); !slices.Equal(got, tables) {
					t.Errorf("%v created tables: %v, had %v", args, got, tables)
				}
				if p.DataDump(t) != data {
					t.Errorf("%v changed the database", args)
				}
			}
			// The default store is totpadm's: it finds none of its tables
			// (nor a users table) here and creates none either.
			r := testutil.Run(t, testutil.Options{}, "--db", p.DB, "--actor", "tester", "status")
			if r.Code == 0 || !slices.Equal(p.Tables(t), tables) {
				t.Errorf("status with the default store: exit %d, tables %v", r.Code, p.Tables(t))
			}

			djOK(t, p, "migrate")
			after := p.Tables(t)
			var added []string
			for _, name := range after {
				if !slices.Contains(tables, name) {
					added = append(added, name)
				}
			}
			for _, name := range tables {
				if !slices.Contains(after, name) {
					t.Errorf("migrate dropped %s", name)
				}
			}
			version := false
			for _, name := range added {
				if !strings.HasPrefix(name, "totp_") {
					t.Errorf("migrate created %s, not one of totpadm's (totp_*) tables", name)
				}
				version = version || strings.Contains(name, "schema_version")
				if strings.Contains(name, "credential") || strings.Contains(name, "backup") || strings.Contains(name, "temp") {
					t.Errorf("migrate created %s, a table of totpadm's own store", name)
				}
			}
			if !slices.Contains(added, "totp_audit_log") || !version || len(added) != 2 {
				t.Errorf("migrate created %v, want totp_audit_log and a schema version table", added)
			}
			if p.DataDump(t, added...) != data {
				t.Error("migrate changed Django's data")
			}
			djOK(t, p, "migrate")
			if got := p.Tables(t); !slices.Equal(got, after) {
				t.Errorf("a second migrate: tables %v, want %v", got, after)
			}
			djOK(t, p, "status")
		})
	}
}

// The store is chosen by --store, TOTPADM_STORE or the config file's
// store key; a value that is not a store is refused before anything is
// read or written: exit 2 as a flag, 5 from the environment or the file.
// No key is needed: django-otp's secrets are plain hex.
func TestDjangoStoreSelection(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		data := p.DataDump(t)
		base := []string{"--db", p.DB, "--actor", "tester", "-o", "json"}
		dir := t.TempDir()
		conf := func(store string) string {
			path := filepath.Join(dir, store+".toml")
			if err := os.WriteFile(path, []byte("store = \""+store+"\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
		for _, tc := range []struct {
			name string
			env  map[string]string
			args []string
			code int
		}{
			{"flag", nil, []string{"--store", "django-otp"}, 0},
			{"env", map[string]string{"TOTPADM_STORE": "django-otp"}, nil, 0},
			{"config", nil, []string{"--config", conf("django-otp")}, 0},
			{"flag over env", map[string]string{"TOTPADM_STORE": "totpadm"}, []string{"--store", "django-otp"}, 0},
			{"bad flag", nil, []string{"--store", "django_otp"}, 2},
			{"bad env", map[string]string{"TOTPADM_STORE": "nope"}, nil, 5},
			{"bad config", nil, []string{"--config", conf("nope")}, 5},
		} {
			r := testutil.Run(t, testutil.Options{Env: tc.env}, append(append(slices.Clone(base), tc.args...), "status", "alice")...)
			if r.Code != tc.code {
				t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, r.Code, tc.code, r.Stdout, r.Stderr)
			}
			if tc.code == 0 {
				if recs := djJSON(t, r.Stdout); len(recs) != 1 || recs[0]["state"] != "enabled" {
					t.Errorf("%s: status %v, want alice enabled", tc.name, recs)
				}
			} else if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); r.Stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "totpadm: ") || !strings.Contains(r.Stderr, "store") {
				t.Errorf("%s: want one totpadm: line about the store, got stdout %q stderr %q", tc.name, r.Stdout, r.Stderr)
			}
			if p.DataDump(t) != data {
				t.Errorf("%s changed the database", tc.name)
			}
		}
	})
}

// status reads django-otp's devices with django-otp's meanings.
func TestDjangoStatus(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		djCreateUsers(t, p, "dave", "erin", "frank", "gina")
		p.Batch(t,
			// alice: a confirmed phone and three backup tokens.
			djangotest.CreateTOTPDeviceOp("alice", "phone", true),
			djangotest.CreateStaticDeviceOp("alice", []string{"ka7rt3xm", "q2wz5p4n", "m4hs6ydq"}),
			// bob: an unconfirmed device only.
			djangotest.CreateTOTPDeviceOp("bob", "phone", false),
			// carol: nothing. dave: throttled after 6 failures (32 s).
			djangotest.CreateTOTPDeviceOp("dave", "phone", true),
			djangotest.SetThrottleOp("dave", 6, 1),
			// erin: 2 failures long ago: the 2 s back-off is over.
			djangotest.CreateTOTPDeviceOp("erin", "phone", true),
			djangotest.SetThrottleOp("erin", 2, 60),
			// frank: backup tokens without any TOTP device.
			djangotest.CreateStaticDeviceOp("frank", []string{"ab3de5gh", "zz2yy3xx"}),
			// gina: an unconfirmed and a confirmed device.
			djangotest.CreateTOTPDeviceOp("gina", "old", false),
			djangotest.CreateTOTPDeviceOp("gina", "new", true),
		)
		data := p.DataDump(t)
		st := djStatus(t, p)
		want := map[string]struct {
			state          string
			left, failures int
			devices        int
			locked         bool
		}{
			"alice": {"enabled", 3, 0, 2, false},
			"bob":   {"pending", 0, 0, 1, false},
			"carol": {"disabled", 0, 0, 0, false},
			"dave":  {"locked", 0, 6, 1, true},
			"erin":  {"enabled", 0, 2, 1, false},
			"frank": {"disabled", 2, 0, 1, false},
			"gina":  {"enabled", 0, 0, 2, false},
		}
		if len(st) != len(want) {
			t.Errorf("status lists %d users, want %d: %v", len(st), len(want), st)
		}
		for login, w := range want {
			got := st[login]
			if got == nil {
				t.Errorf("status does not list %s", login)
				continue
			}
			if got["state"] != w.state || got["backup_codes_left"] != float64(w.left) || got["failures"] != float64(w.failures) || got["devices"] != float64(w.devices) {
				t.Errorf("%s: %v, want state %s, backup_codes_left %d, failures %d, devices %d", login, got, w.state, w.left, w.failures, w.devices)
			}
			if (got["locked_until"] != nil) != w.locked {
				t.Errorf("%s: locked_until %v, want locked %v", login, got["locked_until"], w.locked)
			}
		}
		// dave's lock ends when django-otp's does: 2^(6-1) s after the
		// last failure.
		d := djDevice(t, p, "dave", "totp")
		failed, err := time.Parse(time.RFC3339Nano, *d.ThrottlingFailureTimestamp)
		if err != nil {
			t.Fatal(err)
		}
		until, err := time.Parse(time.RFC3339Nano, fmt.Sprint(st["dave"]["locked_until"]))
		if err != nil {
			t.Fatalf("dave's locked_until %v: %v", st["dave"]["locked_until"], err)
		}
		if diff := until.Sub(failed.Add(32 * time.Second)); diff < -time.Second || diff > time.Second {
			t.Errorf("dave locked until %s, want %s (failure + 32 s)", until, failed.Add(32*time.Second))
		}

		// Named users, --state, and the table's words.
		if got := djStatus(t, p, "bob", "dave"); len(got) != 2 || got["bob"]["state"] != "pending" || got["dave"]["state"] != "locked" {
			t.Errorf("status bob dave: %v", got)
		}
		r := djOK(t, p, "-o", "json", "status", "--state", "locked")
		if recs := djJSON(t, r.Stdout); len(recs) != 1 || recs[0]["login"] != "dave" {
			t.Errorf("status --state locked: %v", recs)
		}
		r = djOK(t, p, "status", "carol")
		if !strings.Contains(r.Stdout, "not-enrolled") || !strings.Contains(r.Stdout, "DEVICES") {
			t.Errorf("status carol (table): want not-enrolled and a devices column:\n%s", r.Stdout)
		}
		r = djOK(t, p, "-o", "csv", "status", "alice")
		if lines := strings.Split(strings.TrimSpace(r.Stdout), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "devices") || !strings.Contains(lines[1], "enabled") {
			t.Errorf("status -o csv alice:\n%s", r.Stdout)
		}
		if p.DataDump(t) != data {
			t.Error("status changed the database")
		}
	})
}

// verify checks a TOTP code as TOTPDevice.verify_token does and shares
// its state with Django: replays, drift and throttling.
func TestDjangoVerifyTOTP(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		key := p.CreateTOTPDevice(t, "alice", "phone", true)
		now := djangotest.FreshStep(10 * time.Second)
		step := djStep(now)
		c0 := djangotest.Code(t, key, now)
		c1 := djangotest.Code(t, key, now.Add(30*time.Second))
		c2 := djangotest.Code(t, key, now.Add(60*time.Second))
		c3 := djangotest.Code(t, key, now.Add(90*time.Second))
		wrong := djWrongCode(t, key, now)
		check := func(what string, lastT int64, drift, failures int) {
			t.Helper()
			d := djDevice(t, p, "alice", "totp")
			if d.LastT != lastT || d.Drift != drift || d.ThrottlingFailureCount != failures || (failures == 0) != (d.ThrottlingFailureTimestamp == nil) {
				t.Errorf("%s: device %+v, want last_t %d, drift %d, %d failures", what, d, lastT, drift, failures)
			}
		}

		// A wrong code: refused and counted, as django-otp counts it. After
		// five failures long ago (their back-off over) it is the sixth,
		// which throttles for 2^5 = 32 s.
		p.SetThrottle(t, "alice", 5, 3600)
		if r := djRun(t, p, "verify", "alice", wrong); r.Code != 1 || !strings.Contains(r.Stderr, "wrong code") {
			t.Errorf("wrong code: exit %d, %q", r.Code, r.Stderr)
		}
		check("after a wrong code", -1, 0, 6)
		// During the back-off even the right code is refused, uncounted.
		if r := djRun(t, p, "verify", "alice", c0); r.Code != 1 || !strings.Contains(strings.ToLower(r.Stderr), "locked") {
			t.Errorf("right code while throttled: exit %d, %q, want 1 and locked", r.Code, r.Stderr)
		}
		check("after a code while throttled", -1, 0, 6)
		p.SetThrottle(t, "alice", 0, 0)

		// The right code: accepted, its step recorded, throttling reset.
		if r := djRun(t, p, "verify", "alice", c0); r.Code != 0 {
			t.Fatalf("right code: exit %d, %q", r.Code, r.Stderr)
		}
		check("after the right code", step, 0, 0)
		// Replayed: refused by totpadm (counted: django-otp counts it)...
		if r := djRun(t, p, "verify", "alice", c0); r.Code != 1 || !strings.Contains(r.Stderr, "already used") {
			t.Errorf("replay: exit %d, %q", r.Code, r.Stderr)
		}
		check("after a replay", step, 0, 1)
		p.SetThrottle(t, "alice", 0, 0)
		// ...and by Django.
		if p.VerifyTOTP(t, "alice", c0) {
			t.Error("Django accepted a code totpadm had accepted")
		}
		p.SetThrottle(t, "alice", 0, 0)

		// Django accepts the next step's code and remembers the drift (+1);
		// totpadm then refuses that code.
		if !p.VerifyTOTP(t, "alice", c1) {
			t.Fatal("Django refused the next step's code")
		}
		check("after Django accepted the next code", step+1, 1, 0)
		if r := djRun(t, p, "verify", "alice", c1); r.Code != 1 {
			t.Errorf("a code Django accepted: exit %d, want 1", r.Code)
		}
		p.SetThrottle(t, "alice", 0, 0)
		// The tolerance is around the drift: two steps ahead of the clock
		// is within ±1 of clock + 1. The new drift is 2.
		if r := djRun(t, p, "verify", "alice", c2); r.Code != 0 {
			t.Fatalf("code two steps ahead with drift 1: exit %d, %q", r.Code, r.Stderr)
		}
		check("after the code two steps ahead", step+2, 2, 0)
		// Django agrees with the state totpadm left: c2 is used, c3 is next.
		if p.VerifyTOTP(t, "alice", c2) {
			t.Error("Django accepted the code totpadm had just accepted")
		}
		p.SetThrottle(t, "alice", 0, 0)
		if !p.VerifyTOTP(t, "alice", c3) {
			t.Error("Django refused the code after the one totpadm accepted")
		}
		check("after Django accepted c3", step+3, 3, 0)

		// A malformed code is a usage error; it changes nothing.
		data := p.DataDump(t, "totp_audit_log")
		if r := djRun(t, p, "verify", "alice", "12x456"); r.Code == 0 {
			t.Errorf("verify 12x456: exit 0")
		}
		if p.DataDump(t, "totp_audit_log") != data {
			t.Error("a malformed code changed the device")
		}
	})
}

// A device Django configured otherwise (8 digits, 60 s steps, a t0, a
// wider tolerance) is checked with its own parameters, as
// TOTPDevice.verify_token does.
func TestDjangoVerifyDeviceParameters(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		key := p.CreateTOTPDevice(t, "alice", "token", true)
		const step, digits, t0, tolerance = 60, 8, 1000, 2
		p.SQL(t, "UPDATE otp_totp_totpdevice SET step = %s, digits = %s, t0 = %s, tolerance = %s", step, digits, t0, tolerance)
		now := time.Now()
		if left := step - (now.Unix()-t0)%step; left < 5 {
			time.Sleep(time.Duration(left) * time.Second)
			now = time.Now()
		}
		tStep := (now.Unix() - t0) / step
		at := func(steps int) time.Time { return now.Add(time.Duration(steps*step) * time.Second) }

		// Two steps behind is within the tolerance of 2.
		if r := djRun(t, p, "verify", "alice", djangotest.CodeWith(t, key, at(-2), step, digits, t0)); r.Code != 0 {
			t.Fatalf("8-digit code two 60 s steps old: exit %d, %q", r.Code, r.Stderr)
		}
		if d := djDevice(t, p, "alice", "totp"); d.LastT != tStep-2 || d.Drift != -2 {
			t.Errorf("after a code two steps old: %+v, want last_t %d, drift -2", d, tStep-2)
		}
		// Two steps ahead of the clock is four past the drift (-2): out of
		// the window.
		if r := djRun(t, p, "verify", "alice", djangotest.CodeWith(t, key, at(2), step, digits, t0)); r.Code != 1 {
			t.Errorf("code 4 steps past the drift: exit %d, want 1", r.Code)
		}
		p.SetThrottle(t, "alice", 0, 0)
		// The 30 s, 6-digit code of the same key is not this device's code.
		if r := djRun(t, p, "verify", "alice", djangotest.Code(t, key, now)); r.Code != 1 {
			t.Errorf("a default-parameter code: exit %d, want 1", r.Code)
		}
		p.SetThrottle(t, "alice", 0, 0)
		// Django agrees with the state totpadm left.
		if !p.VerifyTOTP(t, "alice", djangotest.CodeWith(t, key, at(0), step, digits, t0)) {
			t.Error("Django refused the current 8-digit code")
		}
		if d := djDevice(t, p, "alice", "totp"); d.LastT != tStep || d.Drift != 0 {
			t.Errorf("after Django's accept: %+v, want last_t %d, drift 0", d, tStep)
		}
	})
}

// The application's django-otp settings, given to totpadm, make it apply
// the same rules as Django with those settings: the throttle factors
// (seconds of the first back-off; 0 = off) and OTP_TOTP_SYNC.
func TestDjangoSettings(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.Settings(t, "OTP_TOTP_THROTTLE_FACTOR = 10", "OTP_STATIC_THROTTLE_FACTOR = 0", "OTP_TOTP_SYNC = False")
		set := []string{"--django-totp-throttle-factor", "10", "--django-static-throttle-factor", "0", "--django-totp-sync=false"}
		key := p.CreateTOTPDevice(t, "alice", "phone", true)
		p.CreateStaticDevice(t, "alice", []string{"ka7rt3xm", "q2wz5p4n"})

		// Two failures 15 s ago: over for the default factor (2 s), not
		// for 10 (20 s), in Django as in totpadm.
		p.SetThrottle(t, "alice", 2, 15)
		if st := djStatus(t, p, "alice"); st["alice"]["state"] != "enabled" {
			t.Errorf("factor 1: %v, want enabled (the 2 s back-off is over)", st["alice"])
		}
		st := djStatus(t, p, append(set, "alice")...)
		if st["alice"]["state"] != "locked" {
			t.Errorf("factor 10: %v, want locked for 20 s", st["alice"])
		}
		allowed := p.VerifyIsAllowed(t, "alice")
		if allowed[0].Kind != "totp" || allowed[0].Allowed || allowed[1].Kind != "static" || !allowed[1].Allowed {
			t.Fatalf("Django with factors 10 and 0: %+v, want the TOTP device throttled, the static one not", allowed)
		}
		d := djDevice(t, p, "alice", "totp")
		failed, _ := time.Parse(time.RFC3339Nano, *d.ThrottlingFailureTimestamp)
		until, err := time.Parse(time.RFC3339Nano, fmt.Sprint(st["alice"]["locked_until"]))
		if diff := until.Sub(failed.Add(20 * time.Second)); err != nil || diff < -time.Second || diff > time.Second {
			t.Errorf("locked until %v (%v), want the failure + 20 s = %s", st["alice"]["locked_until"], err, failed.Add(20*time.Second))
		}
		// Static throttling off: a backup code works during the TOTP
		// back-off, as it does in Django.
		if r := djRun(t, p, append(set, "verify", "alice", "ka7rt3xm")...); r.Code != 0 {
			t.Errorf("backup code with static throttling off: exit %d %q", r.Code, r.Stderr)
		}
		if !p.VerifyStatic(t, "alice", "q2wz5p4n") {
			t.Error("Django refused a backup code with static throttling off")
		}
		djOK(t, p, append(set, "unlock", "alice")...)

		// No sync: the next step's code is accepted, the drift stays 0.
		now := time.Now()
		if r := djRun(t, p, append(set, "verify", "alice", djangotest.Code(t, key, now.Add(30*time.Second)))...); r.Code != 0 {
			t.Fatalf("next step's code: exit %d %q", r.Code, r.Stderr)
		}
		if d := djDevice(t, p, "alice", "totp"); d.Drift != 0 || d.LastT <= djStep(now) {
			t.Errorf("with OTP_TOTP_SYNC off: %+v, want drift 0 and last_t past now", d)
		}
	})
}

// Backup codes are the tokens of static devices: consumed by deleting the
// row, the same token once whoever checks it.
func TestDjangoVerifyStatic(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		p.CreateStaticDevice(t, "alice", []string{"ka7rt3xm", "q2wz5p4n", "m4hs6ydq"})

		r := djRun(t, p, "-o", "json", "verify", "alice", "ka7rt3xm")
		if r.Code != 0 {
			t.Fatalf("static token: exit %d, %q", r.Code, r.Stderr)
		}
		if recs := djJSON(t, r.Stdout); len(recs) != 1 || recs[0]["backup_codes_left"] != float64(2) {
			t.Errorf("verify -o json: %v, want backup_codes_left 2", recs)
		}
		if d := djDevice(t, p, "alice", "static"); !slices.Equal(d.Tokens, []string{"m4hs6ydq", "q2wz5p4n"}) {
			t.Errorf("tokens after one use: %v", d.Tokens)
		}
		if p.VerifyStatic(t, "alice", "ka7rt3xm") {
			t.Error("Django accepted a token totpadm had consumed")
		}
		p.SetThrottle(t, "alice", 0, 0)
		if !p.VerifyStatic(t, "alice", "q2wz5p4n") {
			t.Fatal("Django refused a token")
		}
		if r := djRun(t, p, "verify", "alice", "q2wz5p4n"); r.Code != 1 {
			t.Errorf("a token Django consumed: exit %d, want 1", r.Code)
		}
		p.SetThrottle(t, "alice", 0, 0)

		// A wrong token is a failure of the static device.
		if r := djRun(t, p, "verify", "alice", "zzzzzzzz"); r.Code != 1 {
			t.Errorf("wrong token: exit %d, want 1", r.Code)
		}
		if d := djDevice(t, p, "alice", "static"); d.ThrottlingFailureCount != 1 || !slices.Equal(d.Tokens, []string{"m4hs6ydq"}) {
			t.Errorf("static device after a wrong token: %+v", d)
		}
		p.SetThrottle(t, "alice", 0, 0)
		if st := djStatus(t, p, "alice"); st["alice"]["backup_codes_left"] != float64(1) {
			t.Errorf("status: %v, want 1 backup code left", st["alice"])
		}
	})
}

// An unconfirmed device is confirmed by its first good code; a user
// without devices is not enrolled (exit 3), and so is an unknown one.
func TestDjangoVerifyConfirmsAndNotEnrolled(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		key := p.CreateTOTPDevice(t, "bob", "phone", false)
		if st := djStatus(t, p, "bob"); st["bob"]["state"] != "pending" {
			t.Fatalf("bob %v, want pending", st["bob"])
		}
		now := time.Now()
		if r := djRun(t, p, "verify", "bob", djangotest.Code(t, key, now)); r.Code != 0 {
			t.Fatalf("bob's first code: exit %d, %q", r.Code, r.Stderr)
		}
		if d := djDevice(t, p, "bob", "totp"); !d.Confirmed || d.LastT != djStep(now) {
			t.Errorf("bob's device after the first code: %+v, want confirmed", d)
		}
		if st := djStatus(t, p, "bob"); st["bob"]["state"] != "enabled" {
			t.Errorf("bob %v, want enabled", st["bob"])
		}
		// Django's login (match_token: confirmed devices only) now takes
		// bob's next code.
		if !p.MatchToken(t, "bob", djangotest.Code(t, key, now.Add(30*time.Second))) {
			t.Error("Django's match_token refused bob's next code")
		}

		data := p.DataDump(t, "totp_audit_log")
		for _, who := range []string{"carol", "nobody"} {
			if r := djRun(t, p, "verify", who, "123456"); r.Code != 3 {
				t.Errorf("verify %s: exit %d, want 3; %q", who, r.Code, r.Stderr)
			}
		}
		if p.DataDump(t, "totp_audit_log") != data {
			t.Error("verifying users without devices changed django-otp's tables")
		}
	})
}

// djWithout drops totp_audit_log's section from a DataDump.
func djWithout(dump string) string {
	var out []string
	skip := false
	for _, line := range strings.Split(dump, "\n") {
		if strings.HasPrefix(line, "== ") {
			skip = strings.HasPrefix(line, "== totp_audit_log ")
		}
		if !skip {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// django-otp's throttling is one state for both: a device Django
// throttled is throttled for totpadm and the other way round; unlock
// ends it for Django too.
func TestDjangoThrottleShared(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		key := p.CreateTOTPDevice(t, "alice", "phone", true)
		now := time.Now()
		code, wrong := djangotest.Code(t, key, now), djWrongCode(t, key, now)

		// Five failures an hour ago: no back-off left, but the sixth
		// failure throttles for 2^5 = 32 s.
		p.SetThrottle(t, "alice", 5, 3600)
		if p.VerifyTOTP(t, "alice", wrong) {
			t.Fatal("Django accepted a wrong code")
		}
		r := djRun(t, p, "verify", "alice", code)
		if r.Code != 1 || !strings.Contains(strings.ToLower(r.Stderr), "locked") {
			t.Errorf("right code after Django throttled: exit %d, %q, want 1 and locked", r.Code, r.Stderr)
		}
		if d := djDevice(t, p, "alice", "totp"); d.ThrottlingFailureCount != 6 || d.LastT != -1 {
			t.Errorf("device %+v: want 6 failures, nothing accepted", d)
		}
		if st := djStatus(t, p, "alice"); st["alice"]["state"] != "locked" || st["alice"]["failures"] != float64(6) {
			t.Errorf("status %v, want locked with 6 failures", st["alice"])
		}
		djOK(t, p, "unlock", "alice")
		for _, a := range p.VerifyIsAllowed(t, "alice") {
			if !a.Allowed {
				t.Errorf("after unlock Django still throttles %+v", a)
			}
		}

		// The other way: totpadm's failure throttles Django.
		p.SetThrottle(t, "alice", 5, 3600)
		if r := djRun(t, p, "verify", "alice", wrong); r.Code != 1 {
			t.Fatalf("wrong code: exit %d", r.Code)
		}
		if a := p.VerifyIsAllowed(t, "alice"); len(a) != 1 || a[0].Allowed {
			t.Errorf("after totpadm's sixth failure Django allows %+v", a)
		}
		if p.VerifyTOTP(t, "alice", code) {
			t.Error("Django accepted a code while totpadm's failure throttled the device")
		}
		if d := djDevice(t, p, "alice", "totp"); d.ThrottlingFailureCount != 6 {
			t.Errorf("device %+v: want 6 failures", d)
		}
		djOK(t, p, "unlock", "alice")
		if !p.VerifyTOTP(t, "alice", code) {
			t.Error("Django refused the right code after unlock")
		}
	})
}

// unlock resets throttling on every device of the user.
func TestDjangoUnlock(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		p.CreateTOTPDevice(t, "alice", "tablet", false)
		p.CreateStaticDevice(t, "alice", []string{"ka7rt3xm"})
		p.CreateTOTPDevice(t, "bob", "phone", true)
		p.SetThrottle(t, "alice", 8, 0)
		p.SetThrottle(t, "bob", 8, 0)
		for _, a := range p.VerifyIsAllowed(t, "alice") {
			if a.Allowed {
				t.Fatalf("not throttled: %+v", a)
			}
		}
		djOK(t, p, "unlock", "alice")
		for _, d := range p.Devices(t, "alice") {
			if d.ThrottlingFailureCount != 0 || d.ThrottlingFailureTimestamp != nil {
				t.Errorf("after unlock: %+v", d)
			}
		}
		for _, a := range p.VerifyIsAllowed(t, "alice") {
			if !a.Allowed {
				t.Errorf("after unlock Django throttles %+v", a)
			}
		}
		if a := p.VerifyIsAllowed(t, "bob"); a[0].Allowed {
			t.Error("unlock alice unlocked bob")
		}
		if st := djStatus(t, p, "alice", "bob"); st["alice"]["state"] != "enabled" || st["bob"]["state"] != "locked" {
			t.Errorf("status after unlock: %v", st)
		}
	})
}

// backup-codes replaces the tokens of the user's static device; Django
// accepts each new code once and none of the old ones.
func TestDjangoBackupCodes(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateStaticDevice(t, "carol", []string{"ka7rt3xm"})
		data := p.DataDump(t, "totp_audit_log")
		if r := djRun(t, p, "backup-codes", "alice"); r.Code != 3 {
			t.Errorf("backup-codes for a user without devices: exit %d, want 3", r.Code)
		}
		if r := djRun(t, p, "backup-codes", "carol"); r.Code != 3 {
			t.Errorf("backup-codes for a user without a TOTP device: exit %d, want 3", r.Code)
		}
		if p.DataDump(t, "totp_audit_log") != data {
			t.Error("a refused backup-codes changed django-otp's tables")
		}

		old := []string{"ka7rt3xm", "q2wz5p4n"}
		p.CreateTOTPDevice(t, "alice", "phone", true)
		p.CreateStaticDevice(t, "alice", old)
		p.CreateTOTPDevice(t, "bob", "phone", true)

		for _, login := range []string{"alice", "bob"} {
			r := djOK(t, p, "-o", "json", "backup-codes", login)
			recs := djJSON(t, r.Stdout)
			if len(recs) != 1 {
				t.Fatalf("backup-codes %s: %v", login, recs)
			}
			var codes []string
			for _, c := range recs[0]["backup_codes"].([]any) {
				codes = append(codes, fmt.Sprint(c))
			}
			if len(codes) != 10 {
				t.Fatalf("%s: %d codes, want 10: %v", login, len(codes), codes)
			}
			d := djDevice(t, p, login, "static")
			if len(d.Tokens) != 10 {
				t.Errorf("%s's static device holds %v, want the 10 new tokens", login, d.Tokens)
			}
			if login == "bob" && d.Name != "backup" {
				t.Errorf("bob's new static device is named %q, want backup", d.Name)
			}
			// Each printed code, as printed, once.
			var ops []djangotest.Op
			for _, c := range codes {
				ops = append(ops, djangotest.VerifyStaticOp(login, c))
			}
			// Refusals, each on an unthrottled device so that only the
			// token can be the reason.
			var refused []string
			if login == "alice" {
				refused = append(refused, old...)
			}
			refused = append(refused, codes[0], codes[9])
			for _, c := range refused {
				ops = append(ops, djangotest.SetThrottleOp(login, 0, 0), djangotest.VerifyStaticOp(login, c))
			}
			res := p.Batch(t, ops...)
			for i, c := range codes {
				var v djangotest.Verdict
				djangotest.Decode(t, ops[i], res[i], &v)
				if !v.Accepted {
					t.Errorf("%s: Django refused printed code %q", login, c)
				}
			}
			for i, c := range refused {
				var v djangotest.Verdict
				j := len(codes) + 2*i + 1
				djangotest.Decode(t, ops[j], res[j], &v)
				if v.Accepted {
					t.Errorf("%s: Django accepted %q (an old token or a used code)", login, c)
				}
			}
			p.SetThrottle(t, login, 0, 0)
		}

		// The plain output: one code a line, exactly as django-otp will
		// compare it (StaticDevice.verify_token takes the token as typed);
		// totpadm accepts it too.
		r := djOK(t, p, "backup-codes", "alice")
		tokens := djDevice(t, p, "alice", "static").Tokens
		var typed []string
		for _, line := range strings.Split(r.Stdout, "\n") {
			if f := strings.TrimSpace(line); slices.Contains(tokens, f) {
				typed = append(typed, f)
			}
		}
		if len(typed) != 10 {
			t.Fatalf("backup-codes alice printed %d of the 10 stored tokens %v, one a line:\n%s", len(typed), tokens, r.Stdout)
		}
		if r := djRun(t, p, "verify", "alice", typed[3]); r.Code != 0 {
			t.Errorf("verify with a printed code: exit %d %q", r.Code, r.Stderr)
		}
		if !p.VerifyStatic(t, "alice", typed[4]) {
			t.Errorf("Django refused printed code %q", typed[4])
		}
		if d := djDevice(t, p, "alice", "static"); len(d.Tokens) != 8 {
			t.Errorf("%d tokens left, want 8", len(d.Tokens))
		}
	})
}

// enroll creates a TOTP device Django can use, confirms it with a code,
// and refuses a second one without --force.
func TestDjangoEnroll(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		e := djEnroll(t, p, "alice")
		d := djDevice(t, p, "alice", "totp")
		if d.Name != "default" || d.Confirmed || d.Step != 30 || d.Digits != 6 || d.T0 != 0 || d.Tolerance != 1 || d.LastT != -1 || d.Drift != 0 || d.ThrottlingFailureCount != 0 {
			t.Errorf("enrolled device %+v, want default, unconfirmed, 30 s, 6 digits, t0 0, tolerance 1, last_t -1", d)
		}
		if d.Key != djHexSecret(t, e.Secret) {
			t.Errorf("device key %s, want the printed secret %s in hex (%s)", d.Key, e.Secret, djHexSecret(t, e.Secret))
		}
		if len(d.Key) != 40 {
			t.Errorf("key %s: want 160 bits", d.Key)
		}
		u, err := url.Parse(e.URI)
		if err != nil || u.Scheme != "otpauth" || djHexSecret(t, u.Query().Get("secret")) != d.Key {
			t.Errorf("URI %q: want the device's key as its secret (%v)", e.URI, err)
		}
		if st := djStatus(t, p, "alice"); st["alice"]["state"] != "pending" || st["alice"]["devices"] != float64(2) || st["alice"]["backup_codes_left"] != float64(10) {
			t.Errorf("status after enroll --no-confirm: %v, want pending, 2 devices, 10 codes", st["alice"])
		}
		// The printed backup codes are django-otp static tokens.
		if len(e.BackupCodes) != 10 {
			t.Fatalf("enroll printed %d backup codes", len(e.BackupCodes))
		}
		var ops []djangotest.Op
		for _, c := range e.BackupCodes {
			ops = append(ops, djangotest.VerifyStaticOp("alice", c))
		}
		for i, raw := range p.Batch(t, ops...) {
			var v djangotest.Verdict
			if djangotest.Decode(t, ops[i], raw, &v); !v.Accepted {
				t.Errorf("Django refused printed backup code %q", e.BackupCodes[i])
			}
		}

		// enroll --code confirms; Django then takes the next code.
		now := time.Now()
		if r := djRun(t, p, "enroll", "--code", djWrongCode(t, d.Key, now), "alice"); r.Code != 1 {
			t.Errorf("enroll --code with a wrong code: exit %d, want 1", r.Code)
		}
		p.SetThrottle(t, "alice", 0, 0)
		djOK(t, p, "enroll", "--code", djangotest.Code(t, d.Key, now), "alice")
		if d := djDevice(t, p, "alice", "totp"); !d.Confirmed || d.LastT != djStep(now) {
			t.Errorf("after enroll --code: %+v, want confirmed, last_t %d", d, djStep(now))
		}
		if !p.MatchToken(t, "alice", djangotest.Code(t, d.Key, now.Add(30*time.Second))) {
			t.Error("Django's match_token refused the next code of a device totpadm enrolled")
		}

		// A second enrollment conflicts, also for a device Django made.
		bobKey := p.CreateTOTPDevice(t, "bob", "phone", true)
		data := djWithout(p.DataDump(t))
		for _, login := range []string{"alice", "bob"} {
			if r := djRun(t, p, "enroll", "--no-confirm", login); r.Code != 4 {
				t.Errorf("enroll %s again: exit %d, want 4; %q", login, r.Code, r.Stderr)
			}
		}
		if djWithout(p.DataDump(t)) != data {
			t.Error("a refused enrollment changed django-otp's tables")
		}
		// --force replaces every device of the user.
		p.CreateStaticDevice(t, "bob", []string{"ka7rt3xm"})
		p.CreateTOTPDevice(t, "bob", "tablet", false)
		f := djEnroll(t, p, "bob", "--force")
		devs := p.Devices(t, "bob")
		if len(devs) != 2 || devs[0].Kind != "totp" || devs[0].Key != djHexSecret(t, f.Secret) || devs[0].Key == bobKey || devs[1].Kind != "static" || len(devs[1].Tokens) != 10 {
			t.Errorf("bob's devices after enroll --force: %+v", devs)
		}
		p.SetThrottle(t, "bob", 0, 0)
		now = time.Now()
		if p.VerifyTOTP(t, "bob", djangotest.Code(t, bobKey, now)) {
			t.Error("Django accepted a code of bob's replaced device")
		}
		p.SetThrottle(t, "bob", 0, 0)
		if p.VerifyStatic(t, "bob", "ka7rt3xm") {
			t.Error("bob's old static token works after enroll --force")
		}
		p.SetThrottle(t, "bob", 0, 0)
		if !p.VerifyStatic(t, "bob", f.BackupCodes[9]) {
			t.Errorf("Django refused bob's new backup code %q", f.BackupCodes[9])
		}
		if r := djRun(t, p, "verify", "bob", djangotest.Code(t, djHexSecret(t, f.Secret), now)); r.Code != 0 {
			t.Errorf("bob's new code: exit %d %q", r.Code, r.Stderr)
		}
		if st := djStatus(t, p, "bob"); st["bob"]["state"] != "enabled" || st["bob"]["devices"] != float64(2) {
			t.Errorf("bob after enroll --force and a code: %v", st["bob"])
		}
	})
}

// djEnroll is `enroll -o json --no-confirm` on the Django project.
func djEnroll(t *testing.T, p *djangotest.Project, login string, extra ...string) testutil.Enrolled {
	t.Helper()
	r := djOK(t, p, append(append([]string{"-o", "json", "enroll", "--no-confirm"}, extra...), login)...)
	var e testutil.Enrolled
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &e); err != nil || e.Secret == "" {
		t.Fatalf("enroll %s: parse %q: %v", login, r.Stdout, err)
	}
	return e
}

// disable deletes all the user's devices and tokens.
func TestDjangoDisable(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		p.CreateTOTPDevice(t, "alice", "tablet", false)
		p.CreateStaticDevice(t, "alice", []string{"ka7rt3xm", "q2wz5p4n"})
		p.CreateTOTPDevice(t, "bob", "phone", true)

		data := p.DataDump(t)
		if r := djRun(t, p, "disable", "--yes", "alice"); r.Code != 2 {
			t.Errorf("disable without --reason: exit %d, want 2", r.Code)
		}
		if r := djRun(t, p, "disable", "--dry-run", "--reason", "ticket 1", "alice"); r.Code != 0 {
			t.Errorf("disable --dry-run: exit %d %q", r.Code, r.Stderr)
		}
		if djWithout(p.DataDump(t)) != djWithout(data) {
			t.Error("a refused or dry-run disable changed django-otp's tables")
		}

		djOK(t, p, "disable", "--yes", "--reason", "lost phone, ticket 4521", "alice")
		if devs := p.Devices(t, "alice"); len(devs) != 0 {
			t.Errorf("alice's devices after disable: %+v", devs)
		}
		if n := p.SQL(t, "SELECT COUNT(*) FROM otp_static_statictoken"); n[0][0] != float64(0) {
			t.Errorf("%v static tokens left", n[0][0])
		}
		if len(p.Devices(t, "bob")) != 1 {
			t.Error("disable alice touched bob")
		}
		if st := djStatus(t, p, "alice"); st["alice"]["state"] != "disabled" || st["alice"]["devices"] != float64(0) {
			t.Errorf("status after disable: %v", st["alice"])
		}
		r := djOK(t, p, "disable", "--yes", "--reason", "again", "alice", "carol")
		if strings.Count(r.Stdout, "not enrolled") != 2 {
			t.Errorf("disable of users without devices: %q, want both not enrolled", r.Stdout)
		}
		rows := p.SQL(t, "SELECT action, reason FROM totp_audit_log WHERE action = 'disable' ORDER BY id")
		if len(rows) == 0 || rows[0][1] != "lost phone, ticket 4521" {
			t.Errorf("audit rows of disable: %v", rows)
		}
	})
}

// Bulk runs (--from-file) work per user on django-otp's tables too: the
// users that exist are done, the unknown one is reported, the exit says so.
func TestDjangoBulk(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		r := testutil.Run(t, testutil.Options{Stdin: "alice\nnobody\n# a comment\nbob\ncarol\n"}, p.Args("-o", "json", "enroll", "--no-confirm", "--from-file", "-")...)
		if r.Code != 3 {
			t.Errorf("bulk enroll with an unknown user: exit %d, want 3; %s", r.Code, r.Stderr)
		}
		recs := djJSON(t, r.Stdout)
		if len(recs) != 4 {
			t.Fatalf("bulk enroll reported %d users, want 4: %v", len(recs), recs)
		}
		now := time.Now()
		for _, rec := range recs {
			login := fmt.Sprint(rec["user"])
			if login == "nobody" {
				continue
			}
			d := djDevice(t, p, login, "totp")
			if d.Key != djHexSecret(t, fmt.Sprint(rec["secret"])) {
				t.Errorf("%s: device key %s is not the printed secret", login, d.Key)
			}
			if !p.VerifyTOTP(t, login, djangotest.Code(t, d.Key, now)) {
				t.Errorf("Django refused %s's code after bulk enroll", login)
			}
		}
		r = testutil.Run(t, testutil.Options{Stdin: "alice\nbob\ncarol\n"}, p.Args("disable", "--yes", "--reason", "bulk", "--from-file", "-")...)
		if r.Code != 0 {
			t.Errorf("bulk disable: exit %d %s", r.Code, r.Stderr)
		}
		for _, login := range []string{"alice", "bob", "carol"} {
			if devs := p.Devices(t, login); len(devs) != 0 {
				t.Errorf("%s after bulk disable: %+v", login, devs)
			}
		}
	})
}

// export prints django-otp devices as otpauth URIs; import makes devices
// of them that Django verifies.
func TestDjangoExportImport(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		key := p.CreateTOTPDevice(t, "alice", "phone", true)
		r := djOK(t, p, "-o", "json", "export", "--yes", "alice")
		recs := djJSON(t, r.Stdout)
		if len(recs) != 1 {
			t.Fatalf("export: %v", recs)
		}
		u, err := url.Parse(fmt.Sprint(recs[0]["uri"]))
		if err != nil || u.Scheme != "otpauth" || !strings.HasSuffix(u.Path, "alice") {
			t.Fatalf("exported URI %v: %v", recs[0]["uri"], err)
		}
		if got := djHexSecret(t, u.Query().Get("secret")); got != key {
			t.Errorf("exported secret is %s in hex, want the device key %s", got, key)
		}
		if n := p.SQL(t, "SELECT COUNT(*) FROM totp_audit_log WHERE action = 'export'"); n[0][0] != float64(1) {
			t.Errorf("%v export audit rows, want 1", n[0][0])
		}

		// Import bob from another system, and carol from alice's export.
		secret := "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
		file := filepath.Join(t.TempDir(), "uris.txt")
		carolURI := strings.Replace(u.String(), "alice", "carol", 1)
		content := "otpauth://totp/Authelia:bob?algorithm=SHA1&digits=6&issuer=Authelia&period=30&secret=" + secret + "\n" + carolURI + "\n"
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r = djOK(t, p, "-o", "json", "import", file)
		for _, rec := range djJSON(t, r.Stdout) {
			if rec["outcome"] != "imported" {
				t.Errorf("import: %v", rec)
			}
		}
		now := time.Now()
		for login, hexKey := range map[string]string{"bob": djHexSecret(t, secret), "carol": key} {
			d := djDevice(t, p, login, "totp")
			if d.Key != hexKey || !d.Confirmed {
				t.Errorf("%s's imported device %+v, want key %s, confirmed", login, d, hexKey)
			}
			if !p.MatchToken(t, login, djangotest.Code(t, hexKey, now)) {
				t.Errorf("Django refused %s's code after import", login)
			}
		}
		if r := djRun(t, p, "import", file); r.Code != 4 {
			t.Errorf("importing again: exit %d, want 4", r.Code)
		}
	})
}

// The audit log is totpadm's own table; --on-change gets each change.
func TestDjangoAuditAndHooks(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		events := filepath.Join(t.TempDir(), "events")
		hook := []string{"--on-change", "cat >> '" + events + "'"}
		e := djEnroll(t, p, "alice", hook...)
		now := time.Now()
		djOK(t, p, append(hook, "verify", "alice", djangotest.Code(t, djHexSecret(t, e.Secret), now))...)
		djOK(t, p, append(hook, "disable", "--yes", "--reason", "ticket 7", "alice")...)

		raw, _ := os.ReadFile(events)
		var actions []string
		for _, ev := range djJSON(t, string(raw)) {
			actions = append(actions, fmt.Sprint(ev["action"]))
			if ev["login"] != "alice" || ev["actor"] != "tester" {
				t.Errorf("event %v", ev)
			}
		}
		if !slices.Equal(actions, []string{"enroll", "confirm", "disable"}) {
			t.Errorf("hook events %v, want enroll, confirm, disable", actions)
		}
		for _, secret := range append([]string{e.Secret, djHexSecret(t, e.Secret)}, e.BackupCodes...) {
			if strings.Contains(string(raw), secret) || strings.Contains(strings.ToUpper(string(raw)), strings.ToUpper(secret)) {
				t.Errorf("the hook received a secret %q", secret)
			}
		}

		r := djOK(t, p, "-o", "json", "audit", "alice")
		var got []string
		for _, rec := range djJSON(t, r.Stdout) {
			got = append(got, fmt.Sprint(rec["action"]))
		}
		if len(got) < 3 || got[0] != "disable" || !slices.Contains(got, "enroll") || !slices.Contains(got, "verify") {
			t.Errorf("audit alice: %v, want disable first, enroll and verify", got)
		}
		if rows := p.SQL(t, "SELECT COUNT(*) FROM totp_audit_log WHERE user_login = 'alice'"); rows[0][0] != float64(len(got)) {
			t.Errorf("totp_audit_log holds %v rows for alice, audit printed %d", rows[0][0], len(got))
		}
		dump := p.DataDump(t)
		for _, secret := range append([]string{djHexSecret(t, e.Secret)}, e.BackupCodes[1:]...) {
			if strings.Contains(djAuditSection(dump), secret) {
				t.Errorf("the audit log holds a secret %q", secret)
			}
		}
	})
}

func djAuditSection(dump string) string {
	i := strings.Index(dump, "== totp_audit_log ")
	if i < 0 {
		return ""
	}
	rest := dump[i:]
	if j := strings.Index(rest[3:], "\n== "); j >= 0 {
		rest = rest[:j+3]
	}
	return rest
}

// rotate-key, temp-code and verify --diagnose have no meaning for
// django-otp: one line, exit 2, nothing written.
func TestDjangoCommandsThatDoNotApply(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		keyFile := filepath.Join(t.TempDir(), "new.key")
		if r := testutil.Run(t, testutil.Options{}, "keygen", "--out", keyFile); r.Code != 0 {
			t.Fatalf("keygen: %d %s", r.Code, r.Stderr)
		}
		data := p.DataDump(t)
		for _, args := range [][]string{
			{"rotate-key", "--new-key-file", keyFile},
			{"temp-code", "--reason", "ticket 3", "alice"},
			{"verify", "--diagnose", "alice", "123456"},
		} {
			r := djRun(t, p, args...)
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if r.Code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "totpadm: ") || !strings.Contains(lines[0], "django-otp") || r.Stdout != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and one line naming the django-otp store", args[0], r.Code, r.Stdout, r.Stderr)
			}
			if p.DataDump(t) != data {
				t.Errorf("%s changed the database", args[0])
			}
		}
	})
}

// doctor checks the django-otp tables and warns that their secrets are in
// plain text.
func TestDjangoDoctor(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		data := p.DataDump(t)
		r := djRun(t, p, "doctor")
		if r.Code != 0 {
			t.Fatalf("doctor: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		warned := false
		for _, line := range strings.Split(r.Stdout, "\n") {
			if strings.HasPrefix(line, "✗") {
				t.Errorf("doctor failed a check: %s", line)
			}
			l := strings.ToLower(line)
			warned = warned || strings.HasPrefix(line, "! ") && strings.Contains(l, "encrypt")
		}
		if !warned {
			t.Errorf("no ! line warning that django-otp's secrets are not encrypted:\n%s", r.Stdout)
		}
		if !strings.Contains(r.Stdout, "otp_totp_totpdevice") {
			t.Errorf("doctor does not mention django-otp's tables:\n%s", r.Stdout)
		}
		if p.DataDump(t) != data {
			t.Error("doctor changed the database")
		}

		// Without totpadm's tables doctor fails, saying to migrate.
		q := djSetup(t, p.Backend, false)
		r = djRun(t, q, "doctor")
		if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "migrate") {
			t.Errorf("doctor before migrate: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}

// Bad input changes nothing: an unknown user is exit 3, an ambiguous
// login exit 2 with the candidate ids.
func TestDjangoBadInput(t *testing.T) {
	djBackends(t, func(t *testing.T, p *djangotest.Project) {
		p.CreateTOTPDevice(t, "alice", "phone", true)
		p.CreateStaticDevice(t, "alice", []string{"ka7rt3xm"})
		p.Batch(t, djangotest.CreateUserOp("dora", "shared@example.com"), djangotest.CreateUserOp("dana", "shared@example.com"))
		ids := p.SQL(t, "SELECT id FROM auth_user WHERE email = 'shared@example.com' ORDER BY id")
		data := p.DataDump(t)
		for _, args := range [][]string{
			{"verify", "nobody", "123456"},
			{"enroll", "--no-confirm", "nobody"},
			{"backup-codes", "nobody"},
			{"disable", "--yes", "--reason", "x", "nobody"},
			{"unlock", "nobody"},
			{"export", "--yes", "nobody"},
		} {
			if r := djRun(t, p, args...); r.Code != 3 {
				t.Errorf("%v: exit %d, want 3; %q", args, r.Code, r.Stderr)
			}
		}
		byEmail := []string{"--user-login-column", "email"}
		for _, args := range [][]string{
			{"enroll", "--no-confirm", "shared@example.com"},
			{"verify", "shared@example.com", "123456"},
			{"backup-codes", "shared@example.com"},
			{"disable", "--yes", "--reason", "x", "shared@example.com"},
			{"status", "shared@example.com"},
		} {
			r := djRun(t, p, append(slices.Clone(byEmail), args...)...)
			if r.Code != 2 || !strings.Contains(r.Stderr, "id:") {
				t.Errorf("%v: exit %d, %q; want 2 listing the candidates", args, r.Code, r.Stderr)
			}
			for _, id := range ids {
				if !strings.Contains(r.Stderr, strconv.Itoa(int(id[0].(float64)))) {
					t.Errorf("%v: %q does not list candidate %v", args, r.Stderr, id[0])
				}
			}
		}
		// By email, alice is one user: mapped logins work.
		if st := djRun(t, p, append(slices.Clone(byEmail), "-o", "json", "status", "alice@example.com")...); st.Code != 0 || !strings.Contains(st.Stdout, `"enabled"`) {
			t.Errorf("status by email: exit %d %s %s", st.Code, st.Stdout, st.Stderr)
		}
		if djWithout(p.DataDump(t)) != djWithout(data) {
			t.Error("bad input changed django-otp's tables")
		}
	})
}
