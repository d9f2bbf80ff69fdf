package commands_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/internal/testutil"
)

var backupCodesPattern = regexp.MustCompile(`[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}`)

// backupCodesLineRE is a line holding exactly one code, as a person reads
// it off the terminal.
var backupCodesLineRE = regexp.MustCompile(`^\s*[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}\s*$`)

// backupCodesJSON is one `backup-codes -o json` result.
type backupCodesJSON struct {
	User        string   `json:"user"`
	Login       string   `json:"login"`
	ID          string   `json:"id"`
	Outcome     string   `json:"outcome"`
	Error       string   `json:"error"`
	BackupCodes []string `json:"backup_codes"`
}

func backupCodesParseJSON(t *testing.T, out string) []backupCodesJSON {
	t.Helper()
	var res []backupCodesJSON
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r backupCodesJSON
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		res = append(res, r)
	}
	return res
}

func backupCodesDistinct(t *testing.T, codes []string) {
	t.Helper()
	if len(codes) != 10 {
		t.Fatalf("got %d codes, want 10: %q", len(codes), codes)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !backupCodesLineRE.MatchString(c) {
			t.Errorf("code %q is not xxxx-xxxx-xxxx", c)
		}
		if seen[c] {
			t.Errorf("code %q printed twice", c)
		}
		seen[c] = true
	}
}

// backupCodesEnabled enrolls alice and activates her enrollment at T0+1m,
// so that backup codes are accepted by verify.
func backupCodesEnabled(t *testing.T, db *testutil.DB) testutil.Enrolled {
	t.Helper()
	alice := statusEnrollAt(t, db, "alice", statusT0)
	statusActivate(t, db, "alice", alice.Secret, statusT0.Add(time.Minute))
	return alice
}

func TestBackupCodesRegenerateTable(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := backupCodesEnabled(t, db)
		// One old code used, so that regeneration restores a full set.
		if res := statusVerifyAt(t, db, "alice", alice.BackupCodes[9], statusT0.Add(2*time.Minute)); res.Code != 0 {
			t.Fatalf("verify old backup code: exit %d, %q", res.Code, res.Stderr)
		}

		res := statusRunAt(t, statusT0.Add(3*time.Minute), db.Args("backup-codes", "alice")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("backup-codes alice: exit %d, stderr %q", res.Code, res.Stderr)
		}
		codes := backupCodesPattern.FindAllString(res.Stdout, -1)
		backupCodesDistinct(t, codes)

		// A person reads the codes one per line, without escape sequences.
		var perLine []string
		for _, line := range strings.Split(res.Stdout, "\n") {
			if backupCodesLineRE.MatchString(line) {
				perLine = append(perLine, strings.TrimSpace(line))
			}
		}
		if !reflect.DeepEqual(perLine, codes) {
			t.Errorf("backup-codes (table) does not print one code per line; got lines %q from output:\n%s", perLine, res.Stdout)
		}
		if strings.Contains(res.Stdout, `\n`) {
			t.Errorf("backup-codes (table) output contains a literal \\n escape instead of a line break:\n%s", res.Stdout)
		}

		for _, old := range alice.BackupCodes[:9] {
			if strings.Contains(res.Stdout, old) {
				t.Errorf("an old code %q was printed again", old)
			}
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ? AND used_at IS NULL", "1"); n != 10 {
			t.Errorf("unused backup codes after regeneration = %d, want 10", n)
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ?", "1"); n != 10 {
			t.Errorf("backup code rows after regeneration = %d, want 10 (old rows must be gone)", n)
		}

		// Old codes, used or not, no longer work; new ones do, once each.
		at := statusT0.Add(4 * time.Minute)
		if r := statusVerifyAt(t, db, "alice", alice.BackupCodes[0], at); r.Code != 1 {
			t.Errorf("verify an old unused code: exit %d, want 1 (stderr %q)", r.Code, r.Stderr)
		}
		if r := statusVerifyAt(t, db, "alice", alice.BackupCodes[9], at); r.Code != 1 {
			t.Errorf("verify an old used code: exit %d, want 1", r.Code)
		}
		if r := statusVerifyAt(t, db, "alice", codes[0], at); r.Code != 0 {
			t.Errorf("verify a new code: exit %d, want 0 (stderr %q)", r.Code, r.Stderr)
		}
		if r := statusVerifyAt(t, db, "alice", strings.ToUpper(strings.ReplaceAll(codes[1], "-", " ")), at); r.Code != 0 {
			t.Errorf("verify a new code typed in upper case with spaces: exit %d, want 0 (stderr %q)", r.Code, r.Stderr)
		}
		if r := statusVerifyAt(t, db, "alice", codes[0], at); r.Code != 1 {
			t.Errorf("verify a new code a second time: exit %d, want 1", r.Code)
		}

		if n := db.Count(t, "totp_audit_log", "action = ? AND user_id = ? AND outcome = ? AND actor = ?", "backup-codes", "1", "regenerated", "tester"); n != 1 {
			t.Errorf("audit rows for the regeneration = %d, want 1", n)
		}
	})
}

func TestBackupCodesJSON(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		alice := backupCodesEnabled(t, db)
		res := statusRunAt(t, statusT0.Add(2*time.Minute), db.Args("-o", "json", "backup-codes", "id:1")...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
		results := backupCodesParseJSON(t, res.Stdout)
		if len(results) != 1 {
			t.Fatalf("want one JSON object, got %q", res.Stdout)
		}
		r := results[0]
		if r.User != "id:1" || r.Login != "alice" || r.ID != "1" || r.Outcome != "regenerated" || r.Error != "" {
			t.Errorf("result %+v", r)
		}
		backupCodesDistinct(t, r.BackupCodes)
		for _, c := range r.BackupCodes {
			for _, old := range alice.BackupCodes {
				if c == old {
					t.Errorf("new code %q equals an old one", c)
				}
			}
		}
		at := statusT0.Add(3 * time.Minute)
		if v := statusVerifyAt(t, db, "alice", alice.BackupCodes[0], at); v.Code != 1 {
			t.Errorf("old code: exit %d, want 1", v.Code)
		}
		if v := statusVerifyAt(t, db, "alice", r.BackupCodes[5], at); v.Code != 0 {
			t.Errorf("new code: exit %d, want 0 (%q)", v.Code, v.Stderr)
		}
	})
}

func TestBackupCodesFailures(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		backupCodesEnabled(t, db) // alice enrolled; bob and carol not
		for _, tc := range []struct {
			name     string
			args     []string
			wantCode int
			stderr   string
		}{
			{"not enrolled", []string{"backup-codes", "bob"}, 3, "bob"},
			{"not enrolled by id", []string{"backup-codes", "id:3"}, 3, "not enrolled"},
			{"unknown user", []string{"backup-codes", "nobody"}, 3, "nobody"},
			{"no user", []string{"backup-codes"}, 2, "USER"},
			{"invalid ref stops everything", []string{"backup-codes", "alice", "id:"}, 2, "id:"},
			{"missing from-file", []string{"backup-codes", "--from-file", "/nonexistent/users.txt"}, 2, "users.txt"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := db.Dump(t)
				res := statusRunAt(t, statusT0.Add(2*time.Minute), db.Args(tc.args...)...)
				if res.Code != tc.wantCode {
					t.Errorf("exit %d, want %d (stderr %q)", res.Code, tc.wantCode, res.Stderr)
				}
				statusOneErrorLine(t, res.Stderr)
				if !strings.Contains(res.Stderr, tc.stderr) {
					t.Errorf("stderr %q does not mention %q", res.Stderr, tc.stderr)
				}
				if backupCodesPattern.MatchString(res.Stdout) {
					t.Errorf("codes printed on failure: %q", res.Stdout)
				}
				if after := db.Dump(t); after != before {
					t.Errorf("database changed:\n%s\n---\n%s", before, after)
				}
			})
		}
	})
}

func TestBackupCodesBulkPartialFailure(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		backupCodesEnabled(t, db)
		res := statusRunAt(t, statusT0.Add(2*time.Minute), db.Args("-o", "json", "backup-codes", "alice", "bob", "nobody")...)
		if res.Code != 3 {
			t.Errorf("exit %d, want 3", res.Code)
		}
		if n := strings.Count(res.Stderr, "\n"); n != 2 || strings.Count(res.Stderr, "totpadm: ") != 2 {
			t.Errorf("want one stderr line per failed user, got %q", res.Stderr)
		}
		results := backupCodesParseJSON(t, res.Stdout)
		if len(results) != 3 {
			t.Fatalf("want 3 results, got %q", res.Stdout)
		}
		want := []struct{ user, outcome string }{{"alice", "regenerated"}, {"bob", "not enrolled"}, {"nobody", "not found"}}
		for i, w := range want {
			if results[i].User != w.user || results[i].Outcome != w.outcome {
				t.Errorf("result %d = %+v, want user %s outcome %s", i, results[i], w.user, w.outcome)
			}
			if (w.outcome == "regenerated") != (results[i].Error == "") {
				t.Errorf("result %d error %q", i, results[i].Error)
			}
		}
		backupCodesDistinct(t, results[0].BackupCodes)
		if len(results[1].BackupCodes) != 0 || len(results[2].BackupCodes) != 0 {
			t.Errorf("failed users got codes: %+v", results[1:])
		}
		// alice's regeneration stands although later users failed.
		if v := statusVerifyAt(t, db, "alice", results[0].BackupCodes[0], statusT0.Add(3*time.Minute)); v.Code != 0 {
			t.Errorf("alice's new code: exit %d, want 0", v.Code)
		}
		if n := db.Count(t, "totp_backup_codes", "user_id = ?", "2"); n != 0 {
			t.Errorf("bob has %d backup codes, want 0", n)
		}
	})
}
