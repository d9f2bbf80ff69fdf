package models_test

import (
	"os"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// An application that names users by id alone, and sets no host, still
// gets audit rows with the login and where the action came from.
func TestAuditRowsCarryLoginAndHostForIDOnlyCallers(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		en := e.enroll("alice", true)
		app := e.service(func(c *models.Config) { c.Host = "" })
		if _, err := app.Verify(e.ctx, db.Gorm, models.User{ID: en.user.ID}, e.wrong(en)); err == nil {
			t.Fatal("a wrong code was accepted")
		}
		host, _ := os.Hostname()
		var rows []struct{ UserLogin, Host string }
		if err := db.Gorm.Raw("SELECT user_login, host FROM totp_audit_log WHERE action = 'verify'").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].UserLogin != "alice" || rows[0].Host != host {
			t.Errorf("audit rows %+v, want one for login alice from host %q", rows, host)
		}
	})
}
