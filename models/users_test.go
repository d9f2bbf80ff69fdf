package models_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
)

// peopleTable creates a users table without a unique login, whose login
// column compares case-insensitively on every backend (NOCASE, an ICU
// non-deterministic collation, MySQL's default _ci collation), holding
// rows in order: (1 alice) (2 Alice) (3 bob) (4 bob) (5 Carol) (6 dave).
func peopleTable(t *testing.T, db *testutil.DB) models.UsersTable {
	t.Helper()
	switch db.Backend {
	case "sqlite":
		db.Exec(t, `CREATE TABLE people (id INTEGER PRIMARY KEY, login TEXT COLLATE NOCASE)`)
	case "postgres":
		db.Exec(t, `CREATE COLLATION IF NOT EXISTS totpadm_test_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`)
		db.Exec(t, `CREATE TABLE people (id INTEGER PRIMARY KEY, login TEXT COLLATE totpadm_test_ci)`)
	case "mysql":
		db.Exec(t, `CREATE TABLE people (id INTEGER PRIMARY KEY, login VARCHAR(64) COLLATE utf8mb4_general_ci)`)
	}
	for i, login := range []string{"alice", "Alice", "bob", "bob", "Carol", "dave"} {
		db.Exec(t, "INSERT INTO people (id, login) VALUES (?, ?)", i+1, login)
	}
	return models.UsersTable{Table: "people", IDColumn: "id", LoginColumn: "login"}
}

// Every reference resolves by one rule, in a batch as alone: a login as
// the database compares it, an id exactly as stored, and a reference that
// matches several rows is refused with their ids.
func TestLookupUsersOneRule(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		svc := e.service(func(c *models.Config) { c.Users = peopleTable(t, db) })
		tests := []struct {
			ref       string
			id        string   // the one user found
			ambiguous []string // or the candidates
		}{
			{ref: "alice", ambiguous: []string{"1", "2"}},
			{ref: "ALICE", ambiguous: []string{"1", "2"}},
			{ref: "bob", ambiguous: []string{"3", "4"}},
			{ref: "carol", id: "5"}, // only through the collation
			{ref: "Carol", id: "5"},
			{ref: "dave", id: "6"},
			{ref: "nobody"},
			{ref: "id:2", id: "2"},
			{ref: "id:6", id: "6"},
			{ref: "id:01"},
			{ref: "id:+1"},
			{ref: "id:1.0"},
			{ref: "id: 1"},
			{ref: "id:1 "},
			{ref: "id:0x1"},
			{ref: "id:1e0"},
			{ref: "id:99"},
			{ref: "id:x"},
		}
		refs := make([]models.UserRef, len(tests))
		for i, tc := range tests {
			ref, err := models.ParseUserRef(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			refs[i] = ref
		}
		users, errs, err := svc.LookupUsers(e.ctx, db.Gorm, refs)
		if err != nil {
			t.Fatal(err)
		}
		for i, tc := range tests {
			alone, aloneErr := svc.LookupUser(e.ctx, db.Gorm, refs[i])
			if alone != users[i] || (aloneErr == nil) != (errs[i] == nil) {
				t.Errorf("%q: alone %+v, %v; in a batch %+v, %v: the two must agree", tc.ref, alone, aloneErr, users[i], errs[i])
			}
			switch {
			case tc.id != "":
				if errs[i] != nil || users[i].ID != tc.id {
					t.Errorf("%q = %+v, %v; want id %s", tc.ref, users[i], errs[i], tc.id)
				}
			case tc.ambiguous != nil:
				var amb *models.AmbiguousUserError
				if !errors.As(errs[i], &amb) || !errors.Is(errs[i], models.ErrAmbiguousUser) {
					t.Errorf("%q = %+v, %v; want ambiguous between %v", tc.ref, users[i], errs[i], tc.ambiguous)
					continue
				}
				got := slices.Clone(amb.IDs)
				slices.Sort(got)
				if !slices.Equal(got, tc.ambiguous) || users[i] != (models.User{}) {
					t.Errorf("%q: candidates %v (user %+v), want %v and no user", tc.ref, amb.IDs, users[i], tc.ambiguous)
				}
				for _, id := range tc.ambiguous {
					if !strings.Contains(errs[i].Error(), id) || !strings.Contains(errs[i].Error(), "id:N") {
						t.Errorf("%q: message %q must list id %s and say to use id:N", tc.ref, errs[i], id)
					}
				}
			default:
				if !errors.Is(errs[i], models.ErrUserNotFound) || users[i] != (models.User{}) {
					t.Errorf("%q = %+v, %v; want ErrUserNotFound", tc.ref, users[i], errs[i])
				}
			}
		}
	})
}

// A batch larger than one query's chunk resolves every reference, the
// ambiguous ones included, exactly as the references alone do.
func TestLookupUsersAcrossChunks(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db)
		svc := e.service(func(c *models.Config) { c.Users = peopleTable(t, db) })
		var refs []models.UserRef
		for i := 0; i < 1200; i++ {
			refs = append(refs, models.UserRef{Value: "ghost" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)})
		}
		refs = append(refs, models.UserRef{Value: "ALICE"}, models.UserRef{Value: "dave"}, models.UserRef{ByID: true, Value: "5"})
		users, errs, err := svc.LookupUsers(e.ctx, db.Gorm, refs)
		if err != nil {
			t.Fatal(err)
		}
		n := len(refs)
		if !errors.Is(errs[n-3], models.ErrAmbiguousUser) || users[n-2].ID != "6" || users[n-1].Login != "Carol" {
			t.Errorf("after 1200 unknown logins: ALICE %v, dave %+v, id:5 %+v", errs[n-3], users[n-2], users[n-1])
		}
		for i := 0; i < n-3; i++ {
			if !errors.Is(errs[i], models.ErrUserNotFound) {
				t.Fatalf("%q: %v, want not found", refs[i], errs[i])
			}
		}
	})
}
