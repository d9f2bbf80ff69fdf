package models_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

func TestParseUserRef(t *testing.T) {
	tests := []struct {
		in    string
		byID  bool
		value string
		ok    bool
	}{
		{"alice", false, "alice", true},
		{"id:42", true, "42", true},
		{"id:6f1c2a7e-0d55-4a59-9c3e-1d2f6b7a8c9d", true, "6f1c2a7e-0d55-4a59-9c3e-1d2f6b7a8c9d", true},
		{"alice@example.com", false, "alice@example.com", true},
		{"ID:42", false, "ID:42", true}, // only the lower-case prefix names an id
		{"", false, "", false},
		{"   ", false, "", false},
		{"id:", false, "", false},
		{"al\x00ice", false, "", false},
		{"\xff\xfe", false, "", false},
		{strings.Repeat("a", 5000), false, "", false},
	}
	for _, tc := range tests {
		ref, err := models.ParseUserRef(tc.in)
		if !tc.ok {
			if !errors.Is(err, models.ErrInvalidUserRef) {
				t.Errorf("ParseUserRef(%.20q) = %+v, %v; want ErrInvalidUserRef", tc.in, ref, err)
			}
			continue
		}
		if err != nil || ref.ByID != tc.byID || ref.Value != tc.value {
			t.Errorf("ParseUserRef(%q) = %+v, %v; want ByID %v Value %q", tc.in, ref, err, tc.byID, tc.value)
		}
		if ref.String() != tc.in {
			t.Errorf("ParseUserRef(%q).String() = %q", tc.in, ref.String())
		}
	}
}

func TestLookupUser(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		withEmail := e.service(func(c *models.Config) { c.Users.EmailColumn = "email" })
		tests := []struct {
			ref          string
			id, login    string
			notFound     bool
			emailService bool
		}{
			{ref: "alice", id: "1", login: "alice"},
			{ref: "bob", id: "2", login: "bob"},
			{ref: "id:3", id: "3", login: "carol"},
			{ref: "id:1", id: "1", login: "alice", emailService: true},
			{ref: "carol", id: "3", login: "carol", emailService: true},
			{ref: "nobody", notFound: true},
			{ref: "Alice ", notFound: true},
			{ref: "id:99", notFound: true},
			{ref: "id:abc", notFound: true},
			{ref: "id:-1", notFound: true},
			{ref: "alice' OR '1'='1", notFound: true},
			{ref: "id:1 OR 1=1", notFound: true},
		}
		for _, tc := range tests {
			if tc.ref == "Alice " && db.Backend == "mysql" {
				// MySQL's default collation ignores case and trailing
				// spaces; a login lookup finds the same row the
				// application's own login query would.
				continue
			}
			ref, err := models.ParseUserRef(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			svc := e.svc
			if tc.emailService {
				svc = withEmail
			}
			u, err := svc.LookupUser(e.ctx, db.Gorm, ref)
			if tc.notFound {
				if !errors.Is(err, models.ErrUserNotFound) {
					t.Errorf("LookupUser(%q) = %+v, %v; want ErrUserNotFound", tc.ref, u, err)
				}
				continue
			}
			wantEmail := ""
			if tc.emailService {
				wantEmail = tc.login + "@example.com"
			}
			if err != nil || u.ID != tc.id || u.Login != tc.login || u.Email != wantEmail {
				t.Errorf("LookupUser(%q) = %+v, %v; want id %s login %s email %q", tc.ref, u, err, tc.id, tc.login, wantEmail)
			}
		}
	})
}

func TestEnrollPendingThenVerifyActivates(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", false)
		if en.res.State != models.StatePending || en.res.Replaced {
			t.Errorf("enroll result %+v, want pending, not replaced", en.res)
		}
		if len(en.codes) != 10 {
			t.Errorf("%d backup codes, want 10", len(en.codes))
		}
		if len(en.secret) != 20 {
			t.Errorf("secret is %d bytes, want 160 bits", len(en.secret))
		}
		c := e.cred(en.user.ID)
		if !c.Found || c.State != "pending" || c.LastStep != -1 || c.Failures != 0 || c.LockedUntil != nil {
			t.Fatalf("stored credential %+v, want pending, last step -1", c)
		}
		if c.KeyID != e.key.ID() {
			t.Errorf("credential key id %q, want %q", c.KeyID, e.key.ID())
		}
		if strings.Contains(string(c.Secret), string(en.secret)) || strings.Contains(string(c.Secret), b32.EncodeToString(en.secret)) {
			t.Error("the stored secret is not encrypted")
		}

		res := e.mustVerify(en, e.code(en, 0))
		if res.Method != models.MethodTOTP || !res.Activated || res.Step != e.step(en) {
			t.Errorf("first verify = %+v, want totp, activated, step %d", res, e.step(en))
		}
		if c := e.cred(en.user.ID); c.State != "active" || c.LastStep != e.step(en) {
			t.Errorf("after the first code the credential is %+v, want active at step %d", c, e.step(en))
		}

		e.clock.Advance(30 * time.Second)
		res = e.mustVerify(en, e.code(en, 0))
		if res.Activated {
			t.Errorf("second verify = %+v, want Activated false", res)
		}

		rows := e.audit()
		if len(rows) != 3 || rows[0].Action != models.ActionEnroll || rows[1].Action != models.ActionVerify || rows[2].Action != models.ActionVerify {
			t.Fatalf("audit log %+v, want enroll, verify, verify", rows)
		}
		for _, r := range rows {
			if r.Actor != "tester" || r.Host != "testhost" || r.UserID != "1" || r.UserLogin != "alice" {
				t.Errorf("audit row %+v: want actor tester, host testhost, user 1 alice", r)
			}
		}
	})
}

func TestVerifyReplay(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", false)
		code := e.code(en, 0)
		e.mustVerify(en, code)
		before := e.cred(en.user.ID)

		_, err := e.verify(en, code)
		if !errors.Is(err, models.ErrReplayed) || !errors.Is(err, models.ErrCodeRejected) {
			t.Fatalf("replayed code: %v, want ErrReplayed (an ErrCodeRejected)", err)
		}
		if strings.Contains(err.Error(), code) {
			t.Errorf("error %q repeats the code", err)
		}
		// Later in the same step, or the code's step one step later (still
		// inside the window): still a replay.
		e.clock.Advance(15 * time.Second)
		if _, err := e.verify(en, code); !errors.Is(err, models.ErrReplayed) {
			t.Errorf("same code later: %v, want ErrReplayed", err)
		}
		// A code for the step before an accepted one is refused as replay.
		if _, err := e.verify(en, refTOTP(en.secret, baseTime.Add(-30*time.Second), en.params)); !errors.Is(err, models.ErrReplayed) {
			t.Errorf("code for step s-1 after s was accepted: %v, want ErrReplayed", err)
		}
		// A replay is no guess: it does not count towards the lockout.
		if c := e.cred(en.user.ID); c.Failures != 0 || c.LastStep != before.LastStep {
			t.Errorf("after replays the credential is %+v, want 0 failures and last step %d", c, before.LastStep)
		}
	})
}

func TestVerifyLaterStepThenEarlierIsReplay(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", false)
		s := e.step(en)
		if res := e.mustVerify(en, e.code(en, 1)); res.Step != s+1 {
			t.Errorf("code for step s+1 accepted as step %d, want %d", res.Step, s+1)
		}
		for _, off := range []int{0, -1, 1} {
			if _, err := e.verify(en, e.code(en, off)); !errors.Is(err, models.ErrReplayed) {
				t.Errorf("code for step s%+d after s+1 was accepted: %v, want ErrReplayed", off, err)
			}
		}
		// Two steps later the next step's code is new again.
		e.clock.Advance(60 * time.Second)
		if res := e.mustVerify(en, e.code(en, 0)); res.Step != s+2 {
			t.Errorf("accepted step %d, want %d", res.Step, s+2)
		}
	})
}

func TestVerifyWindow(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		strict := e.service(func(c *models.Config) { c.Skew = 0 })
		tests := []struct {
			svc    *models.Service
			name   string
			offset int
			accept bool
		}{
			{e.svc, "skew 1", -2, false},
			{e.svc, "skew 1", -1, true},
			{e.svc, "skew 1", 0, true},
			{e.svc, "skew 1", 1, true},
			{e.svc, "skew 1", 2, false},
			{strict, "skew 0", -1, false},
			{strict, "skew 0", 0, true},
			{strict, "skew 0", 1, false},
		}
		for _, tc := range tests {
			e.clock.Set(baseTime)
			en := e.enrollWith(e.svc, "alice", models.Params{}, models.EnrollOptions{Force: true}, false)
			code := e.code(en, tc.offset)
			if tc.offset != 0 && code == e.code(en, 0) {
				continue // codes of two steps collide one time in a million
			}
			res, err := tc.svc.Verify(e.ctx, db.Gorm, en.user, code)
			switch {
			case tc.accept && err != nil:
				t.Errorf("%s: code for step %+d: %v, want accepted", tc.name, tc.offset, err)
			case tc.accept && res.Step != e.step(en)+int64(tc.offset):
				t.Errorf("%s: code for step %+d accepted as step %d, want %d", tc.name, tc.offset, res.Step, e.step(en)+int64(tc.offset))
			case !tc.accept && !plainRejection(err):
				t.Errorf("%s: code for step %+d: %v, want a plain ErrCodeRejected", tc.name, tc.offset, err)
			}
		}

		// Step boundaries with skew 0: the last second of a step and the
		// first of the next.
		en := e.enrollWith(e.svc, "bob", models.Params{}, models.EnrollOptions{}, false)
		stepStart := time.Unix(1_700_000_010, 0)
		e.clock.Set(stepStart.Add(29 * time.Second))
		if _, err := strict.Verify(e.ctx, db.Gorm, en.user, refTOTP(en.secret, stepStart.Add(30*time.Second), en.params)); !plainRejection(err) {
			t.Errorf("skew 0, last second of step: next step's code: %v, want rejected", err)
		}
		if _, err := strict.Verify(e.ctx, db.Gorm, en.user, refTOTP(en.secret, stepStart, en.params)); err != nil {
			t.Errorf("skew 0, last second of step: its own code: %v", err)
		}
		e.clock.Set(stepStart.Add(30 * time.Second))
		if _, err := strict.Verify(e.ctx, db.Gorm, en.user, refTOTP(en.secret, stepStart.Add(30*time.Second), en.params)); err != nil {
			t.Errorf("skew 0, first second of next step: its code: %v", err)
		}
	})
}

func TestVerifyInputForms(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", false)
		forms := []func(string) string{
			func(c string) string { return c[:3] + " " + c[3:] },
			func(c string) string { return " " + c + "\t" },
			func(c string) string { return c[:3] + "-" + c[3:] },
		}
		for _, form := range forms {
			code := form(e.code(en, 0))
			if _, err := e.verify(en, code); err != nil {
				t.Errorf("code typed as %q: %v", code, err)
			}
			e.clock.Advance(30 * time.Second)
		}
	})
}

func TestNonDefaultParams(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		p := models.Params{Algorithm: "SHA512", Digits: 8, Period: 60}
		en := e.enrollWith(e.svc, "alice", p, models.EnrollOptions{}, false)
		if en.params != p {
			t.Fatalf("enrollment params %+v, want %+v", en.params, p)
		}
		// A 6-digit code cannot be for an 8-digit credential.
		before := db.Dump(t)
		if _, err := e.verify(en, "123456"); !errors.Is(err, models.ErrMalformedCode) {
			t.Errorf("6 digits for an 8-digit credential: %v, want ErrMalformedCode", err)
		}
		e.assertUnchanged(before, "a malformed code")
		code := refTOTP(en.secret, e.clock.Now(), p)
		res, err := e.verify(en, code)
		if err != nil {
			t.Fatalf("SHA512/8/60 code: %v", err)
		}
		if res.Step != e.clock.Now().Unix()/60 {
			t.Errorf("accepted step %d, want %d (60-second steps)", res.Step, e.clock.Now().Unix()/60)
		}
		// The 6-digit SHA1/30 s code of the same secret is not accepted.
		if _, err := e.verify(en, refTOTP(en.secret, e.clock.Now().Add(60*time.Second), models.Params{Algorithm: "SHA1", Digits: 8, Period: 60})); !plainRejection(err) {
			t.Errorf("SHA1 code for a SHA512 credential: %v, want rejected", err)
		}
	})
}

// detRandom makes backup codes reproducible where a test needs particular
// symbols in them.
func detRandom(seed byte) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

func TestBackupCodes(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db, func(c *models.Config) { c.Random = detRandom(1) })
		en := e.enroll("alice", true)
		codes := en.codes
		if len(codes) != 10 {
			t.Fatalf("%d codes", len(codes))
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if !backupFormatRE.MatchString(c) || seen[c] {
				t.Errorf("code %q malformed or repeated", c)
			}
			seen[c] = true
		}
		// A code with a 0 or 1 in it, to type with look-alike letters.
		lookalike := -1
		for i := 4; i < len(codes); i++ {
			if strings.ContainsAny(codes[i], "01") {
				lookalike = i
				break
			}
		}
		if lookalike < 0 {
			t.Fatal("no code with 0 or 1 among the fixed-seed codes")
		}
		typed := map[int]string{
			0:         codes[0],
			1:         strings.ToUpper(codes[1]),
			2:         strings.ReplaceAll(codes[2], "-", ""),
			3:         " " + strings.ReplaceAll(codes[3], "-", " ") + " ",
			lookalike: strings.NewReplacer("1", "l", "0", "O").Replace(codes[lookalike]),
		}
		used := 0
		for _, i := range []int{0, 1, 2, 3, lookalike} {
			res, err := e.verify(en, typed[i])
			if err != nil {
				t.Errorf("backup code %q typed as %q: %v", codes[i], typed[i], err)
				continue
			}
			used++
			if res.Method != models.MethodBackup || res.BackupCodesLeft != 10-used {
				t.Errorf("backup verify = %+v, want method %q, %d left", res, models.MethodBackup, 10-used)
			}
			if got := e.unusedCodes(en.user.ID); got != 10-used {
				t.Errorf("%d unused codes in the table, want %d", got, 10-used)
			}
			// Once only, in any form.
			for _, again := range []string{codes[i], strings.ToUpper(codes[i]), typed[i]} {
				if _, err := e.verify(en, again); !errors.Is(err, models.ErrCodeRejected) {
					t.Errorf("backup code %q used a second time as %q: %v, want rejected", codes[i], again, err)
				}
			}
		}
		// An unknown well-formed backup code is a failure.
		if _, err := e.verify(en, "zzzz-zzzz-zzzz"); !errors.Is(err, models.ErrCodeRejected) || seen["zzzz-zzzz-zzzz"] {
			t.Errorf("unknown backup code: %v, want rejected", err)
		}
		// Another user's code does not work.
		bob := e.enroll("bob", true)
		if _, err := e.verify(en, bob.codes[0]); !errors.Is(err, models.ErrCodeRejected) {
			t.Errorf("bob's backup code for alice: %v, want rejected", err)
		}
		if got := e.unusedCodes(bob.user.ID); got != 10 {
			t.Errorf("bob has %d unused codes, want 10", got)
		}
	})
}

// TestBackupCodeReuseIsReplay: a used backup code is a replay, like a used
// time step (ErrReplayed says "each time step and backup code is accepted
// once"), and must not count as a failed guess — otherwise a user
// double-submitting a backup code, or an attacker resubmitting a seen one,
// locks the user out.
func TestBackupCodeReuseIsReplay(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		if _, err := e.verify(en, en.codes[0]); err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			_, err := e.verify(en, en.codes[0])
			if !errors.Is(err, models.ErrReplayed) {
				t.Errorf("reuse %d of a backup code: %v, want ErrReplayed", i+1, err)
			}
		}
		if c := e.cred(en.user.ID); c.Failures != 0 || c.LockedUntil != nil {
			t.Errorf("after reusing a backup code: %d failures, locked until %v; want 0, not locked", c.Failures, c.LockedUntil)
		}
	})
}

func TestBackupCodeOnPendingEnrollment(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", false)
		_, err := e.verify(en, en.codes[0])
		if !errors.Is(err, models.ErrPending) || !errors.Is(err, models.ErrCodeRejected) {
			t.Fatalf("backup code on a pending enrollment: %v, want ErrPending", err)
		}
		c := e.cred(en.user.ID)
		if c.State != "pending" || c.Failures != 0 {
			t.Errorf("credential %+v, want still pending, no failure counted", c)
		}
		if got := e.unusedCodes(en.user.ID); got != 10 {
			t.Errorf("%d unused codes, want 10 (nothing consumed)", got)
		}
		// Confirm takes only a TOTP code.
		if _, err := e.svc.Confirm(e.ctx, db.Gorm, en.user, en.codes[0]); !errors.Is(err, models.ErrPending) {
			t.Errorf("Confirm with a backup code: %v, want ErrPending", err)
		}
		res, err := e.svc.Confirm(e.ctx, db.Gorm, en.user, e.code(en, 0))
		if err != nil || !res.Activated {
			t.Fatalf("Confirm with the app's code = %+v, %v", res, err)
		}
		e.clock.Advance(30 * time.Second)
		if _, err := e.svc.Confirm(e.ctx, db.Gorm, en.user, e.code(en, 0)); !errors.Is(err, models.ErrAlreadyEnrolled) {
			t.Errorf("Confirm on an active enrollment: %v, want ErrAlreadyEnrolled", err)
		}
		// Now active, the same backup code works.
		if _, err := e.verify(en, en.codes[0]); err != nil {
			t.Errorf("backup code after activation: %v", err)
		}
	})
}

// lockOut makes MaxFailures wrong attempts and returns the lockout.
func (e *env) lockOut(en enrolled) *models.LockedError {
	e.t.Helper()
	for i := 1; i <= 5; i++ {
		_, err := e.verify(en, e.wrong(en))
		if i < 5 {
			if !plainRejection(err) {
				e.t.Fatalf("wrong code %d: %v, want a plain rejection", i, err)
			}
			if c := e.cred(en.user.ID); c.Failures != i || c.LockedUntil != nil {
				e.t.Fatalf("after %d wrong codes: %+v", i, c)
			}
			continue
		}
		var le *models.LockedError
		if !errors.As(err, &le) || !errors.Is(err, models.ErrLocked) || !errors.Is(err, models.ErrCodeRejected) {
			e.t.Fatalf("5th wrong code: %v, want a *LockedError (ErrLocked, ErrCodeRejected)", err)
		}
		if !le.JustLocked {
			e.t.Errorf("5th wrong code: JustLocked false")
		}
		if want := e.clock.Now().Add(15 * time.Minute); !le.Until.Equal(want) {
			e.t.Errorf("locked until %v, want %v (15 minutes)", le.Until, want)
		}
		return le
	}
	panic("unreachable")
}

func TestLockout(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		e.clock.Advance(30 * time.Second)
		le := e.lockOut(en)
		c := e.cred(en.user.ID)
		if c.LockedUntil == nil || !c.LockedUntil.Equal(le.Until) {
			t.Errorf("stored locked_until %v, want %v", c.LockedUntil, le.Until)
		}
		if st, err := e.svc.UserStatus(e.ctx, db.Gorm, en.user); err != nil || st.State != models.StatusLocked {
			t.Errorf("status while locked = %+v, %v; want locked", st, err)
		}

		// While locked even the right code and a backup code are refused,
		// and neither is consumed.
		lastStep := c.LastStep
		for _, at := range []time.Duration{0, 14*time.Minute + 59*time.Second} {
			e.clock.Set(baseTime.Add(30*time.Second + at))
			for _, code := range []string{e.code(en, 0), en.codes[0]} {
				_, err := e.verify(en, code)
				var got *models.LockedError
				if !errors.As(err, &got) || got.JustLocked || !got.Until.Equal(le.Until) {
					t.Errorf("right code %q %s into the lockout: %v, want LockedError until %v", code, at, err, le.Until)
				}
			}
		}
		if c := e.cred(en.user.ID); c.LastStep != lastStep {
			t.Errorf("a code was consumed during the lockout: last step %d, want %d", c.LastStep, lastStep)
		}
		if got := e.unusedCodes(en.user.ID); got != 10 {
			t.Errorf("a backup code was consumed during the lockout: %d left", got)
		}

		// At the end of the lockout the right code works and clears it.
		e.clock.Set(le.Until)
		if _, err := e.verify(en, e.code(en, 0)); err != nil {
			t.Fatalf("right code when the lockout ends: %v", err)
		}
		if c := e.cred(en.user.ID); c.Failures != 0 || c.LockedUntil != nil {
			t.Errorf("after success: %+v, want failures 0, not locked", c)
		}
		if st, _ := e.svc.UserStatus(e.ctx, db.Gorm, en.user); st.State != models.StatusEnabled {
			t.Errorf("status after the lockout = %q, want enabled", st.State)
		}
	})
}

func TestLockoutBackupCodesCount(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db, func(c *models.Config) { c.MaxFailures = 3; c.LockoutDuration = time.Hour })
		en := e.enroll("alice", true)
		for i := 1; i <= 3; i++ {
			_, err := e.verify(en, "zzzz-zzzz-zzzz")
			if i < 3 && !plainRejection(err) {
				t.Fatalf("wrong backup code %d: %v", i, err)
			}
			var le *models.LockedError
			if i == 3 && (!errors.As(err, &le) || !le.Until.Equal(e.clock.Now().Add(time.Hour))) {
				t.Fatalf("3rd wrong backup code with MaxFailures 3: %v, want locked for an hour", err)
			}
		}
	})
}

func TestSuccessResetsFailures(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", false)
		for round := range 3 {
			for range 4 {
				if _, err := e.verify(en, e.wrong(en)); !plainRejection(err) {
					t.Fatalf("round %d: wrong code: %v, want a plain rejection", round, err)
				}
			}
			if c := e.cred(en.user.ID); c.Failures != 4 {
				t.Fatalf("round %d: %d failures, want 4", round, c.Failures)
			}
			if round == 2 {
				// A backup code also resets the count.
				if _, err := e.verify(en, en.codes[0]); err != nil {
					t.Fatal(err)
				}
			} else {
				e.mustVerify(en, e.code(en, 0))
			}
			if c := e.cred(en.user.ID); c.Failures != 0 {
				t.Fatalf("round %d: %d failures after success, want 0", round, c.Failures)
			}
			e.clock.Advance(30 * time.Second)
		}
	})
}

func TestLockExpiryStartsFreshCount(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		le := e.lockOut(en)
		e.clock.Set(le.Until.Add(time.Second))
		if st, _ := e.svc.UserStatus(e.ctx, db.Gorm, en.user); st.State != models.StatusEnabled {
			t.Errorf("status after the lockout expired = %q, want enabled", st.State)
		}
		for i := 1; i <= 4; i++ {
			if _, err := e.verify(en, e.wrong(en)); !plainRejection(err) {
				t.Fatalf("wrong code %d after the lockout expired: %v, want a plain rejection (fresh count)", i, err)
			}
			if c := e.cred(en.user.ID); c.Failures != i {
				t.Errorf("after %d wrong codes past the lockout: %d failures", i, c.Failures)
			}
		}
		var again *models.LockedError
		if _, err := e.verify(en, e.wrong(en)); !errors.As(err, &again) || !again.JustLocked {
			t.Fatalf("5th wrong code after expiry: %v, want locked again", err)
		}
	})
}

func TestUnlock(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		e.clock.Advance(30 * time.Second)
		e.lockOut(en)
		was, err := e.svc.Unlock(e.ctx, db.Gorm, en.user)
		if err != nil || !was {
			t.Fatalf("Unlock = %v, %v; want true", was, err)
		}
		if c := e.cred(en.user.ID); c.Failures != 0 || c.LockedUntil != nil {
			t.Errorf("after unlock: %+v", c)
		}
		e.mustVerify(en, e.code(en, 0))
		was, err = e.svc.Unlock(e.ctx, db.Gorm, en.user)
		if err != nil || was {
			t.Errorf("Unlock of an unlocked user = %v, %v; want false, nil", was, err)
		}
		rows := e.audit()
		if last := rows[len(rows)-1]; last.Action != models.ActionUnlock {
			t.Errorf("last audit row %+v, want unlock", last)
		}
		bob := e.user("bob")
		before := db.Dump(t)
		if _, err := e.svc.Unlock(e.ctx, db.Gorm, bob); !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("Unlock of a user without 2FA: %v, want ErrNotEnrolled", err)
		}
		e.assertUnchanged(before, "unlocking a user without 2FA")
	})
}

func TestReEnrollClearsLockout(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		old := e.enroll("alice", true)
		e.clock.Advance(30 * time.Second)
		e.lockOut(old)
		en := e.enrollWith(e.svc, "alice", models.Params{}, models.EnrollOptions{Force: true}, true)
		if !en.res.Replaced || en.res.State != models.StateActive {
			t.Errorf("forced re-enroll = %+v, want replaced, active", en.res)
		}
		if c := e.cred(en.user.ID); c.Failures != 0 || c.LockedUntil != nil {
			t.Errorf("after re-enroll: %+v, want not locked", c)
		}
		e.clock.Advance(30 * time.Second)
		e.mustVerify(en, e.code(en, 0))
	})
}

func TestMalformedCodes(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		inputs := []string{
			"", " ", "12345", "1234567", "123456789", "abcdef", "12345a", "12 34 5",
			"xxxx-xxxx-xxx", "xxxx-xxxx-xxxxx", "xxxx-xxxx-xxxu", "１２３４５６", "123456\x00",
			"1234567890123", strings.Repeat("9", 1000),
		}
		before := db.Dump(t)
		for _, in := range inputs {
			_, err := e.verify(en, in)
			if !errors.Is(err, models.ErrMalformedCode) || errors.Is(err, models.ErrCodeRejected) {
				t.Errorf("Verify(%.20q) = %v, want ErrMalformedCode only", in, err)
			}
		}
		e.assertUnchanged(before, "malformed codes")
		// Malformed input does not identify whether the user exists either:
		// a user without 2FA gets the same class of error for it.
		if _, err := e.svc.Verify(e.ctx, db.Gorm, e.user("bob"), "abc"); !errors.Is(err, models.ErrMalformedCode) {
			t.Errorf("malformed code for a user without 2FA: %v", err)
		}
		// A well-formed code for a user without 2FA: not enrolled, nothing written.
		if _, err := e.svc.Verify(e.ctx, db.Gorm, e.user("bob"), "123456"); !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("code for a user without 2FA: %v, want ErrNotEnrolled", err)
		}
		e.assertUnchanged(before, "verifying a user without 2FA")
	})
}

func TestEnrollAlreadyEnrolled(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		for _, confirm := range []bool{false, true} {
			login := map[bool]string{false: "alice", true: "bob"}[confirm]
			e.enroll(login, confirm)
			before := db.Dump(t)
			enr, err := e.svc.NewEnrollment(e.user(login), models.Params{})
			if err != nil {
				t.Fatal(err)
			}
			code := refTOTP(decodeB32(t, enr.Secret()), e.clock.Now(), enr.Params)
			for _, opt := range []models.EnrollOptions{{}, {ConfirmCode: code}} {
				if _, err := e.svc.Enroll(e.ctx, db.Gorm, enr, opt); !errors.Is(err, models.ErrAlreadyEnrolled) {
					t.Errorf("enroll %s again (confirmed %v, opt %+v): %v, want ErrAlreadyEnrolled", login, confirm, opt.ConfirmCode != "", err)
				}
			}
			e.assertUnchanged(before, "a refused second enrollment")
		}
	})
}

func TestEnrollForceReplaces(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		old := e.enroll("alice", true)
		e.clock.Advance(30 * time.Second)
		en := e.enrollWith(e.svc, "alice", models.Params{}, models.EnrollOptions{Force: true}, false)
		if !en.res.Replaced || en.res.State != models.StatePending {
			t.Errorf("forced enroll = %+v, want replaced, pending", en.res)
		}
		if string(en.secret) == string(old.secret) {
			t.Fatal("re-enroll kept the old secret")
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ?", en.user.ID); n != 10 {
			t.Errorf("%d backup-code rows after re-enroll, want 10 (old ones deleted)", n)
		}
		if n := db.Count(t, "totp_credentials", "user_id = ?", en.user.ID); n != 1 {
			t.Errorf("%d credential rows, want 1", n)
		}
		// Activate with the new secret, then old codes and the old secret fail.
		e.mustVerify(en, e.code(en, 0))
		e.clock.Advance(30 * time.Second)
		for _, c := range old.codes[:3] {
			if _, err := e.verify(en, c); !plainRejection(err) {
				t.Errorf("old backup code after re-enroll: %v, want rejected", err)
			}
		}
		if _, err := e.verify(en, e.code(old, 0)); !plainRejection(err) {
			t.Errorf("old secret's code after re-enroll: %v, want rejected", err)
		}
		e.mustVerify(en, en.codes[0])
		rows := e.audit()
		var enrolls []string
		for _, r := range rows {
			if r.Action == models.ActionEnroll {
				enrolls = append(enrolls, r.Outcome)
			}
		}
		if len(enrolls) != 2 || !strings.Contains(enrolls[1], "replaced") {
			t.Errorf("enroll audit outcomes %q, want the second to say replaced", enrolls)
		}
	})
}

func TestEnrollConfirmCode(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		u := e.user("alice")
		enr, err := e.svc.NewEnrollment(u, models.Params{})
		if err != nil {
			t.Fatal(err)
		}
		secret := decodeB32(t, enr.Secret())
		en := enrolled{user: u, secret: secret, params: enr.Params}
		before := db.Dump(t)
		if _, err := e.svc.Enroll(e.ctx, db.Gorm, enr, models.EnrollOptions{ConfirmCode: e.wrong(en)}); !errors.Is(err, models.ErrCodeRejected) {
			t.Errorf("wrong confirmation code: %v, want ErrCodeRejected", err)
		}
		if _, err := e.svc.Enroll(e.ctx, db.Gorm, enr, models.EnrollOptions{ConfirmCode: e.code(en, 2)}); !errors.Is(err, models.ErrCodeRejected) {
			t.Errorf("confirmation code two steps ahead: %v, want ErrCodeRejected", err)
		}
		for _, bad := range []string{"12345", "abcdef", "1234567", "abcd-efgh-jkmn"} {
			if _, err := e.svc.Enroll(e.ctx, db.Gorm, enr, models.EnrollOptions{ConfirmCode: bad}); !errors.Is(err, models.ErrMalformedCode) {
				t.Errorf("confirmation code %q: %v, want ErrMalformedCode", bad, err)
			}
		}
		e.assertUnchanged(before, "a refused confirmation")

		code := e.code(en, 0)
		res, err := e.svc.Enroll(e.ctx, db.Gorm, enr, models.EnrollOptions{ConfirmCode: code})
		if err != nil || res.State != models.StateActive {
			t.Fatalf("enroll with the right code = %+v, %v; want active", res, err)
		}
		if c := e.cred(u.ID); c.State != "active" || c.LastStep != e.step(en) {
			t.Errorf("credential %+v, want active with last step %d", c, e.step(en))
		}
		// The confirming code's step, and the one before, are spent.
		for _, c := range []string{code, e.code(en, -1)} {
			if _, err := e.verify(en, c); !errors.Is(err, models.ErrReplayed) {
				t.Errorf("code %s after confirmation with step %d: %v, want ErrReplayed", c, e.step(en), err)
			}
		}
		e.mustVerify(en, e.code(en, 1))
	})
}

func TestRegenerateBackupCodes(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		if _, err := e.verify(en, en.codes[0]); err != nil {
			t.Fatal(err)
		}
		fresh, err := e.svc.RegenerateBackupCodes(e.ctx, db.Gorm, en.user)
		if err != nil {
			t.Fatal(err)
		}
		if len(fresh) != 10 {
			t.Fatalf("%d new codes, want 10", len(fresh))
		}
		old := map[string]bool{}
		for _, c := range en.codes {
			old[c] = true
		}
		for _, c := range fresh {
			if old[c] || !backupFormatRE.MatchString(c) {
				t.Errorf("new code %q is old or malformed", c)
			}
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ?", en.user.ID); n != 10 {
			t.Errorf("%d backup-code rows, want 10 (old ones deleted)", n)
		}
		for _, c := range en.codes[1:4] {
			if _, err := e.verify(en, c); !plainRejection(err) {
				t.Errorf("old unused code after regeneration: %v, want rejected", err)
			}
		}
		res, err := e.verify(en, fresh[5])
		if err != nil || res.BackupCodesLeft != 9 {
			t.Errorf("new code = %+v, %v; want accepted, 9 left", res, err)
		}
		before := db.Dump(t)
		if _, err := e.svc.RegenerateBackupCodes(e.ctx, db.Gorm, e.user("bob")); !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("regenerate for a user without 2FA: %v, want ErrNotEnrolled", err)
		}
		e.assertUnchanged(before, "regenerating for a user without 2FA")
	})
}

func TestDisable(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", true)
		bob := e.enroll("bob", true)
		e.lockOut(alice)

		before := db.Dump(t)
		for _, reason := range []string{"", "   "} {
			if err := e.svc.Disable(e.ctx, db.Gorm, alice.user, reason); !errors.Is(err, models.ErrReasonRequired) {
				t.Errorf("Disable with reason %q: %v, want ErrReasonRequired", reason, err)
			}
		}
		e.assertUnchanged(before, "disable without a reason")

		const reason = "lost phone, ticket #4711"
		if err := e.svc.Disable(e.ctx, db.Gorm, alice.user, reason); err != nil {
			t.Fatal(err)
		}
		if c := e.cred(alice.user.ID); c.Found {
			t.Error("credential still there after disable")
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ?", alice.user.ID); n != 0 {
			t.Errorf("%d backup codes left after disable", n)
		}
		rows := e.audit()
		last := rows[len(rows)-1]
		if last.Action != models.ActionDisable || last.Reason.String != reason || last.UserID != "1" || last.UserLogin != "alice" || last.Actor != "tester" {
			t.Errorf("last audit row %+v, want disable of alice with the reason", last)
		}
		if st, _ := e.svc.UserStatus(e.ctx, db.Gorm, alice.user); st.State != models.StatusDisabled {
			t.Errorf("status after disable = %q", st.State)
		}
		if _, err := e.verify(alice, alice.codes[0]); !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("verify after disable: %v, want ErrNotEnrolled", err)
		}
		// Bob is untouched.
		if c := e.cred(bob.user.ID); !c.Found || e.unusedCodes(bob.user.ID) != 10 {
			t.Errorf("bob's enrollment changed by disabling alice")
		}
		e.mustVerify(bob, bob.codes[0])

		before = db.Dump(t)
		if err := e.svc.Disable(e.ctx, db.Gorm, alice.user, reason); !errors.Is(err, models.ErrNotEnrolled) {
			t.Errorf("second disable: %v, want ErrNotEnrolled", err)
		}
		e.assertUnchanged(before, "disable of a user without 2FA")

		// Enrolling again after disable works.
		e.enroll("alice", false)
	})
}

// TestNothingSecretInAudit runs every action and then looks for the
// secret, the codes, the salts and the hashes in the audit log's text.
func TestNothingSecretInAudit(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", false)
		var needles []string
		addCode := func(c string) {
			needles = append(needles, c)
			if n, ok := models.NormalizeBackupCode(c); ok {
				needles = append(needles, n, strings.ToUpper(c), strings.ToUpper(n))
			}
		}
		for _, c := range en.codes {
			addCode(c)
		}
		var errs []error
		try := func(code string) {
			addCode(code)
			if _, err := e.verify(en, code); err != nil {
				errs = append(errs, err)
			}
		}
		try(e.code(en, 0))
		try(e.code(en, 0)) // replay
		try(e.wrong(en))
		try(en.codes[0])
		try(en.codes[0])
		try("hjkm-npqr-stvw")
		fresh, err := e.svc.RegenerateBackupCodes(e.ctx, db.Gorm, en.user)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range fresh {
			addCode(c)
		}
		try(fresh[1])
		e.clock.Advance(30 * time.Second)
		for range 5 {
			try(e.wrong(en))
		}
		try(e.code(en, 0)) // locked
		// A temporary code: issued, used (while locked), replayed.
		tc, err := e.svc.IssueTempCode(e.ctx, db.Gorm, en.user, time.Hour, "ticket 1")
		if err != nil {
			t.Fatal(err)
		}
		addCode(tc.Code)
		try(tc.Code)
		try(tc.Code)
		if _, err := e.svc.Unlock(e.ctx, db.Gorm, en.user); err != nil {
			t.Fatal(err)
		}
		// Salts and hashes as stored.
		rows, err := db.Gorm.Raw("SELECT salt, hash FROM totp_backup_codes UNION ALL SELECT salt, hash FROM totp_temp_codes").Rows()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var salt, hash []byte
			if err := rows.Scan(&salt, &hash); err != nil {
				t.Fatal(err)
			}
			needles = append(needles, hex.EncodeToString(salt), hex.EncodeToString(hash), string(hash))
		}
		rows.Close()
		c := e.cred(en.user.ID)
		needles = append(needles, hex.EncodeToString(c.Secret), b32.EncodeToString(en.secret),
			strings.ToLower(b32.EncodeToString(en.secret)), hex.EncodeToString(en.secret), string(en.secret),
			models.ManualEntryKey(en.secret))
		if err := e.svc.Disable(e.ctx, db.Gorm, en.user, "test"); err != nil {
			t.Fatal(err)
		}

		auditRows := e.audit()
		if len(auditRows) < 15 {
			t.Errorf("only %d audit rows for 15 actions", len(auditRows))
		}
		dump := db.Dump(t)
		_, auditText, _ := strings.Cut(dump, "== totp_audit_log")
		auditText, _, _ = strings.Cut(auditText, "== totp_schema_version")
		if strings.Count(auditText, "\n") < len(auditRows) {
			t.Fatalf("audit dump looks empty: %q", auditText)
		}
		for _, n := range needles {
			if n != "" && strings.Contains(auditText, n) {
				t.Errorf("the audit log contains a secret value %q", n)
			}
			for _, err := range errs {
				if n != "" && strings.Contains(err.Error(), n) {
					t.Errorf("error %q contains a secret value %q", err, n)
				}
			}
		}
	})
}

func TestNoKey(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		noKey := e.service(func(c *models.Config) { c.Key = nil })

		before := db.Dump(t)
		enr, err := noKey.NewEnrollment(e.user("alice"), models.Params{})
		if err != nil {
			t.Fatalf("NewEnrollment needs no key: %v", err)
		}
		if _, err := noKey.Enroll(e.ctx, db.Gorm, enr, models.EnrollOptions{}); !errors.Is(err, models.ErrNoKey) {
			t.Errorf("Enroll without a key: %v, want ErrNoKey", err)
		}
		e.assertUnchanged(before, "enroll without a key")

		en := e.enroll("bob", true)
		e.clock.Advance(30 * time.Second)
		before = db.Dump(t)
		if _, err := noKey.Verify(e.ctx, db.Gorm, en.user, e.code(en, 0)); !errors.Is(err, models.ErrNoKey) {
			t.Errorf("TOTP verify without a key: %v, want ErrNoKey", err)
		}
		e.assertUnchanged(before, "TOTP verify without a key")

		res, err := noKey.Verify(e.ctx, db.Gorm, en.user, en.codes[0])
		if err != nil || res.Method != models.MethodBackup {
			t.Errorf("backup-code verify without a key = %+v, %v; want accepted", res, err)
		}
		if _, err := noKey.RegenerateBackupCodes(e.ctx, db.Gorm, en.user); err != nil {
			t.Errorf("regenerating backup codes needs no key: %v", err)
		}
	})
}

func TestWrongKey(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		text, err := models.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		other, err := models.ParseKey(text)
		if err != nil {
			t.Fatal(err)
		}
		wrong := e.service(func(c *models.Config) { c.Key = other })
		en := e.enroll("alice", false)
		for _, step := range []int{0, 1} {
			before := db.Dump(t)
			_, err := wrong.Verify(e.ctx, db.Gorm, en.user, e.code(en, step))
			if !errors.Is(err, models.ErrWrongKey) {
				t.Errorf("verify with the wrong key: %v, want ErrWrongKey", err)
			} else if strings.Contains(err.Error(), text) {
				t.Errorf("error %q contains the key", err)
			}
			e.assertUnchanged(before, "verify with the wrong key")
		}
		// The right key still works: nothing was consumed or counted.
		if res := e.mustVerify(en, e.code(en, 0)); !res.Activated {
			t.Errorf("verify with the right key = %+v, want activated", res)
		}
	})
}

// TestSecretBoundToUser copies alice's sealed secret onto bob's row, as an
// attacker with write access to the table might: it must not open.
func TestSecretBoundToUser(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", false)
		bob := e.enroll("bob", false)
		ca := e.cred(alice.user.ID)
		db.Exec(t, "UPDATE totp_credentials SET secret = ?, key_id = ? WHERE user_id = ?", ca.Secret, ca.KeyID, bob.user.ID)
		before := db.Dump(t)
		for _, code := range []string{e.code(alice, 0), e.code(bob, 0)} {
			if _, err := e.verify(bob, code); !errors.Is(err, models.ErrWrongKey) {
				t.Errorf("verify bob with alice's ciphertext: %v, want ErrWrongKey", err)
			}
		}
		e.assertUnchanged(before, "verify with a swapped ciphertext")
		e.mustVerify(alice, e.code(alice, 0))
	})
}

func TestStatus(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", true)
		e.enroll("bob", false)
		if _, err := e.verify(alice, alice.codes[0]); err != nil {
			t.Fatal(err)
		}
		want := map[string]struct {
			state string
			codes int
		}{
			"alice": {models.StatusEnabled, 9},
			"bob":   {models.StatusPending, 10},
			"carol": {models.StatusDisabled, 0},
		}
		var seen []string
		err := e.svc.EachStatus(e.ctx, db.Gorm, "", func(r models.StatusRow) error {
			seen = append(seen, r.Login)
			w := want[r.Login]
			if r.State != w.state || r.BackupCodesLeft != w.codes {
				t.Errorf("%s: state %q, %d codes; want %q, %d", r.Login, r.State, r.BackupCodesLeft, w.state, w.codes)
			}
			return nil
		})
		if err != nil || strings.Join(seen, ",") != "alice,bob,carol" {
			t.Errorf("EachStatus listed %v, %v; want alice,bob,carol in id order", seen, err)
		}
		e.clock.Advance(30 * time.Second)
		e.lockOut(alice)
		for state, login := range map[string]string{models.StatusLocked: "alice", models.StatusPending: "bob", models.StatusDisabled: "carol"} {
			var got []string
			if err := e.svc.EachStatus(e.ctx, db.Gorm, state, func(r models.StatusRow) error {
				got = append(got, r.Login)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != login {
				t.Errorf("EachStatus(%q) = %v, want [%s]", state, got, login)
			}
		}
	})
}

// TestVerifyRefusesCallerTransaction: inside the caller's transaction a
// rejection would be a savepoint the caller's rollback undoes, and wrong
// guesses would never lock anybody out; Verify and Confirm refuse.
func TestVerifyRefusesCallerTransaction(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", true)
		bob := e.enroll("bob", false)
		for name, call := range map[string]func(tx *gorm.DB) error{
			"verify": func(tx *gorm.DB) error {
				_, err := e.svc.Verify(e.ctx, tx, alice.user, e.wrong(alice))
				return err
			},
			"confirm": func(tx *gorm.DB) error {
				_, err := e.svc.Confirm(e.ctx, tx, bob.user, e.code(bob, 0))
				return err
			},
		} {
			before := e.db.Dump(t)
			err := db.Gorm.Transaction(call)
			if !errors.Is(err, models.ErrInTransaction) {
				t.Errorf("%s inside a transaction: %v, want ErrInTransaction", name, err)
			}
			e.assertUnchanged(before, name+" inside a transaction")
		}
		// Outside one, the same wrong code counts.
		if _, err := e.verify(alice, e.wrong(alice)); !errors.Is(err, models.ErrCodeRejected) {
			t.Fatalf("wrong code: %v", err)
		}
		if c := e.cred(alice.user.ID); c.Failures != 1 {
			t.Errorf("failures %d after one wrong code, want 1", c.Failures)
		}
	})
}

// TestEachStatusStopsWhenCancelled: a cancelled context ends the stream
// promptly with the context's error, also where the SQLite query itself
// runs uncancellable and the row loop checks for cancellation.
func TestEachStatusStopsWhenCancelled(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		const extra = 2000
		var values []string
		for i := range extra {
			values = append(values, fmt.Sprintf("('user%d')", i))
		}
		db.Exec(t, "INSERT INTO users (username) VALUES "+strings.Join(values, ", "))
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		seen := 0
		err := e.svc.EachStatus(ctx, db.Gorm, "", func(models.StatusRow) error {
			seen++
			if seen == 10 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("EachStatus after cancel: %v, want context.Canceled", err)
		}
		if seen >= extra {
			t.Fatalf("EachStatus went on for %d rows after being cancelled at the 10th", seen)
		}
	})
}

// backupFormatRE is xxxx-xxxx-xxxx in Crockford's base32 alphabet.
var backupFormatRE = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

func TestEachAuditEntry(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", false) // t0
		e.clock.Advance(time.Minute)
		e.mustVerify(alice, e.code(alice, 0)) // t0+1m
		e.clock.Advance(time.Minute)
		bob := e.enroll("bob", true) // t0+2m
		e.clock.Advance(time.Minute)
		if err := e.svc.Disable(e.ctx, db.Gorm, bob.user, "left the company"); err != nil { // t0+3m
			t.Fatal(err)
		}
		collect := func(f models.AuditFilter) []string {
			var out []string
			err := e.svc.EachAuditEntry(e.ctx, db.Gorm, f, func(a models.AuditEntry) error {
				out = append(out, a.UserLogin+" "+a.Action+" "+a.At.Sub(baseTime).String())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		tests := []struct {
			f    models.AuditFilter
			want string
		}{
			{models.AuditFilter{}, "bob disable 3m0s|bob enroll 2m0s|alice verify 1m0s|alice enroll 0s"},
			{models.AuditFilter{UserID: alice.user.ID}, "alice verify 1m0s|alice enroll 0s"},
			{models.AuditFilter{Action: models.ActionEnroll}, "bob enroll 2m0s|alice enroll 0s"},
			{models.AuditFilter{Since: baseTime.Add(time.Minute)}, "bob disable 3m0s|bob enroll 2m0s|alice verify 1m0s"},
			{models.AuditFilter{Since: baseTime.Add(61 * time.Second)}, "bob disable 3m0s|bob enroll 2m0s"},
			{models.AuditFilter{Limit: 1}, "bob disable 3m0s"},
			{models.AuditFilter{UserID: bob.user.ID, Action: models.ActionVerify}, ""},
		}
		for _, tc := range tests {
			if got := strings.Join(collect(tc.f), "|"); got != tc.want {
				t.Errorf("EachAuditEntry(%+v) = %q, want %q", tc.f, got, tc.want)
			}
		}
		stop := errors.New("stop")
		n := 0
		err := e.svc.EachAuditEntry(e.ctx, db.Gorm, models.AuditFilter{}, func(models.AuditEntry) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("callback error: %v after %d entries, want it returned after 1", err, n)
		}
	})
}
