package commands

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/models"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/status_golden.txt from the current output")

// goldenRows are status rows with every column populated, and cells chosen
// to break each format: spreadsheet formula prefixes, quotes, commas and
// line breaks, invalid UTF-8, terminal escapes (C0, C1 as a raw byte, bidi
// overrides, line separators), leading spaces, PostgreSQL's \. and wide
// characters that a table must align by display width.
func goldenRows() []models.StatusRow {
	t0 := time.Date(2031, 3, 14, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := t0.Add(d); return &t }
	est := time.FixedZone("EST", -5*3600) // times are always written in UTC
	inEST := t0.Add(-26 * time.Hour).In(est)
	return []models.StatusRow{
		{User: models.User{ID: "1", Login: "alice", Email: "alice@example.com", Protected: true},
			State: models.StatusEnabled, BackupCodesLeft: 9, EnrolledAt: at(-72 * time.Hour), LastUsedAt: at(-3 * time.Minute),
			Failures: 2, TempCodeUntil: at(12 * time.Minute)},
		{User: models.User{ID: "2", Login: "bob", Email: ""},
			State: models.StatusPending, BackupCodesLeft: 10, EnrolledAt: &inEST},
		{User: models.User{ID: "3", Login: "carol", Email: "carol@example.com"},
			State: models.StatusLocked, BackupCodesLeft: 10, EnrolledAt: at(-time.Hour), LastUsedAt: at(-50 * time.Minute),
			Failures: 5, LockedUntil: at(13*time.Minute + 30*time.Second), TempCodeUntil: at(-time.Second)},
		{User: models.User{ID: "10", Login: "dave", Email: "dave@example.com"}, State: models.StatusDisabled},
		{User: models.User{ID: "=1+2", Login: "+SUM(A1)", Email: "-x@example.com", Protected: true},
			State: models.StatusEnabled, BackupCodesLeft: 1, EnrolledAt: at(-48 * time.Hour), LastUsedAt: at(0),
			Failures: 0, LockedUntil: at(-time.Minute), TempCodeUntil: at(3 * time.Hour)},
		{User: models.User{ID: "@5", Login: "\t=tab", Email: "\r=cr"}, State: models.StatusDisabled},
		{User: models.User{ID: "'6", Login: "'quoted", Email: "=HYPERLINK(\"http://x\",\"y\")"}, State: models.StatusDisabled},
		{User: models.User{ID: "7", Login: "line\nbreak,comma", Email: "cr\r\nlf\"q\""}, State: models.StatusPending,
			EnrolledAt: at(-time.Minute)},
		{User: models.User{ID: "8", Login: "bad\xff\xfeutf8", Email: "=\xff"}, State: models.StatusDisabled},
		{User: models.User{ID: "9", Login: "mallory\x1b]0;pwned\x07\x1b[2J", Email: "csi\x9b31m@x\u202eevil\u2028sep\u2029"},
			State: models.StatusLocked, Failures: 7, EnrolledAt: at(-time.Hour), LockedUntil: at(time.Hour), TempCodeUntil: at(time.Hour)},
		{User: models.User{ID: "11", Login: " leading", Email: `\.`}, State: models.StatusDisabled},
		{User: models.User{ID: "12", Login: "日本語ユーザー", Email: "e\u0301mile👩‍💻@example.com", Protected: true},
			State: models.StatusEnabled, BackupCodesLeft: 0, EnrolledAt: at(-30 * 24 * time.Hour), LastUsedAt: at(-90 * time.Second)},
		{User: models.User{ID: "13", Login: "", Email: "\u00a0nbsp"}, State: models.StatusDisabled},
		{User: models.User{ID: "14", Login: "zero\u200bwidth\ufeff", Email: "tab\tinside,\"and\"\\back"}, State: models.StatusDisabled},
	}
}

// goldenCases are the listings TestStatusGolden pins: every format, with
// and without the optional protected column, the table also coloured and
// with relative times, and each empty.
var goldenCases = []struct {
	name, format     string
	protected, color bool
	relative, empty  bool
}{
	{name: "csv", format: formatCSV},
	{name: "csv protected", format: formatCSV, protected: true},
	{name: "csv empty", format: formatCSV, empty: true},
	{name: "csv protected empty", format: formatCSV, protected: true, empty: true},
	{name: "json", format: formatJSON},
	{name: "json protected", format: formatJSON, protected: true},
	{name: "json empty", format: formatJSON, protected: true, empty: true},
	{name: "table", format: formatTable},
	{name: "table protected", format: formatTable, protected: true},
	{name: "table protected colour relative", format: formatTable, protected: true, color: true, relative: true},
	{name: "table relative", format: formatTable, relative: true},
	{name: "table empty", format: formatTable, empty: true},
	{name: "table protected empty", format: formatTable, protected: true, empty: true},
}

func goldenOptions(protected, color, relative bool) statusOptions {
	opts := statusOptions{columns: columnContext{config: models.DefaultConfig()}, color: color}
	if protected {
		opts.columns.config.Users.ProtectedColumn = "is_protected"
	}
	if relative {
		opts.now = time.Date(2031, 3, 14, 12, 0, 0, 0, time.UTC)
	}
	return opts
}

func renderStatus(t testing.TB, format string, opts statusOptions, rows []models.StatusRow) []byte {
	t.Helper()
	var out bytes.Buffer
	sw := newStatusWriter(format, &out, opts)
	for i := range rows {
		if err := sw.write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestStatusGolden pins every byte status writes, in every format, for
// rows with every column populated and hostile cells, and — by checksum —
// for 1,200 ordinary rows, more than one table batch. The golden file was
// written by the hand-coded renderer that the column specification
// replaced; `go test -run TestStatusGolden -update ./commands` rewrites it
// after an intended change.
func TestStatusGolden(t *testing.T) {
	var got bytes.Buffer
	for _, c := range goldenCases {
		rows := goldenRows()
		if c.empty {
			rows = nil
		}
		fmt.Fprintf(&got, "=== %s\n", c.name)
		got.Write(renderStatus(t, c.format, goldenOptions(c.protected, c.color, c.relative), rows))
	}
	many := benchStatusRows(1200)
	for i := range many {
		many[i].Protected = i%7 == 0
		if i%13 == 0 {
			until := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
			many[i].TempCodeUntil = &until
		}
	}
	for _, c := range goldenCases {
		if c.empty {
			continue
		}
		out := renderStatus(t, c.format, goldenOptions(c.protected, c.color, c.relative), many)
		fmt.Fprintf(&got, "=== %s, 1200 rows: %d bytes, sha256 %x\n", c.name, len(out), sha256.Sum256(out))
	}

	path := filepath.Join("testdata", "status_golden.txt")
	if *updateGolden {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		gl, wl := strings.SplitAfter(got.String(), "\n"), strings.SplitAfter(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("status output differs from %s at line %d:\n got  %q\n want %q", path, i+1, g, w)
			}
		}
		t.Fatalf("status output differs from %s", path)
	}
}

// BenchmarkStatusWriter renders 10,000 rows per op the way `totpadm
// status` does (the status writer, not the generic record writer), with
// the protected column mapped, to io.Discard.
func BenchmarkStatusWriter(b *testing.B) {
	rows := benchStatusRows(10000)
	for _, format := range []string{formatCSV, formatJSON, formatTable} {
		b.Run(format, func(b *testing.B) {
			opts := goldenOptions(true, false, false)
			b.ReportAllocs()
			for b.Loop() {
				sw := newStatusWriter(format, io.Discard, opts)
				for i := range rows {
					if err := sw.write(&rows[i]); err != nil {
						b.Fatal(err)
					}
				}
				if err := sw.flush(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
		})
	}
}
