package commands_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/totpadm/totpadm/internal/testutil"
)

// statusT0 is the fixed clock every test in this package's status, backup
// codes, disable, unlock and audit files starts from. It lies in the
// future, so nothing the real clock writes can sort after it by accident.
var statusT0 = time.Date(2031, 3, 14, 12, 0, 0, 0, time.UTC)

// statusRunAt runs totpadm with the clock fixed at now.
func statusRunAt(t *testing.T, now time.Time, args ...string) testutil.Result {
	t.Helper()
	return testutil.Run(t, testutil.Options{Now: func() time.Time { return now }}, args...)
}

// statusEnrollAt enrolls login as pending with the clock fixed at now and
// returns what enroll printed (secret, backup codes).
func statusEnrollAt(t *testing.T, db *testutil.DB, login string, now time.Time) testutil.Enrolled {
	t.Helper()
	res := statusRunAt(t, now, db.Args("-o", "json", "enroll", "--no-confirm", login)...)
	if res.Code != 0 {
		t.Fatalf("enroll %s: exit %d: %s", login, res.Code, res.Stderr)
	}
	var e testutil.Enrolled
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.Stdout)), &e); err != nil {
		t.Fatalf("enroll %s: parse %q: %v", login, res.Stdout, err)
	}
	if e.Secret == "" || len(e.BackupCodes) != 10 {
		t.Fatalf("enroll %s: want a secret and 10 backup codes, got %+v", login, e)
	}
	return e
}

// statusWrongCode returns a well-formed 6-digit code that is not accepted
// for secret at time at (it differs from the codes of the steps around it).
func statusWrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	good := map[string]bool{}
	for _, d := range []time.Duration{-60 * time.Second, -30 * time.Second, 0, 30 * time.Second, 60 * time.Second} {
		good[testutil.Code(t, secret, at.Add(d))] = true
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", i*7919%1000000)
		if !good[c] {
			return c
		}
	}
}

// statusVerifyAt runs `verify login code` at time at.
func statusVerifyAt(t *testing.T, db *testutil.DB, login, code string, at time.Time) testutil.Result {
	t.Helper()
	return statusRunAt(t, at, db.Args("verify", login, code)...)
}

// statusActivate verifies the correct TOTP code at time at, which
// activates a pending enrollment.
func statusActivate(t *testing.T, db *testutil.DB, login, secret string, at time.Time) {
	t.Helper()
	if res := statusVerifyAt(t, db, login, testutil.Code(t, secret, at), at); res.Code != 0 {
		t.Fatalf("verify %s with a correct code: exit %d, stderr %q", login, res.Code, res.Stderr)
	}
}

// statusLockOut fails verification 5 times at time at, which locks the
// user until at+15m.
func statusLockOut(t *testing.T, db *testutil.DB, login, secret string, at time.Time) {
	t.Helper()
	wrong := statusWrongCode(t, secret, at)
	for i := 1; i <= 5; i++ {
		res := statusVerifyAt(t, db, login, wrong, at)
		if res.Code != 1 {
			t.Fatalf("wrong code %d for %s: exit %d, want 1 (stderr %q)", i, login, res.Code, res.Stderr)
		}
	}
}

// statusJSONLines decodes JSON-lines output into one map per line.
func statusJSONLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON object line: %q: %v", line, err)
		}
		rows = append(rows, m)
	}
	return rows
}

// statusCSV parses CSV output, header first.
func statusCSV(t *testing.T, out string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %q: %v", out, err)
	}
	return recs
}

// statusText renders a decoded JSON value the way CSV would: null is "".
func statusText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// statusOneErrorLine asserts stderr is exactly one "totpadm: " line.
func statusOneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "totpadm: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr is not exactly one line starting \"totpadm: \": %q", stderr)
	}
}

var statusColumnNames = []string{"id", "login", "email", "state", "backup_codes_left", "enrolled_at", "last_used_at", "failures", "locked_until", "temp_code_until"}

// statusFixture builds one user in each state:
//
//	id 1  alice  enabled  (activated at T0+1m, one backup code used at T0+2m)
//	id 2  bob    pending
//	id 3  carol  locked   (5 wrong codes at T0+3m: locked until T0+18m)
//	id 10 dave   disabled (id 10 sorts after 3 numerically, before 2 as text)
func statusFixture(t *testing.T, db *testutil.DB) {
	t.Helper()
	db.Exec(t, "INSERT INTO users (id, username, email) VALUES (10, 'dave', 'dave@example.com')")
	alice := statusEnrollAt(t, db, "alice", statusT0)
	statusEnrollAt(t, db, "bob", statusT0)
	carol := statusEnrollAt(t, db, "carol", statusT0)
	statusActivate(t, db, "alice", alice.Secret, statusT0.Add(time.Minute))

	// Before a backup code is used, alice has all 10.
	res := statusRunAt(t, statusT0.Add(90*time.Second), db.Args("-o", "json", "status", "alice")...)
	if rows := statusJSONLines(t, res.Stdout); res.Code != 0 || len(rows) != 1 || statusText(rows[0]["backup_codes_left"]) != "10" {
		t.Fatalf("status alice before using a backup code: exit %d, %q; want backup_codes_left 10", res.Code, res.Stdout)
	}
	if res := statusVerifyAt(t, db, "alice", alice.BackupCodes[0], statusT0.Add(2*time.Minute)); res.Code != 0 {
		t.Fatalf("verify alice with a backup code: exit %d, %q", res.Code, res.Stderr)
	}
	statusLockOut(t, db, "carol", carol.Secret, statusT0.Add(3*time.Minute))
}

func statusRFC(d time.Duration) string { return statusT0.Add(d).Format(time.RFC3339) }

// statusWant is the expected listing at T0+5m, in id order.
var statusWant = [][]string{
	{"1", "alice", "alice@example.com", "enabled", "9", statusRFC(0), statusRFC(2 * time.Minute), "0", "", ""},
	{"2", "bob", "bob@example.com", "pending", "10", statusRFC(0), "", "0", "", ""},
	{"3", "carol", "carol@example.com", "locked", "10", statusRFC(0), "", "5", statusRFC(18 * time.Minute), ""},
	{"10", "dave", "dave@example.com", "disabled", "0", "", "", "0", "", ""},
}

// statusTableWant is rows as a table shows them: state "not-enrolled"
// where JSON and CSV say "disabled".
func statusTableWant(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, row := range rows {
		out[i] = slices.Clone(row)
		if out[i][3] == "disabled" {
			out[i][3] = "not-enrolled"
		}
	}
	return out
}

func statusWantRows(logins ...string) [][]string {
	var out [][]string
	for _, l := range logins {
		for _, row := range statusWant {
			if row[1] == l {
				out = append(out, row)
			}
		}
	}
	return out
}

// statusRowsOf parses a status listing in any format into rows of text,
// checking the header (CSV, table) or keys and types (JSON) on the way.
func statusRowsOf(t *testing.T, format, out string) [][]string {
	t.Helper()
	var rows [][]string
	switch format {
	case "json":
		for _, m := range statusJSONLines(t, out) {
			if len(m) != len(statusColumnNames) {
				t.Errorf("JSON row has keys %v, want exactly %v", m, statusColumnNames)
			}
			row := make([]string, len(statusColumnNames))
			for i, c := range statusColumnNames {
				v, ok := m[c]
				if !ok {
					t.Errorf("JSON row %v lacks %q", m, c)
				}
				switch c {
				case "backup_codes_left", "failures":
					if _, isNum := v.(float64); !isNum {
						t.Errorf("JSON %s = %#v, want a number", c, v)
					}
				case "enrolled_at", "last_used_at", "locked_until", "temp_code_until":
					if _, isStr := v.(string); v != nil && !isStr {
						t.Errorf("JSON %s = %#v, want a string or null", c, v)
					}
				}
				row[i] = statusText(v)
			}
			rows = append(rows, row)
		}
	case "csv":
		recs := statusCSV(t, out)
		if len(recs) == 0 || !reflect.DeepEqual(recs[0], statusColumnNames) {
			t.Fatalf("CSV header: got %v, want %v (output %q)", recs, statusColumnNames, out)
		}
		rows = recs[1:]
	case "table":
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		want := make([]string, len(statusColumnNames))
		for i, c := range statusColumnNames {
			want[i] = strings.ToUpper(c)
		}
		if len(lines) == 0 || !reflect.DeepEqual(strings.Fields(lines[0]), want) {
			t.Fatalf("table header: got %q, want %v", out, want)
		}
		for _, line := range lines[1:] {
			cells := strings.Fields(line)
			for i, c := range cells {
				if c == "-" {
					cells[i] = ""
				}
			}
			rows = append(rows, cells)
		}
	default:
		t.Fatalf("unknown format %q", format)
	}
	return rows
}

func TestStatusListsAllUsersInEveryFormat(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusFixture(t, db)
		now := statusT0.Add(5 * time.Minute)
		for _, format := range []string{"table", "json", "csv"} {
			t.Run(format, func(t *testing.T) {
				res := statusRunAt(t, now, db.Args("--user-email-column", "email", "-o", format, "status")...)
				if res.Code != 0 || res.Stderr != "" {
					t.Fatalf("status: exit %d, stderr %q", res.Code, res.Stderr)
				}
				got := statusRowsOf(t, format, res.Stdout)
				want := statusWant
				if format == "table" {
					// A table names a user without 2FA as disable and
					// verify do; JSON and CSV keep "disabled".
					want = statusTableWant(statusWant)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("status -o %s:\n got %q\nwant %q", format, got, want)
				}
			})
		}
	})
}

func TestStatusLockoutExpires(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		carol := statusEnrollAt(t, db, "carol", statusT0)
		statusLockOut(t, db, "carol", carol.Secret, statusT0)
		for _, tc := range []struct {
			name              string
			at                time.Duration
			state, lockedTill string
		}{
			{"during the lockout", 14 * time.Minute, "locked", statusRFC(15 * time.Minute)},
			{"after the lockout", 16 * time.Minute, "pending", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := statusRunAt(t, statusT0.Add(tc.at), db.Args("-o", "json", "status", "carol")...)
				rows := statusJSONLines(t, res.Stdout)
				if res.Code != 0 || len(rows) != 1 {
					t.Fatalf("status carol: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
				}
				if got := statusText(rows[0]["state"]); got != tc.state {
					t.Errorf("state = %q, want %q", got, tc.state)
				}
				if got := statusText(rows[0]["locked_until"]); got != tc.lockedTill {
					t.Errorf("locked_until = %q, want %q", got, tc.lockedTill)
				}
				if got := statusText(rows[0]["failures"]); got != "5" {
					t.Errorf("failures = %q, want 5", got)
				}
			})
		}
	})
}

func TestStatusFilters(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusFixture(t, db)
		now := statusT0.Add(5 * time.Minute)
		for _, tc := range []struct {
			name   string
			args   []string
			want   [][]string
			format string
		}{
			{"state enabled", []string{"status", "--state", "enabled"}, statusWantRows("alice"), "json"},
			{"state pending", []string{"status", "--state", "pending"}, statusWantRows("bob"), "json"},
			{"state locked", []string{"status", "--state", "locked"}, statusWantRows("carol"), "json"},
			{"state disabled", []string{"status", "--state", "disabled"}, statusWantRows("dave"), "json"},
			{"state locked csv", []string{"status", "--state", "locked"}, statusWantRows("carol"), "csv"},
			{"state enabled table", []string{"status", "--state", "enabled"}, statusWantRows("alice"), "table"},
			{"one user by login", []string{"status", "alice"}, statusWantRows("alice"), "json"},
			{"one user by id", []string{"status", "id:2"}, statusWantRows("bob"), "json"},
			{"id 10", []string{"status", "id:10"}, statusWantRows("dave"), "csv"},
			{"named users keep their order", []string{"status", "carol", "id:1"}, statusWantRows("carol", "alice"), "json"},
			{"named users filtered by state", []string{"status", "--state", "locked", "alice", "bob", "carol"}, statusWantRows("carol"), "json"},
			{"list alias", []string{"list"}, statusWant, "csv"},
			{"list alias with state", []string{"list", "--state", "pending"}, statusWantRows("bob"), "table"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"--user-email-column", "email", "-o", tc.format}, tc.args...)
				res := statusRunAt(t, now, db.Args(args...)...)
				if res.Code != 0 || res.Stderr != "" {
					t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
				}
				got := statusRowsOf(t, tc.format, res.Stdout)
				if len(got) == 0 && len(tc.want) == 0 {
					return
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("\n got %q\nwant %q", got, tc.want)
				}
			})
		}
	})
}

func TestStatusListAliasMatchesStatus(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusFixture(t, db)
		now := statusT0.Add(5 * time.Minute)
		for _, format := range []string{"table", "json", "csv"} {
			st := statusRunAt(t, now, db.Args("-o", format, "status")...)
			li := statusRunAt(t, now, db.Args("-o", format, "list")...)
			if st.Code != 0 || li.Code != 0 || st.Stdout != li.Stdout || st.Stdout == "" {
				t.Errorf("-o %s: status (exit %d) and list (exit %d) differ:\n%s\n%s", format, st.Code, li.Code, st.Stdout, li.Stdout)
			}
		}
	})
}

func TestStatusSummary(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusFixture(t, db)
		now := statusT0.Add(5 * time.Minute)
		for _, tc := range []struct {
			name string
			args []string
			want map[string]int
		}{
			{"all users", nil, map[string]int{"enabled": 1, "pending": 1, "disabled": 1, "locked": 1, "total": 4}},
			{"state locked", []string{"--state", "locked"}, map[string]int{"enabled": 0, "pending": 0, "disabled": 0, "locked": 1, "total": 1}},
			{"named users", []string{"alice", "bob", "id:10"}, map[string]int{"enabled": 1, "pending": 1, "disabled": 1, "locked": 0, "total": 3}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				base := append([]string{"status", "--summary"}, tc.args...)
				// JSON: one object.
				res := statusRunAt(t, now, db.Args(append([]string{"-o", "json"}, base...)...)...)
				if res.Code != 0 || res.Stderr != "" {
					t.Fatalf("json: exit %d, stderr %q", res.Code, res.Stderr)
				}
				objs := statusJSONLines(t, res.Stdout)
				if len(objs) != 1 {
					t.Fatalf("json: want one object, got %q", res.Stdout)
				}
				got := map[string]int{}
				for k, v := range objs[0] {
					n, ok := v.(float64)
					if !ok {
						t.Errorf("json %s = %#v, want a number", k, v)
					}
					got[k] = int(n)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("json summary = %v, want %v", got, tc.want)
				}

				// CSV and table: state,count rows.
				for _, format := range []string{"csv", "table"} {
					res := statusRunAt(t, now, db.Args(append([]string{"-o", format}, base...)...)...)
					if res.Code != 0 || res.Stderr != "" {
						t.Fatalf("%s: exit %d, stderr %q", format, res.Code, res.Stderr)
					}
					var recs [][]string
					if format == "csv" {
						recs = statusCSV(t, res.Stdout)
					} else {
						for _, line := range strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n") {
							recs = append(recs, strings.Fields(line))
						}
					}
					wantHeader := []string{"state", "count"}
					if format == "table" {
						wantHeader = []string{"STATE", "COUNT"}
					}
					if len(recs) == 0 || !reflect.DeepEqual(recs[0], wantHeader) {
						t.Fatalf("%s summary header: %q", format, res.Stdout)
					}
					gotRows := map[string]int{}
					for _, r := range recs[1:] {
						if len(r) != 2 {
							t.Fatalf("%s summary row %q", format, r)
						}
						n, err := strconv.Atoi(r[1])
						if err != nil {
							t.Fatalf("%s summary count %q: %v", format, r[1], err)
						}
						gotRows[r[0]] = n
					}
					want := tc.want
					if format == "table" {
						want = map[string]int{}
						for k, v := range tc.want {
							if k == "disabled" {
								k = "not-enrolled"
							}
							want[k] = v
						}
					}
					if len(recs)-1 != len(want) || !reflect.DeepEqual(gotRows, want) {
						t.Errorf("%s summary = %v (%d rows), want %v", format, gotRows, len(recs)-1, want)
					}
				}
			})
		}
	})
}

func TestStatusErrors(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusEnrollAt(t, db, "alice", statusT0)
		for _, tc := range []struct {
			name     string
			args     []string
			wantCode int
			wantOut  []string // logins printed on stdout (JSON)
			stderr   string   // substring of the one stderr line
		}{
			{"unknown login", []string{"status", "nobody"}, 3, nil, "nobody"},
			{"unknown id", []string{"status", "id:999"}, 3, nil, "999"},
			{"non-numeric id", []string{"status", "id:abc"}, 3, nil, "abc"},
			{"unknown among known", []string{"status", "alice", "nobody"}, 3, []string{"alice"}, "nobody"},
			{"unknown with summary", []string{"status", "--summary", "nobody"}, 3, nil, "nobody"},
			{"invalid state", []string{"status", "--state", "bogus"}, 2, nil, "bogus"},
			{"invalid state with list", []string{"list", "--state", "active"}, 2, nil, "active"},
			{"empty id", []string{"status", "id:"}, 2, nil, "id:"},
			{"-- ends the flags", []string{"status", "--", "--state"}, 3, nil, "--state"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := db.Dump(t)
				res := statusRunAt(t, statusT0, db.Args(append([]string{"-o", "json"}, tc.args...)...)...)
				if res.Code != tc.wantCode {
					t.Errorf("exit %d, want %d (stderr %q)", res.Code, tc.wantCode, res.Stderr)
				}
				statusOneErrorLine(t, res.Stderr)
				if !strings.Contains(res.Stderr, tc.stderr) {
					t.Errorf("stderr %q does not mention %q", res.Stderr, tc.stderr)
				}
				if strings.Contains(tc.name, "summary") {
					// The summary still counts nothing for the unknown user.
					if objs := statusJSONLines(t, res.Stdout); len(objs) != 1 || statusText(objs[0]["total"]) != "0" {
						t.Errorf("summary output %q, want one object with total 0", res.Stdout)
					}
				} else {
					var logins []string
					for _, m := range statusJSONLines(t, res.Stdout) {
						logins = append(logins, statusText(m["login"]))
					}
					if !reflect.DeepEqual(logins, tc.wantOut) {
						t.Errorf("stdout logins %v, want %v", logins, tc.wantOut)
					}
				}
				if after := db.Dump(t); after != before {
					t.Errorf("status changed the database:\n%s\n---\n%s", before, after)
				}
			})
		}
	})
}

func TestStatusEmptyResult(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		for _, tc := range []struct{ format, want string }{
			{"csv", strings.Join(statusColumnNames, ",") + "\n"},
			{"json", ""},
		} {
			res := statusRunAt(t, statusT0, db.Args("-o", tc.format, "status", "--state", "locked")...)
			if res.Code != 0 || res.Stderr != "" || res.Stdout != tc.want {
				t.Errorf("-o %s status --state locked with nobody locked: exit %d, stdout %q (want %q), stderr %q",
					tc.format, res.Code, res.Stdout, tc.want, res.Stderr)
			}
		}
	})
}

func TestStatusFromFile(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusEnrollAt(t, db, "bob", statusT0)
		res := testutil.Run(t, testutil.Options{Stdin: "# support queue\n\nid:2\ncarol\r\n", Now: func() time.Time { return statusT0 }},
			db.Args("-o", "json", "status", "--from-file", "-")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
		var got []string
		for _, r := range statusJSONLines(t, res.Stdout) {
			got = append(got, statusText(r["login"])+"="+statusText(r["state"]))
		}
		if want := []string{"bob=pending", "carol=disabled"}; !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

// A login crafted with terminal escape sequences must not reach a support
// engineer's terminal raw; JSON and CSV carry it faithfully as data.
func TestStatusTerminalEscapesInLogins(t *testing.T) {
	const evil = "mallory\x1b]0;pwned\x07\x1b[2J\tx"
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "INSERT INTO users (id, username, email) VALUES (7, ?, 'm@example.com')", evil)
		table := statusRunAt(t, statusT0, db.Args("status")...)
		if table.Code != 0 {
			t.Fatalf("status: exit %d, %q", table.Code, table.Stderr)
		}
		if strings.ContainsAny(table.Stdout, "\x1b\x07") {
			t.Errorf("table output carries raw control characters: %q", table.Stdout)
		}
		if lines := strings.Split(strings.TrimRight(table.Stdout, "\n"), "\n"); len(lines) != 5 {
			t.Errorf("table has %d lines, want a header and 4 users: %q", len(lines), table.Stdout)
		}
		js := statusRunAt(t, statusT0, db.Args("-o", "json", "status", "id:7")...)
		if rows := statusJSONLines(t, js.Stdout); len(rows) != 1 || statusText(rows[0]["login"]) != evil {
			t.Errorf("json does not carry the login exactly: %q", js.Stdout)
		}
		cs := statusRunAt(t, statusT0, db.Args("-o", "csv", "status", "id:7")...)
		if recs := statusCSV(t, cs.Stdout); len(recs) != 2 || recs[1][1] != evil {
			t.Errorf("csv does not carry the login exactly: %q", cs.Stdout)
		}
		// Named on the command line, it is found and still printed safely.
		one := statusRunAt(t, statusT0, db.Args("status", evil)...)
		if one.Code != 0 || strings.ContainsAny(one.Stdout, "\x1b\x07") || !strings.Contains(one.Stdout, "mallory") {
			t.Errorf("status <evil login>: exit %d, %q", one.Code, one.Stdout)
		}
	})
}

// Every text cell of status -o csv that a spreadsheet would evaluate (=, +,
// -, @, TAB, CR first, and ' itself) starts with a ', on the fast path
// (every user) and for named users alike; numbers and times are left as
// they are. Invalid UTF-8 (SQLite can hold it) becomes U+FFFD, so the file
// stays readable as UTF-8; the id names the user.
func TestStatusCSVSafeForSpreadsheets(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		rows := []struct{ login, email, wantLogin, wantEmail string }{
			{"=1+2", "+cmd@example.com", "'=1+2", "'+cmd@example.com"},
			{"@SUM(A1)", "-x@example.com", "'@SUM(A1)", "'-x@example.com"},
			{"\t=tab", "=HYPERLINK(\"http://x\")", "'\t=tab", "'=HYPERLINK(\"http://x\")"},
			{"\r=cr", "'quoted", "'\r=cr", "''quoted"},
			{"plain=fine", "ok@example.com", "plain=fine", "ok@example.com"},
		}
		if db.Backend == "sqlite" {
			rows = append(rows, struct{ login, email, wantLogin, wantEmail string }{"bad\xff\xfe", "=\xff", "bad\ufffd\ufffd", "'=\ufffd"})
		}
		for i, r := range rows {
			db.Exec(t, "INSERT INTO users (id, username, email) VALUES (?, ?, ?)", 10+i, r.login, r.email)
		}
		for _, args := range [][]string{{"status"}, {"status", "id:10", "id:11", "id:12", "id:13", "id:14"}} {
			res := statusRunAt(t, statusT0, db.Args(append([]string{"-o", "csv", "--user-email-column", "email"}, args...)...)...)
			if res.Code != 0 || !utf8.ValidString(res.Stdout) {
				t.Fatalf("%v: exit %d, valid UTF-8 %v: %q", args, res.Code, utf8.ValidString(res.Stdout), res.Stdout)
			}
			byID := map[string][]string{}
			for _, rec := range statusCSV(t, res.Stdout)[1:] {
				byID[rec[0]] = rec
			}
			for i, r := range rows {
				rec, ok := byID[fmt.Sprint(10+i)]
				if !ok {
					if len(args) == 1 {
						t.Errorf("%v: no row for id %d", args, 10+i)
					}
					continue
				}
				if rec[1] != r.wantLogin || rec[2] != r.wantEmail || rec[3] != "disabled" || rec[4] != "0" {
					t.Errorf("%v: id %d reads %q, want login %q email %q", args, 10+i, rec, r.wantLogin, r.wantEmail)
				}
			}
		}
	})
}
