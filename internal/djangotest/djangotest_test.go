package djangotest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/djangotest"
)

// The harness judges totpadm only if it agrees with django-otp itself: a
// device made by Django accepts oathtool's current code once and refuses
// the replay, static tokens are consumed, throttling is visible and
// settable, and the dumps see every change.
func TestHarnessAgreesWithDjango(t *testing.T) {
	djangotest.Backends(t, func(t *testing.T, p *djangotest.Project) {
		if id := p.CreateUser(t, "alice", "alice@example.com"); id <= 0 {
			t.Fatalf("CreateUser: id %d", id)
		}
		schema, data := p.SchemaDump(t), p.DataDump(t)
		for _, table := range []string{"auth_user", "otp_totp_totpdevice", "otp_static_statictoken", "django_migrations"} {
			if !strings.Contains(schema, table) {
				t.Errorf("schema dump lacks %s:\n%s", table, schema)
			}
		}
		key := p.CreateTOTPDevice(t, "alice", "phone", true)
		if len(key) != 40 {
			t.Fatalf("key %q: want 20 bytes in hex", key)
		}
		p.CreateStaticDevice(t, "alice", []string{"abcd1234", "efgh5678"})
		if p.SchemaDump(t) != schema {
			t.Error("creating devices changed the schema dump")
		}
		if p.DataDump(t) == data {
			t.Error("creating devices did not change the data dump")
		}

		now := time.Now()
		code := djangotest.Code(t, key, now)
		if !p.VerifyTOTP(t, "alice", code) {
			t.Fatalf("Django refused oathtool's current code %s", code)
		}
		if p.VerifyTOTP(t, "alice", code) {
			t.Fatal("Django accepted a replayed code")
		}
		devs := p.Devices(t, "alice")
		if len(devs) != 2 || devs[0].Kind != "totp" || devs[1].Kind != "static" {
			t.Fatalf("devices %+v", devs)
		}
		if d := devs[0]; d.LastT != now.Unix()/30 || d.Name != "phone" || !d.Confirmed || d.Key != key || d.Digits != 6 || d.Step != 30 {
			t.Errorf("TOTP device after one accept %+v, want last_t %d", d, now.Unix()/30)
		}
		if d := devs[0]; d.ThrottlingFailureCount != 1 || d.ThrottlingFailureTimestamp == nil {
			t.Errorf("the refused replay did not throttle: %+v", d)
		}
		if a := p.VerifyIsAllowed(t, "alice"); len(a) != 2 || a[0].Allowed || a[0].LockedUntil == "" || !a[1].Allowed {
			t.Errorf("verify_is_allowed after one failure: %+v", a)
		}
		p.SetThrottle(t, "alice", 0, 0)
		if a := p.VerifyIsAllowed(t, "alice"); !a[0].Allowed {
			t.Errorf("verify_is_allowed after SetThrottle 0: %+v", a)
		}

		if !p.VerifyStatic(t, "alice", "abcd1234") || p.VerifyStatic(t, "alice", "abcd1234") {
			t.Error("a static token was not accepted exactly once")
		}
		p.SetThrottle(t, "alice", 0, 0)
		if d := p.Devices(t, "alice")[1]; len(d.Tokens) != 1 || d.Tokens[0] != "efgh5678" {
			t.Errorf("static tokens after one use: %q", d.Tokens)
		}
		if !p.MatchToken(t, "alice", "efgh5678") {
			t.Error("match_token refused a static token")
		}

		// Throttled for 2^(3-1) = 4 s after the third failure, not after.
		p.SetThrottle(t, "alice", 3, 1)
		if a := p.VerifyIsAllowed(t, "alice"); a[0].Allowed {
			t.Errorf("3 failures 1 s ago should throttle: %+v", a)
		}
		p.SetThrottle(t, "alice", 3, 5)
		if a := p.VerifyIsAllowed(t, "alice"); !a[0].Allowed {
			t.Errorf("3 failures 5 s ago should not throttle: %+v", a)
		}
	})
}

// Start holds a Django process ready until Go.
func TestHarnessStart(t *testing.T) {
	p := djangotest.New(t, "sqlite")
	p.CreateUser(t, "bob", "")
	key := p.CreateTOTPDevice(t, "bob", "default", false)
	now := time.Now()
	pd := p.Start(t, djangotest.VerifyTOTPOp("bob", djangotest.Code(t, key, now)), djangotest.DevicesOp("bob"))
	pd.Go()
	res := pd.Wait()
	var v djangotest.Verdict
	djangotest.Decode(t, nil, res[0], &v)
	if !v.Accepted {
		t.Fatalf("verdict %+v", v)
	}
	if d := djangotest.DevicesOf(t, res[1]); len(d) != 1 || d[0].LastT != now.Unix()/30 {
		t.Errorf("devices %+v", d)
	}
}
