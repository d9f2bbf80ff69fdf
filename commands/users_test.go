package commands_test

import (
	"strings"
	"testing"

	"github.com/totpadm/totpadm/internal/testutil"
)

// A list file saved by a Windows editor starts with a byte-order mark; the
// first user is still found.
func TestFromFileByteOrderMark(t *testing.T) {
	db := testutil.NewSQLite(t)
	res := testutil.Run(t, testutil.Options{Stdin: "\ufeffalice\nbob\n"}, db.Args("-o", "csv", "status", "--from-file", "-")...)
	if res.Code != 0 || strings.Count(res.Stdout, "\n") != 3 {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
}
