package models_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// hookRecorder is a Config.OnChange that keeps every call's events and
// answers with fail (nil: success).
type hookRecorder struct {
	mu    sync.Mutex
	calls [][]models.ChangeEvent
	fail  error
}

func (h *hookRecorder) hook(_ context.Context, events []models.ChangeEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, append([]models.ChangeEvent(nil), events...))
	return h.fail
}

// take returns the calls so far and forgets them.
func (h *hookRecorder) take() [][]models.ChangeEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls
	h.calls = nil
	return c
}

func hookedEnv(t *testing.T, db *testutil.DB, h *hookRecorder) *env {
	return newEnv(t, db, func(c *models.Config) {
		c.OnChange = h.hook
		c.Users.EmailColumn = "email"
	})
}

// oneEvent asserts that calls is one call of one event and returns it.
func oneEvent(t *testing.T, what string, calls [][]models.ChangeEvent) models.ChangeEvent {
	t.Helper()
	if len(calls) != 1 || len(calls[0]) != 1 {
		t.Fatalf("%s: hook calls %+v, want one call of one event", what, calls)
	}
	return calls[0][0]
}

func TestChangeHookEvents(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		h := &hookRecorder{}
		e := hookedEnv(t, db, h)
		alice := e.enroll("alice", false) // pending
		ev := oneEvent(t, "enroll", h.take())
		want := models.ChangeEvent{Action: "enroll", UserID: alice.user.ID, Login: "alice", Email: "alice@example.com",
			Actor: "tester", Host: "testhost", Time: baseTime, Outcome: "pending"}
		if ev != want {
			t.Errorf("enroll event %+v, want %+v", ev, want)
		}
		line, _ := json.Marshal(ev)
		for _, secret := range append([]string{b32.EncodeToString(alice.secret)}, alice.codes...) {
			if secret != "" && strings.Contains(string(line), secret) {
				t.Errorf("event %s holds a secret %q", line, secret)
			}
		}
		for _, field := range []string{"action", "user_id", "login", "email", "actor", "host", "reason", "time", "outcome"} {
			if !strings.Contains(string(line), `"`+field+`":`) {
				t.Errorf("event %s lacks %q", line, field)
			}
		}

		// A wrong code, then the first right one: only the activation is a change.
		if _, err := e.verify(alice, e.wrong(alice)); err == nil {
			t.Fatal("wrong code accepted")
		}
		if calls := h.take(); len(calls) != 0 {
			t.Errorf("a rejected code ran the hook: %+v", calls)
		}
		e.mustVerify(alice, e.code(alice, 0))
		if ev := oneEvent(t, "confirmation", h.take()); ev.Action != models.ActionConfirm || ev.Outcome != "active" || ev.Login != "alice" {
			t.Errorf("confirmation event %+v", ev)
		}
		e.clock.Advance(30e9)
		e.mustVerify(alice, e.code(alice, 0))
		if _, err := e.verify(alice, alice.codes[0]); err != nil {
			t.Fatal(err)
		}
		if calls := h.take(); len(calls) != 0 {
			t.Errorf("verifications of an active user ran the hook: %+v", calls)
		}

		if _, err := e.svc.RegenerateBackupCodes(e.ctx, db.Gorm, alice.user); err != nil {
			t.Fatal(err)
		}
		if ev := oneEvent(t, "backup codes", h.take()); ev.Action != models.ActionBackupCodes || ev.UserID != alice.user.ID {
			t.Errorf("backup-codes event %+v", ev)
		}
		if _, err := e.svc.Unlock(e.ctx, db.Gorm, alice.user); err != nil {
			t.Fatal(err)
		}
		if ev := oneEvent(t, "unlock", h.take()); ev.Action != models.ActionUnlock {
			t.Errorf("unlock event %+v", ev)
		}
		if err := e.svc.Disable(e.ctx, db.Gorm, alice.user, "ticket 123"); err != nil {
			t.Fatal(err)
		}
		if ev := oneEvent(t, "disable", h.take()); ev.Action != models.ActionDisable || ev.Reason != "ticket 123" || ev.Email != "alice@example.com" {
			t.Errorf("disable event %+v", ev)
		}

		// Refused: nothing changed, nothing announced.
		if err := e.svc.Disable(e.ctx, db.Gorm, alice.user, "again"); !errors.Is(err, models.ErrNotEnrolled) {
			t.Fatalf("disable of a user without 2FA: %v", err)
		}
		if calls := h.take(); len(calls) != 0 {
			t.Errorf("a refused disable ran the hook: %+v", calls)
		}
	})
}

func TestChangeHookPerBatch(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		h := &hookRecorder{}
		e := hookedEnv(t, db, h)
		users := addUsers(t, e, 7) // 10 users
		failInsertsFor(t, db, users[5].ID)
		enrs := make([]*models.Enrollment, len(users))
		for i, u := range users {
			var err error
			if enrs[i], err = e.svc.NewEnrollment(u, models.Params{}); err != nil {
				t.Fatal(err)
			}
		}
		var failed []int
		err := e.svc.EnrollMany(e.ctx, db.Gorm, enrs, models.EnrollOptions{}, models.BulkOptions{BatchSize: 4}, func(i int, _ models.EnrollResult, err error) {
			if err != nil {
				failed = append(failed, i)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(failed) != "[5]" {
			t.Fatalf("failed users %v, want [5]", failed)
		}
		calls := h.take()
		if len(calls) != 3 {
			t.Fatalf("%d hook calls for 3 batches: %+v", len(calls), calls)
		}
		var got []string
		for _, c := range calls {
			var ids []string
			for _, ev := range c {
				ids = append(ids, ev.UserID)
			}
			got = append(got, strings.Join(ids, ","))
		}
		var want []string
		for _, b := range [][]models.User{users[0:4], {users[4], users[6], users[7]}, users[8:10]} {
			want = append(want, strings.Join(userIDsOf(b), ","))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("hook calls by user id %v, want %v (the refused user in none)", got, want)
		}

		// skip-enrolled re-run: nothing changes, nothing is announced.
		for i, u := range users {
			enrs[i], _ = e.svc.NewEnrollment(u, models.Params{})
		}
		err = e.svc.EnrollMany(e.ctx, db.Gorm, enrs[:5], models.EnrollOptions{SkipEnrolled: true}, models.BulkOptions{}, func(int, models.EnrollResult, error) {})
		if err != nil {
			t.Fatal(err)
		}
		if calls := h.take(); len(calls) != 0 {
			t.Errorf("a skip-enrolled re-run that changed nothing announced %+v", calls)
		}
	})
}

func userIDsOf(users []models.User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}

func TestChangeHookFailureKeepsTheChange(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, tc := range []struct {
			err     error
			outcome string
		}{
			{errors.New("exit 3"), "failed: exit 3"},
			{fmt.Errorf("killed after 10s: %w", context.DeadlineExceeded), "timed out"},
		} {
			db.Exec(t, "DELETE FROM totp_audit_log")
			h := &hookRecorder{fail: tc.err}
			e := hookedEnv(t, db, h)
			bob := e.enroll("bob", true)
			if err := e.svc.Disable(e.ctx, db.Gorm, bob.user, "lost phone"); err != nil {
				t.Fatalf("disable with a failing hook: %v", err)
			}
			if n := db.Count(t, "totp_credentials", "user_id = ?", bob.user.ID); n != 0 {
				t.Errorf("the hook's failure undid the disable: %d credentials", n)
			}
			var hooks []auditRow
			for _, r := range e.audit() {
				if r.Action == models.ActionOnChange {
					hooks = append(hooks, r)
				}
			}
			if len(hooks) != 2 || hooks[0].Reason.String != "after enroll" || hooks[1].Reason.String != "after disable" ||
				hooks[1].Outcome != tc.outcome || hooks[1].UserID != bob.user.ID || hooks[1].UserLogin != "bob" {
				t.Errorf("on-change audit rows %+v, want one after enroll and one after disable, outcome %q", hooks, tc.outcome)
			}
			h.take()
		}
	})
}

func TestChangeHookRotateKeyAndCallerTransaction(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		h := &hookRecorder{}
		e := hookedEnv(t, db, h)
		e.enroll("alice", true)
		e.enroll("bob", true)
		e.enroll("carol", true)
		h.take()
		text, err := models.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		newKey, err := models.ParseKey(text)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.RotateKey(e.ctx, db.Gorm, newKey, 2, nil); err != nil {
			t.Fatal(err)
		}
		calls := h.take()
		if len(calls) != 2 || len(calls[0]) != 1 || calls[0][0].Action != models.ActionRotateKey ||
			!strings.HasPrefix(calls[0][0].Outcome, "re-encrypted 2 secrets") || calls[0][0].UserID != "" {
			t.Errorf("rotate-key in batches of 2 over 3 secrets announced %+v", calls)
		}

		// In the caller's transaction nothing is committed when totpadm's
		// part ends: no hook (the caller, who commits, knows).
		carol := e.user("carol")
		err = db.Gorm.Transaction(func(tx *gorm.DB) error {
			return e.svc.Disable(e.ctx, tx, carol, "in a transaction")
		})
		if err != nil {
			t.Fatal(err)
		}
		if calls := h.take(); len(calls) != 0 {
			t.Errorf("a change inside the caller's transaction ran the hook: %+v", calls)
		}
	})
}
