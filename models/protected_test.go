package models_test

import (
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// TestProtectedColumnRead: the protected-account column is read with every
// user, in every column type an application uses for it.
func TestProtectedColumnRead(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "ALTER TABLE users ADD COLUMN is_admin INTEGER")
		db.Exec(t, "ALTER TABLE users ADD COLUMN role_flag TEXT")
		db.Exec(t, "UPDATE users SET is_admin = 1, role_flag = 'Yes' WHERE username = 'alice'")
		db.Exec(t, "UPDATE users SET is_admin = 0, role_flag = 'no' WHERE username = 'bob'")
		for _, col := range []string{"is_admin", "role_flag"} {
			e := newEnv(t, db, func(c *models.Config) { c.Users.ProtectedColumn = col })
			if !e.user("alice").Protected || e.user("bob").Protected || e.user("carol").Protected {
				t.Errorf("%s: alice %v bob %v carol %v; want only alice protected", col,
					e.user("alice").Protected, e.user("bob").Protected, e.user("carol").Protected)
			}
			seen := 0
			if err := e.svc.EachStatus(e.ctx, db.Gorm, "", func(r models.StatusRow) error {
				if r.Protected != (r.Login == "alice") {
					t.Errorf("%s: EachStatus %s protected %v", col, r.Login, r.Protected)
				}
				seen++
				return nil
			}); err != nil || seen == 0 {
				t.Errorf("%s: EachStatus: %v, %d rows", col, err, seen)
			}
		}
		if newEnv(t, db).user("alice").Protected {
			t.Error("protected without a mapped column")
		}
	})
}

func TestIsTruthy(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "TRUE": true, "t": true, "1": true, "yes": true, " y ": true, "on": true,
		"false": false, "f": false, "0": false, "": false, "no": false, "2": false} {
		if got := models.IsTruthy(v); got != want {
			t.Errorf("IsTruthy(%q) = %v, want %v", v, got, want)
		}
	}
}
