package models_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// addUsers inserts n more users (user1, user2, …) and returns all users.
func addUsers(t *testing.T, e *env, n int) []models.User {
	t.Helper()
	for i := range n {
		e.db.Exec(t, "INSERT INTO users (username) VALUES (?)", "user"+strconv.Itoa(i+1))
	}
	var users []models.User
	err := e.svc.EachStatus(e.ctx, e.db.Gorm, "", func(r models.StatusRow) error {
		users = append(users, r.User)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != n+3 {
		t.Fatalf("%d users, want %d", len(users), n+3)
	}
	return users
}

// failInsertsFor makes the database itself refuse credentials for one
// user id, so that one user of a batch fails for real.
func failInsertsFor(t *testing.T, db *testutil.DB, userID string) {
	t.Helper()
	switch db.Backend {
	case "sqlite":
		db.Exec(t, `CREATE TRIGGER refuse BEFORE INSERT ON totp_credentials WHEN NEW.user_id = '`+userID+`'
BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`)
	case "postgres":
		db.Exec(t, `CREATE FUNCTION refuse() RETURNS trigger AS $$
BEGIN IF NEW.user_id = '`+userID+`' THEN RAISE EXCEPTION 'refused by test trigger'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`)
		db.Exec(t, `CREATE TRIGGER refuse BEFORE INSERT ON totp_credentials FOR EACH ROW EXECUTE FUNCTION refuse()`)
	case "mysql":
		db.Exec(t, `CREATE TRIGGER refuse BEFORE INSERT ON totp_credentials FOR EACH ROW
BEGIN IF NEW.user_id = '`+userID+`' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by test trigger'; END IF; END`)
	default:
		t.Fatalf("no refusing trigger for %s", db.Backend)
	}
}

func TestLookupUsers(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		inputs := []string{"alice", "id:2", "nobody", "id:abc", "alice", "id:99", "carol", "id:3"}
		refs := make([]models.UserRef, len(inputs))
		for i, in := range inputs {
			var err error
			if refs[i], err = models.ParseUserRef(in); err != nil {
				t.Fatal(err)
			}
		}
		users, errs, err := e.svc.LookupUsers(e.ctx, db.Gorm, refs)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"alice", "bob", "", "", "alice", "", "carol", "carol"}
		for i, w := range want {
			if w == "" {
				if !errors.Is(errs[i], models.ErrUserNotFound) {
					t.Errorf("%q: %+v, %v; want ErrUserNotFound", inputs[i], users[i], errs[i])
				}
				continue
			}
			if errs[i] != nil || users[i].Login != w {
				t.Errorf("%q: %+v, %v; want %s", inputs[i], users[i], errs[i], w)
			}
			// The same answer as one lookup at a time.
			one, err := e.svc.LookupUser(e.ctx, db.Gorm, refs[i])
			if err != nil || one != users[i] {
				t.Errorf("%q: LookupUsers gives %+v, LookupUser %+v, %v", inputs[i], users[i], one, err)
			}
		}
	})
}

func TestEnrollMany(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		users := addUsers(t, e, 7) // 10 users
		e.enroll("bob", true)      // already enrolled
		failInsertsFor(t, db, users[5].ID)
		before := e.cred(users[1].ID)

		// Users 0..9, with alice twice (the second must see the first).
		list := append(append([]models.User{}, users...), users[0])
		enrs := make([]*models.Enrollment, len(list))
		for i, u := range list {
			var err error
			if enrs[i], err = e.svc.NewEnrollment(u, models.Params{}); err != nil {
				t.Fatal(err)
			}
		}
		type result struct {
			res models.EnrollResult
			err error
		}
		got := map[int]result{}
		var order []int
		err := e.svc.EnrollMany(e.ctx, db.Gorm, enrs, models.EnrollOptions{}, models.BulkOptions{BatchSize: 4}, func(i int, res models.EnrollResult, err error) {
			got[i] = result{res, err}
			order = append(order, i)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(order) != len(list) {
			t.Fatalf("done called %d times for %d enrollments", len(order), len(list))
		}
		for k, i := range order {
			if i != k {
				t.Fatalf("done called in order %v, want input order", order)
			}
		}
		for i, u := range list {
			r := got[i]
			switch {
			case i == 1: // bob
				if !errors.Is(r.err, models.ErrAlreadyEnrolled) {
					t.Errorf("bob: %v, want ErrAlreadyEnrolled", r.err)
				}
			case i == 5: // refused by the database
				if r.err == nil || errors.Is(r.err, models.ErrAlreadyEnrolled) {
					t.Errorf("%s: %v, want the database's refusal", u, r.err)
				}
			case i == len(list)-1: // alice again
				if !errors.Is(r.err, models.ErrAlreadyEnrolled) {
					t.Errorf("alice listed twice: second result %v, want ErrAlreadyEnrolled", r.err)
				}
			default:
				if r.err != nil || r.res.State != models.StatePending || len(r.res.BackupCodes) != 10 {
					t.Errorf("%s: %+v, %v; want pending with 10 codes", u, r.res, r.err)
				}
			}
		}
		// Each user whole or not at all.
		for i, u := range users {
			creds := db.Count(t, "totp_credentials", "user_id = ?", u.ID)
			codes := db.Count(t, "totp_backup_codes", "user_id = ?", u.ID)
			enrolls := db.Count(t, "totp_audit_log", "user_id = ? AND action = ?", u.ID, models.ActionEnroll)
			wantCreds, wantEnrolls := 1, 1
			if i == 5 {
				wantCreds, wantEnrolls = 0, 0
			}
			if creds != wantCreds || codes != 10*wantCreds || enrolls != wantEnrolls {
				t.Errorf("%s: %d credentials, %d codes, %d enroll audit rows; want %d, %d, %d",
					u, creds, codes, enrolls, wantCreds, 10*wantCreds, wantEnrolls)
			}
		}
		if after := e.cred(users[1].ID); after.LastStep != before.LastStep || after.State != before.State || string(after.Secret) != string(before.Secret) {
			t.Error("bob's existing enrollment was changed")
		}
		// The saved secrets are the enrollments' own.
		for _, i := range []int{0, 2, 9} {
			en := enrolled{user: list[i], secret: decodeB32(t, enrs[i].Secret()), params: enrs[i].Params}
			e.mustVerify(en, e.code(en, 0))
			if _, err := e.verify(en, got[i].res.BackupCodes[0]); err != nil {
				t.Errorf("%s: backup code from EnrollMany: %v", list[i], err)
			}
		}

		// Re-run with SkipEnrolled: everyone already enrolled is skipped,
		// the refused user still fails.
		e.clock.Advance(30 * time.Second)
		dumpBefore := withoutAudit(db.Dump(t))
		skipped := 0
		err = e.svc.EnrollMany(e.ctx, db.Gorm, enrs[:len(users)], models.EnrollOptions{SkipEnrolled: true}, models.BulkOptions{BatchSize: 3}, func(i int, res models.EnrollResult, err error) {
			switch {
			case i == 5:
				if err == nil {
					t.Errorf("refused user succeeded on re-run")
				}
			case err != nil || !res.Skipped || res.BackupCodes != nil:
				t.Errorf("%s on re-run: %+v, %v; want skipped, no codes", list[i], res, err)
			default:
				skipped++
			}
		})
		if err != nil || skipped != len(users)-1 {
			t.Errorf("re-run: %d skipped, %v", skipped, err)
		}
		if after := withoutAudit(db.Dump(t)); after != dumpBefore {
			t.Errorf("a re-run with SkipEnrolled changed enrollments:\nbefore:\n%s\nafter:\n%s", dumpBefore, after)
		}
	})
}

// TestDisableManyRequiresReason: like Disable, a blank reason is refused
// before anything is written.
func TestDisableManyRequiresReason(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", true)
		for _, reason := range []string{"", "  \t"} {
			before := db.Dump(t)
			called := false
			err := e.svc.DisableMany(e.ctx, db.Gorm, []models.User{alice.user}, reason, models.BulkOptions{}, func(int, error) { called = true })
			if !errors.Is(err, models.ErrReasonRequired) || called {
				t.Errorf("DisableMany with reason %q: %v (done called: %v), want ErrReasonRequired as Disable gives", reason, err, called)
			}
			e.assertUnchanged(before, "DisableMany with reason "+strconv.Quote(reason))
		}
	})
}

func TestDisableMany(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		users := addUsers(t, e, 3)
		for _, i := range []int{0, 2, 4} {
			e.enroll(users[i].Login, true)
		}
		results := make([]error, len(users))
		err := e.svc.DisableMany(e.ctx, db.Gorm, users, "offboarding", models.BulkOptions{BatchSize: 2}, func(i int, err error) { results[i] = err })
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range users {
			enrolled := i == 0 || i == 2 || i == 4
			switch {
			case enrolled && results[i] != nil:
				t.Errorf("%s: %v", u, results[i])
			case !enrolled && !errors.Is(results[i], models.ErrNotEnrolled):
				t.Errorf("%s: %v, want ErrNotEnrolled", u, results[i])
			}
			if n := db.Count(t, "totp_credentials", "user_id = ?", u.ID) + db.Count(t, "totp_backup_codes", "user_id = ?", u.ID); n != 0 {
				t.Errorf("%s: %d rows left", u, n)
			}
			wantAudit := 0
			if enrolled {
				wantAudit = 1
			}
			if n := db.Count(t, "totp_audit_log", "user_id = ? AND action = ? AND reason = ?", u.ID, models.ActionDisable, "offboarding"); n != wantAudit {
				t.Errorf("%s: %d disable audit rows with the reason, want %d", u, n, wantAudit)
			}
		}
	})
}

func TestRegenerateAndUnlockMany(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		alice := e.enroll("alice", true)
		carol := e.enroll("carol", true)
		e.lockOut(carol)
		users := []models.User{alice.user, e.user("bob"), carol.user}

		fresh := make([][]string, len(users))
		errs := make([]error, len(users))
		err := e.svc.RegenerateMany(e.ctx, db.Gorm, users, models.BulkOptions{}, func(i int, codes []string, err error) {
			fresh[i], errs[i] = codes, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(errs[1], models.ErrNotEnrolled) || fresh[1] != nil {
			t.Errorf("bob: %v, %v; want ErrNotEnrolled and no codes", fresh[1], errs[1])
		}
		if errs[0] != nil || errs[2] != nil || len(fresh[0]) != 10 || len(fresh[2]) != 10 {
			t.Fatalf("regenerate: %v %v, %d and %d codes", errs[0], errs[2], len(fresh[0]), len(fresh[2]))
		}
		if _, err := e.verify(alice, alice.codes[0]); !errors.Is(err, models.ErrCodeRejected) {
			t.Errorf("old code after RegenerateMany: %v, want rejected", err)
		}
		if _, err := e.verify(alice, fresh[0][0]); err != nil {
			t.Errorf("new code after RegenerateMany: %v", err)
		}

		was := make([]bool, len(users))
		err = e.svc.UnlockMany(e.ctx, db.Gorm, users, models.BulkOptions{}, func(i int, w bool, err error) {
			was[i], errs[i] = w, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if errs[0] != nil || was[0] || !errors.Is(errs[1], models.ErrNotEnrolled) || errs[2] != nil || !was[2] {
			t.Errorf("UnlockMany: was locked %v, errors %v; want alice not locked, bob not enrolled, carol unlocked", was, errs)
		}
		if c := e.cred(carol.user.ID); c.Failures != 0 || c.LockedUntil != nil {
			t.Errorf("carol after UnlockMany: %+v", c)
		}
		if _, err := e.verify(carol, fresh[2][0]); err != nil {
			t.Errorf("carol's new code after unlock: %v", err)
		}
	})
}

// withoutAudit drops the audit log's section from a testutil dump.
func withoutAudit(dump string) string {
	head, rest, _ := strings.Cut(dump, "== totp_audit_log")
	_, tail, _ := strings.Cut(rest, "== totp_schema_version")
	return head + tail
}
