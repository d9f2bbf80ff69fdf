package models_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/totpadm/totpadm/config"
	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

func grantsName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// grantedRole creates a login role, runs the SQL models.Grants prints for
// it as the administrator, and returns a way to connect as that role
// (MariaDB applies database-wide grants and default roles at login). The
// role (and any group role the test adds, listed in groups) is dropped
// when the test ends.
func grantedRole(t *testing.T, db *testutil.DB, groups *[]string) (name string, connect func() *gorm.DB) {
	t.Helper()
	ctx := context.Background()
	admin := db.Gorm
	name = grantsName(t, "totpadm_rewrite_")
	create, drop := "CREATE ROLE "+name+" LOGIN", []string{"DROP OWNED BY " + name, "DROP ROLE " + name}
	if db.Backend == "mysql" {
		create, drop = "CREATE USER '"+name+"'@'%'", []string{"DROP USER '" + name + "'@'%'"}
	}
	if err := admin.Exec(create).Error; err != nil {
		t.Fatalf("%s: %v", create, err)
	}
	t.Cleanup(func() {
		for _, g := range *groups {
			if db.Backend == "postgres" {
				admin.Exec("DROP OWNED BY " + g)
			}
			admin.Exec("DROP ROLE " + g)
		}
		for _, s := range drop {
			admin.Exec(s)
		}
	})
	tables, _ := models.TablesWithPrefix(models.DefaultTablePrefix)
	plan, err := models.Grants(ctx, admin, tables, models.DefaultUsersTable, models.GrantOptions{Role: name})
	if err != nil {
		t.Fatalf("Grants: %v", err)
	}
	err = admin.Connection(func(c *gorm.DB) error {
		for _, s := range plan.Statements {
			if err := c.Exec(s).Error; err != nil {
				return errors.New(s + ": " + err.Error())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("run the grants: %v", err)
	}
	u, err := url.Parse(db.Spec)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(name)
	target, err := config.ParseTarget(u.String())
	if err != nil {
		t.Fatal(err)
	}
	return name, func() *gorm.DB {
		conn, err := config.Open(ctx, target, config.OpenOptions{})
		if err != nil {
			t.Fatalf("connect as %s: %v", name, err)
		}
		t.Cleanup(func() { config.Close(conn) })
		return conn
	}
}

// TestCanRewriteAuditLog: a role set up by Grants cannot rewrite the audit
// log; every further way to change or remove its rows is reported,
// however the role came to hold it.
func TestCanRewriteAuditLog(t *testing.T) {
	ctx := context.Background()
	tables, _ := models.TablesWithPrefix(models.DefaultTablePrefix)
	cases := []struct {
		name    string
		backend string
		sql     []string // run as the administrator; {r} the role, {g} a group role, {db} the database
		want    []string // among the rights reported
	}{
		{name: "granted", backend: "postgres"},
		{name: "granted", backend: "mysql"},
		{name: "column UPDATE", backend: "postgres", sql: []string{"GRANT UPDATE (reason) ON totp_audit_log TO {r}"}, want: []string{"UPDATE"}},
		{name: "column UPDATE", backend: "mysql", sql: []string{"GRANT UPDATE (reason) ON totp_audit_log TO '{r}'@'%'"}, want: []string{"UPDATE"}},
		{name: "DELETE", backend: "postgres", sql: []string{"GRANT DELETE ON totp_audit_log TO {r}"}, want: []string{"DELETE"}},
		{name: "TRUNCATE", backend: "postgres", sql: []string{"GRANT TRUNCATE ON totp_audit_log TO {r}"}, want: []string{"TRUNCATE"}},
		{name: "TRIGGER", backend: "postgres", sql: []string{"GRANT TRIGGER ON totp_audit_log TO {r}"}, want: []string{"TRIGGER"}},
		{name: "TRIGGER", backend: "mysql", sql: []string{"GRANT TRIGGER ON {db}.totp_audit_log TO '{r}'@'%'"}, want: []string{"TRIGGER"}},
		{name: "DELETE through a group", backend: "postgres", sql: []string{
			"CREATE ROLE {g}", "GRANT DELETE ON totp_audit_log TO {g}", "GRANT {g} TO {r}",
		}, want: []string{"DELETE"}},
		{name: "DELETE through a group it must SET ROLE to", backend: "postgres", sql: []string{
			"ALTER ROLE {r} NOINHERIT", "CREATE ROLE {g}", "GRANT DELETE ON totp_audit_log TO {g}", "GRANT {g} TO {r}",
		}, want: []string{"DELETE"}},
		{name: "owner", backend: "postgres", sql: []string{"ALTER TABLE totp_audit_log OWNER TO {r}"}, want: []string{"owner"}},
		{name: "DELETE through a default role", backend: "mysql", sql: []string{
			"CREATE ROLE {g}", "GRANT DELETE ON {db}.totp_audit_log TO {g}", "GRANT {g} TO '{r}'@'%'", "SET DEFAULT ROLE {g} FOR '{r}'@'%'",
		}, want: []string{"DELETE"}},
		{name: "UPDATE on the database", backend: "mysql", sql: []string{"GRANT UPDATE ON {db}.* TO '{r}'@'%'"}, want: []string{"UPDATE"}},
		{name: "DROP on the database", backend: "mysql", sql: []string{"GRANT DROP ON {db}.* TO '{r}'@'%'"}, want: []string{"DROP"}},
		{name: "ALTER everywhere", backend: "mysql", sql: []string{"GRANT ALTER ON *.* TO '{r}'@'%'"}, want: []string{"ALTER"}},
	}
	for _, backend := range []struct {
		name  string
		newDB func(*testing.T) *testutil.DB
	}{{"postgres", testutil.NewPostgres}, {"mysql", testutil.NewMySQL}} {
		t.Run(backend.name, func(t *testing.T) {
			db := backend.newDB(t)
			var database string
			if db.Backend == "mysql" {
				db.Gorm.Raw("SELECT DATABASE()").Scan(&database)
			}
			t.Run("administrator", func(t *testing.T) {
				rights, err := models.AuditLogRewriteRights(ctx, db.Gorm, tables)
				if err != nil || len(rights) == 0 {
					t.Errorf("as the administrator: %v, %v; want rights", rights, err)
				}
			})
			for _, tc := range cases {
				if tc.backend != db.Backend {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					var groups []string
					role, connect := grantedRole(t, db, &groups)
					group := grantsName(t, "totpadm_rewrite_group_")
					for _, s := range tc.sql {
						s = strings.NewReplacer("{r}", role, "{g}", group, "{db}", database).Replace(s)
						if strings.HasPrefix(s, "CREATE ROLE") {
							groups = append(groups, group)
						}
						if err := db.Gorm.Exec(s).Error; err != nil {
							t.Fatalf("%s: %v", s, err)
						}
					}
					conn := connect()
					rights, err := models.AuditLogRewriteRights(ctx, conn, tables)
					if err != nil {
						t.Fatal(err)
					}
					for _, w := range tc.want {
						if !slices.Contains(rights, w) {
							t.Errorf("rights %v, want %s among them", rights, w)
						}
					}
					can, err := models.CanRewriteAuditLog(ctx, conn, tables)
					if err != nil || can != (len(tc.want) > 0) {
						t.Errorf("CanRewriteAuditLog = %v, %v; want %v (rights %v)", can, err, len(tc.want) > 0, rights)
					}
				})
			}
		})
	}
	t.Run("sqlite", func(t *testing.T) {
		db := testutil.NewSQLite(t)
		if _, err := models.CanRewriteAuditLog(ctx, db.Gorm, tables); !errors.Is(err, models.ErrNoRoles) {
			t.Errorf("SQLite: %v, want ErrNoRoles", err)
		}
	})
}

// TestQuoteRole: role names are quoted per dialect or refused.
func TestQuoteRole(t *testing.T) {
	for _, tc := range []struct {
		dialect, role, want string // want "" = refused
	}{
		{"postgres", "app", `"app"`},
		{"postgres", `we"ird`, `"we""ird"`},
		{"postgres", "App Admin@host", `"App Admin@host"`},
		{"postgres", "public", ""},
		{"postgres", "PUBLIC", ""},
		{"postgres", "pg_monitor", ""},
		{"postgres", strings.Repeat("x", 63), `"` + strings.Repeat("x", 63) + `"`},
		{"postgres", strings.Repeat("x", 64), ""},
		{"mysql", "app", `'app'@'%'`},
		{"mysql", "app@10.0.0.%", `'app'@'10.0.0.%'`},
		{"mysql", "me@example.com@localhost", `'me@example.com'@'localhost'`},
		{"mysql", "@localhost", ""},
		{"mysql", "app@", ""},
		{"mysql", "'app'@'%'", ""},
		{"mysql", `app\`, ""},
		{"mysql", "app`x", ""},
		{"postgres", "", ""},
		{"mysql", " ", ""},
		{"postgres", "a\x00b", ""},
		{"mysql", "a\tb", ""},
		{"postgres", "a\u0085b", ""},
		{"postgres", "a\xffb", ""},
	} {
		got, err := models.QuoteRole(tc.dialect, tc.role)
		if tc.want == "" {
			if !errors.Is(err, models.ErrInvalidRole) {
				t.Errorf("QuoteRole(%s, %q) = %q, %v; want ErrInvalidRole", tc.dialect, tc.role, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("QuoteRole(%s, %q) = %q, %v; want %q", tc.dialect, tc.role, got, err, tc.want)
		}
	}
	if _, err := models.QuoteRole("sqlite", "app"); !errors.Is(err, models.ErrNoRoles) {
		t.Errorf("QuoteRole(sqlite) = %v, want ErrNoRoles", err)
	}
	if _, err := models.QuoteRole("sqlite", ""); !errors.Is(err, models.ErrInvalidRole) {
		t.Errorf("QuoteRole(sqlite, empty) = %v, want ErrInvalidRole first", err)
	}
}

// TestGrantsCoverEveryTable: every table in models.Tables gets a grant, so
// a table added to totpadm's schema cannot be forgotten here (the role
// would fail on it, or worse, a --read-only role keep a write).
func TestGrantsCoverEveryTable(t *testing.T) {
	tables, _ := models.TablesWithPrefix("cover_")
	v := reflect.ValueOf(tables)
	for _, backend := range []struct {
		name  string
		newDB func(*testing.T) *testutil.DB
	}{{"postgres", testutil.NewPostgres}, {"mysql", testutil.NewMySQL}} {
		t.Run(backend.name, func(t *testing.T) {
			db := backend.newDB(t)
			if _, err := models.Migrate(context.Background(), db.Gorm, tables, false); err != nil {
				t.Fatal(err)
			}
			for _, readOnly := range []bool{false, true} {
				plan, err := models.Grants(context.Background(), db.Gorm, tables, models.DefaultUsersTable, models.GrantOptions{Role: "nobody", ReadOnly: readOnly})
				if err != nil {
					t.Fatal(err)
				}
				for i := range v.NumField() {
					name := v.Field(i).String()
					granted := false
					for _, s := range plan.Statements {
						granted = granted || strings.HasPrefix(s, "GRANT ") && strings.Contains(s, name+`" TO `) || strings.Contains(s, name+"` TO ")
					}
					if !granted {
						t.Errorf("read-only %v: no GRANT names %s (Tables.%s):\n%s", readOnly, name, v.Type().Field(i).Name, strings.Join(plan.Statements, "\n"))
					}
				}
			}
		})
	}
}

// TestGrantsCoverEveryMappedColumn: every column the users-table mapping
// names (UsersTable's …Column fields, a protected-account column too once
// there is one) is in the role's SELECT grant, and no other column is.
func TestGrantsCoverEveryMappedColumn(t *testing.T) {
	for _, backend := range []struct {
		name  string
		newDB func(*testing.T) *testutil.DB
	}{{"postgres", testutil.NewPostgres}, {"mysql", testutil.NewMySQL}} {
		t.Run(backend.name, func(t *testing.T) {
			db := backend.newDB(t)
			db.Exec(t, "ALTER TABLE users ADD COLUMN password_hash TEXT")
			users := models.UsersTable{Table: "users"}
			v := reflect.ValueOf(&users).Elem()
			var mapped []string
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if !strings.HasSuffix(f.Name, "Column") || f.Type.Kind() != reflect.String {
					continue
				}
				col := map[string]string{"IDColumn": "id", "LoginColumn": "username", "EmailColumn": "email"}[f.Name]
				if col == "" {
					col = "mapped_" + strings.ToLower(f.Name)
					db.Exec(t, "ALTER TABLE users ADD COLUMN "+col+" TEXT")
				}
				v.Field(i).SetString(col)
				mapped = append(mapped, col)
			}
			tables, _ := models.TablesWithPrefix(models.DefaultTablePrefix)
			plan, err := models.Grants(context.Background(), db.Gorm, tables, users, models.GrantOptions{Role: "nobody"})
			if err != nil {
				t.Fatal(err)
			}
			var grant string
			for _, s := range plan.Statements {
				if strings.HasPrefix(s, "GRANT SELECT (") {
					grant = s
				}
			}
			for _, col := range mapped {
				if !strings.Contains(grant, `"`+col+`"`) && !strings.Contains(grant, "`"+col+"`") {
					t.Errorf("mapped column %s is not in %q", col, grant)
				}
			}
			if strings.Contains(grant, "password_hash") {
				t.Errorf("an unmapped column is granted: %q", grant)
			}
		})
	}
}
