package commands_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

// auditEvent is one action of the audit fixture, in the order performed.
type auditEvent struct {
	at     time.Duration // after statusT0
	action string
	login  string
	id     string
}

// auditEvents are written oldest first by auditFixture; the audit log
// lists them newest first.
var auditEvents = []auditEvent{
	{0, "enroll", "alice", "1"},
	{1 * time.Minute, "enroll", "bob", "2"},
	{2 * time.Minute, "verify", "alice", "1"},       // TOTP, activates
	{3 * time.Minute, "verify", "alice", "1"},       // backup code
	{4 * time.Minute, "backup-codes", "alice", "1"}, // regenerate
	{5 * time.Minute, "disable", "bob", "2"},
	{6 * time.Minute, "unlock", "alice", "1"},
}

const auditReason = "left company, ticket 77"

// auditSecrets are what must never reach the audit log.
type auditSecrets struct {
	values []string
}

func (s *auditSecrets) add(v ...string) { s.values = append(s.values, v...) }

// auditFixture performs auditEvents and returns every secret, backup code
// and TOTP code that was shown or typed along the way.
func auditFixture(t *testing.T, db *testutil.DB) *auditSecrets {
	t.Helper()
	at := func(i int) time.Time { return statusT0.Add(auditEvents[i].at) }
	var s auditSecrets
	alice := statusEnrollAt(t, db, "alice", at(0))
	bob := statusEnrollAt(t, db, "bob", at(1))
	for _, e := range []testutil.Enrolled{alice, bob} {
		s.add(e.Secret, strings.ToLower(e.Secret))
		for _, c := range e.BackupCodes {
			s.add(c, strings.ReplaceAll(c, "-", ""))
		}
	}
	code := testutil.Code(t, alice.Secret, at(2))
	s.add(code)
	if r := statusVerifyAt(t, db, "alice", code, at(2)); r.Code != 0 {
		t.Fatalf("verify alice: exit %d, %q", r.Code, r.Stderr)
	}
	if r := statusVerifyAt(t, db, "alice", alice.BackupCodes[3], at(3)); r.Code != 0 {
		t.Fatalf("verify alice backup code: exit %d, %q", r.Code, r.Stderr)
	}
	r := statusRunAt(t, at(4), db.Args("-o", "json", "backup-codes", "alice")...)
	rows := backupCodesParseJSON(t, r.Stdout)
	if r.Code != 0 || len(rows) != 1 || len(rows[0].BackupCodes) != 10 {
		t.Fatalf("backup-codes alice: exit %d, %q", r.Code, r.Stdout)
	}
	for _, c := range rows[0].BackupCodes {
		s.add(c, strings.ReplaceAll(c, "-", ""))
	}
	if r := statusRunAt(t, at(5), db.Args("disable", "--yes", "--reason", auditReason, "bob")...); r.Code != 0 {
		t.Fatalf("disable bob: exit %d, %q", r.Code, r.Stderr)
	}
	if r := statusRunAt(t, at(6), db.Args("unlock", "alice")...); r.Code != 0 {
		t.Fatalf("unlock alice: exit %d, %q", r.Code, r.Stderr)
	}
	return &s
}

// auditNewestFirst returns the indexes of auditEvents, newest first.
func auditNewestFirst(idx ...int) []int {
	out := append([]int(nil), idx...)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// auditExpected renders events as at/action/login/user_id rows.
func auditExpected(idx []int) [][]string {
	var rows [][]string
	for _, i := range idx {
		e := auditEvents[i]
		rows = append(rows, []string{statusT0.Add(e.at).Format(time.RFC3339), e.action, e.login, e.id})
	}
	return rows
}

var auditColumnNames = []string{"at", "actor", "host", "action", "user_id", "login", "outcome", "reason"}

func TestAuditListAndFilters(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		auditFixture(t, db)
		now := statusT0.Add(10 * time.Minute)
		all := []int{0, 1, 2, 3, 4, 5, 6}
		for _, tc := range []struct {
			name string
			args []string
			want []int // indexes into auditEvents, oldest first
		}{
			{"everything", nil, all},
			{"user argument", []string{"alice"}, []int{0, 2, 3, 4, 6}},
			{"--user flag", []string{"--user", "alice"}, []int{0, 2, 3, 4, 6}},
			{"same user both ways", []string{"--user", "bob", "bob"}, []int{1, 5}},
			{"user by id", []string{"id:2"}, []int{1, 5}},
			{"user without entries", []string{"carol"}, nil},
			{"action verify", []string{"--action", "verify"}, []int{2, 3}},
			{"action disable", []string{"--action", "disable"}, []int{5}},
			{"action backup-codes", []string{"--action", "backup-codes"}, []int{4}},
			{"since a duration", []string{"--since", "5m30s"}, []int{5, 6}},
			{"since a duration, inclusive", []string{"--since", "10m"}, all},
			{"since RFC 3339", []string{"--since", "2031-03-14T12:02:30Z"}, []int{3, 4, 5, 6}},
			{"since RFC 3339 in another zone", []string{"--since", "2031-03-14T13:02:30+01:00"}, []int{3, 4, 5, 6}},
			{"since a date", []string{"--since", "2031-03-14"}, all},
			{"since a later date", []string{"--since", "2031-03-15"}, nil},
			{"limit", []string{"--limit", "2"}, []int{5, 6}},
			{"limit 0 is all", []string{"--limit", "0"}, all},
			{"combined", []string{"--action", "verify", "--limit", "1", "alice"}, []int{3}},
			{"flags after the user", []string{"alice", "--action", "verify", "--limit", "1"}, []int{3}},
			{"user and since, inclusive", []string{"--since", "7m", "alice"}, []int{3, 4, 6}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"-o", "json", "audit"}, tc.args...)
				res := statusRunAt(t, now, db.Args(args...)...)
				if res.Code != 0 || res.Stderr != "" {
					t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
				}
				var got [][]string
				for _, r := range statusJSONLines(t, res.Stdout) {
					got = append(got, []string{statusText(r["at"]), statusText(r["action"]), statusText(r["login"]), statusText(r["user_id"])})
					if statusText(r["actor"]) != "tester" || statusText(r["host"]) != "testhost" {
						t.Errorf("entry %v: actor/host not tester/testhost", r)
					}
				}
				want := auditExpected(auditNewestFirst(tc.want...))
				if len(got) != 0 || len(want) != 0 {
					if !reflect.DeepEqual(got, want) {
						t.Errorf("\n got %q\nwant %q", got, want)
					}
				}
			})
		}
	})
}

func TestAuditFormatsAndContent(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		secrets := auditFixture(t, db)
		now := statusT0.Add(10 * time.Minute)

		jsonOut := statusRunAt(t, now, db.Args("-o", "json", "audit")...)
		csvOut := statusRunAt(t, now, db.Args("-o", "csv", "audit")...)
		tableOut := statusRunAt(t, now, db.Args("audit")...)
		for _, r := range []testutil.Result{jsonOut, csvOut, tableOut} {
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("audit: exit %d, stderr %q", r.Code, r.Stderr)
			}
		}

		// JSON: every column, newest first, with the disable reason.
		objs := statusJSONLines(t, jsonOut.Stdout)
		if len(objs) != len(auditEvents) {
			t.Fatalf("json: %d entries, want %d", len(objs), len(auditEvents))
		}
		for _, o := range objs {
			if len(o) != len(auditColumnNames) {
				t.Errorf("json entry keys %v, want %v", o, auditColumnNames)
			}
			for _, c := range auditColumnNames {
				if _, ok := o[c]; !ok {
					t.Errorf("json entry %v lacks %q", o, c)
				}
			}
		}
		if o := objs[1]; statusText(o["action"]) != "disable" || statusText(o["reason"]) != auditReason || statusText(o["outcome"]) != "disabled" {
			t.Errorf("disable entry %v: want reason %q and outcome disabled", o, auditReason)
		}
		if o := objs[4]; statusText(o["action"]) != "verify" || !strings.HasPrefix(statusText(o["outcome"]), "ok") {
			t.Errorf("verify entry %v: want an ok outcome", o)
		}

		// CSV: header, then the same rows as JSON.
		recs := statusCSV(t, csvOut.Stdout)
		if len(recs) != len(auditEvents)+1 || !reflect.DeepEqual(recs[0], auditColumnNames) {
			t.Fatalf("csv: %q", csvOut.Stdout)
		}
		for i, rec := range recs[1:] {
			for j, c := range auditColumnNames {
				if rec[j] != statusText(objs[i][c]) {
					t.Errorf("csv row %d column %s = %q, json has %q", i, c, rec[j], statusText(objs[i][c]))
				}
			}
		}

		// Table: upper-case header and one line per entry, newest first.
		lines := strings.Split(strings.TrimRight(tableOut.Stdout, "\n"), "\n")
		if len(lines) != len(auditEvents)+1 {
			t.Fatalf("table: %q", tableOut.Stdout)
		}
		if h := strings.Fields(lines[0]); len(h) != len(auditColumnNames) || h[0] != "AT" || h[3] != "ACTION" || h[7] != "REASON" {
			t.Errorf("table header %q", lines[0])
		}
		if !strings.HasPrefix(lines[1], statusT0.Add(6*time.Minute).Format(time.RFC3339)) || !strings.Contains(lines[1], "unlock") {
			t.Errorf("table: first entry %q, want the unlock at T0+6m", lines[1])
		}
		if !strings.Contains(lines[2], auditReason) {
			t.Errorf("table: disable entry %q lacks the reason", lines[2])
		}

		// No secret, backup code or TOTP code anywhere in the log.
		dump := db.Dump(t)
		start := strings.Index(dump, "== totp_audit_log")
		end := strings.Index(dump, "== totp_schema_version")
		if start < 0 || end < start {
			t.Fatalf("dump has no audit log section:\n%s", dump)
		}
		logTable := dump[start:end]
		if strings.Count(logTable, "\n") != len(auditEvents)+1 {
			t.Errorf("audit table has %d lines, want %d:\n%s", strings.Count(logTable, "\n"), len(auditEvents)+1, logTable)
		}
		if len(secrets.values) < 40 {
			t.Fatalf("fixture collected only %d secrets", len(secrets.values))
		}
		for _, s := range secrets.values {
			for name, text := range map[string]string{"json": jsonOut.Stdout, "csv": csvOut.Stdout, "table": tableOut.Stdout, "totp_audit_log table": logTable} {
				if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
					t.Errorf("%s contains the secret %q", name, s)
				}
			}
		}
	})
}

func TestAuditErrors(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusEnrollAt(t, db, "alice", statusT0)
		for _, tc := range []struct {
			name     string
			args     []string
			wantCode int
			stderr   string
		}{
			{"since words", []string{"audit", "--since", "yesterday"}, 2, "yesterday"},
			// --action takes one of a closed set, like status --state: a
			// typo must not pass for "nothing happened".
			{"unknown action", []string{"audit", "--action", "disabled"}, 2, "disabled"},
			{"unknown action enrol", []string{"audit", "--action", "enrol"}, 2, "enrol"},
			{"since negative duration", []string{"audit", "--since", "-5m"}, 2, "-5m"},
			{"since bad date", []string{"audit", "--since", "2031-13-01"}, 2, "2031-13-01"},
			{"since number without unit", []string{"audit", "--since", "24"}, 2, "24"},
			{"negative limit", []string{"audit", "--limit", "-1"}, 2, "--limit"},
			{"limit not a number", []string{"audit", "--limit", "ten"}, 2, "ten"},
			{"two users", []string{"audit", "alice", "bob"}, 2, "USER"},
			{"user and --user disagree", []string{"audit", "--user", "bob", "alice"}, 2, "disagree"},
			{"user and a later --user disagree", []string{"audit", "alice", "--user", "bob"}, 2, "disagree"},
			{"invalid user reference", []string{"audit", "id:"}, 2, "id:"},
			{"unknown user", []string{"audit", "nobody"}, 3, "nobody"},
			{"unknown user id", []string{"audit", "id:99"}, 3, "99"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := db.Dump(t)
				res := statusRunAt(t, statusT0.Add(time.Minute), db.Args(tc.args...)...)
				if res.Code != tc.wantCode {
					t.Errorf("exit %d, want %d (stderr %q)", res.Code, tc.wantCode, res.Stderr)
				}
				statusOneErrorLine(t, res.Stderr)
				if !strings.Contains(res.Stderr, tc.stderr) {
					t.Errorf("stderr %q lacks %q", res.Stderr, tc.stderr)
				}
				if res.Stdout != "" {
					t.Errorf("stdout %q, want nothing", res.Stdout)
				}
				if after := db.Dump(t); after != before {
					t.Errorf("database changed")
				}
			})
		}
	})
}

// Entries written within the same clock tick still list newest first.
func TestAuditSameInstant(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusEnrollAt(t, db, "alice", statusT0)
		for _, args := range [][]string{{"unlock", "alice"}, {"backup-codes", "alice"}, {"disable", "--yes", "--reason", "r", "alice"}} {
			if r := statusRunAt(t, statusT0, db.Args(args...)...); r.Code != 0 {
				t.Fatalf("%v: exit %d, %q", args, r.Code, r.Stderr)
			}
		}
		res := statusRunAt(t, statusT0, db.Args("-o", "json", "audit")...)
		var got []string
		for _, r := range statusJSONLines(t, res.Stdout) {
			got = append(got, statusText(r["action"]))
		}
		if want := []string{"disable", "backup-codes", "unlock", "enroll"}; !reflect.DeepEqual(got, want) {
			t.Errorf("audit order %v, want %v", got, want)
		}
	})
}

// A reason is free text typed by a person; in the table it cannot carry
// raw escape sequences to the next reader's terminal.
func TestAuditTerminalEscapesInReason(t *testing.T) {
	const reason = "ticket 1\x1b[2J\x1b]0;owned\x07 done"
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		statusEnrollAt(t, db, "alice", statusT0)
		if r := statusRunAt(t, statusT0, db.Args("disable", "--yes", "--reason", reason, "alice")...); r.Code != 0 {
			t.Fatalf("disable: exit %d, %q", r.Code, r.Stderr)
		}
		table := statusRunAt(t, statusT0, db.Args("audit", "--action", "disable")...)
		if table.Code != 0 || strings.ContainsAny(table.Stdout, "\x1b\x07") || !strings.Contains(table.Stdout, "ticket 1") {
			t.Errorf("audit table: exit %d, %q", table.Code, table.Stdout)
		}
		js := statusRunAt(t, statusT0, db.Args("-o", "json", "audit", "--action", "disable")...)
		if rows := statusJSONLines(t, js.Stdout); len(rows) != 1 || statusText(rows[0]["reason"]) != reason {
			t.Errorf("audit json does not carry the reason exactly: %q", js.Stdout)
		}
	})
}

// A reason, an actor and a login are typed by people; in audit -o csv and
// in a bulk command's per-user CSV results none of them reaches a
// spreadsheet as a formula.
func TestAuditCSVSafeForSpreadsheets(t *testing.T) {
	const reason = `=HYPERLINK("http://evil.example","ticket")`
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		db.Exec(t, "INSERT INTO users (id, username) VALUES (7, '@mallory')")
		statusEnrollAt(t, db, "id:7", statusT0)
		res := statusRunAt(t, statusT0, db.Args("-o", "csv", "--actor", "+ops", "disable", "--yes", "--reason", reason, "--", "@mallory", "-nobody")...)
		if res.Code != 3 {
			t.Fatalf("disable: exit %d, %q", res.Code, res.Stderr)
		}
		recs := statusCSV(t, res.Stdout)
		if len(recs) != 3 || recs[1][0] != "'@mallory" || recs[1][1] != "'@mallory" || recs[1][3] != "disabled" || recs[2][0] != "'-nobody" {
			t.Errorf("disable -o csv: %q", recs)
		}
		res = statusRunAt(t, statusT0, db.Args("-o", "csv", "audit", "--action", "disable")...)
		recs = statusCSV(t, res.Stdout)
		if res.Code != 0 || len(recs) != 2 {
			t.Fatalf("audit: exit %d, %q", res.Code, res.Stdout)
		}
		got := map[string]string{}
		for i, col := range recs[0] {
			got[col] = recs[1][i]
		}
		if got["reason"] != "'"+reason || got["actor"] != "'+ops" || got["login"] != "'@mallory" || got["user_id"] != "7" {
			t.Errorf("audit -o csv row %q", got)
		}
	})
}
