package commands

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/totpadm/totpadm/models"
)

// colRow is a row type of its own, to test the column machinery apart
// from status.
type colRow struct {
	name  string
	state string
	n     int
	ok    bool
	at    *time.Time
	extra int
}

// colSpec has a column of every kind, an optional one and one whose JSON
// key is too long to be held inline.
var colSpec = []column[colRow]{
	textColumn("name", func(r *colRow) string { return r.name }),
	wordColumn("state", func(r *colRow) string { return r.state }).
		inTable(func(r *colRow) string { return strings.Replace(r.state, "off", stateNotEnrolled, 1) }).coloured(),
	intColumn("n", func(r *colRow) int { return r.n }),
	boolColumn("ok", func(r *colRow) bool { return r.ok }),
	timeColumn("at", func(r *colRow) *time.Time { return r.at }),
	intColumn("a_column_name_longer_than_inline", func(r *colRow) int { return r.extra }).
		when(func(run *columnContext) bool { return run.store.DeviceCounts }),
}

func writeColRows(t *testing.T, format string, run columnContext, opts tableOptions, rows []colRow) string {
	t.Helper()
	var out bytes.Buffer
	cw := newColumnWriter(format, &out, columnsFor(colSpec, &run), opts)
	for i := range rows {
		if err := cw.write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestColumnWriter: one specification gives the same columns, in the same
// order, in every format; an optional column appears in all three or in
// none; each kind is quoted by its format.
func TestColumnWriter(t *testing.T) {
	at := time.Date(2031, 3, 14, 12, 0, 0, 0, time.FixedZone("X", 3600))
	rows := []colRow{
		{name: "=cmd,\"x\"\n", state: "enabled", n: 12, ok: true, at: &at, extra: 3},
		{name: "", state: "off", n: -1},
	}
	for _, tc := range []struct {
		name  string
		run   columnContext
		names []string
	}{
		{"without the optional column", columnContext{}, []string{"name", "state", "n", "ok", "at"}},
		{"with it", columnContext{store: models.StoreInfo{DeviceCounts: true}}, []string{"name", "state", "n", "ok", "at", "a_column_name_longer_than_inline"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// JSON: keys in spec order, each kind its JSON type.
			js := writeColRows(t, formatJSON, tc.run, tableOptions{}, rows)
			lines := strings.Split(strings.TrimSuffix(js, "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("JSON: want 2 lines, got %q", js)
			}
			var keys []string
			dec := json.NewDecoder(strings.NewReader(lines[0]))
			dec.Token()
			for dec.More() {
				k, _ := dec.Token()
				keys = append(keys, k.(string))
				var v any
				dec.Decode(&v)
			}
			if strings.Join(keys, " ") != strings.Join(tc.names, " ") {
				t.Errorf("JSON keys %v, want %v", keys, tc.names)
			}
			var first, second map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
				t.Fatal(err)
			}
			if first["name"] != rows[0].name || first["state"] != "enabled" || first["n"] != 12.0 || first["ok"] != true || first["at"] != "2031-03-14T11:00:00Z" {
				t.Errorf("JSON first row %v", first)
			}
			if second["at"] != nil || second["n"] != -1.0 || second["ok"] != false {
				t.Errorf("JSON second row %v", second)
			}

			// CSV: the header is the same names; text neutralised and
			// quoted, numbers and times as they are.
			cs := writeColRows(t, formatCSV, tc.run, tableOptions{}, rows)
			recs, err := csv.NewReader(strings.NewReader(cs)).ReadAll()
			if err != nil {
				t.Fatalf("CSV %q: %v", cs, err)
			}
			if strings.Join(recs[0], " ") != strings.Join(tc.names, " ") {
				t.Errorf("CSV header %v, want %v", recs[0], tc.names)
			}
			if got := recs[1][:5]; strings.Join(got, "|") != "'"+rows[0].name+"|enabled|12|true|2031-03-14T11:00:00Z" {
				t.Errorf("CSV first row %q", got)
			}
			if got := recs[2][:5]; strings.Join(got, "|") != "|off|-1|false|" {
				t.Errorf("CSV second row %q", got)
			}
			if empty := writeColRows(t, formatCSV, tc.run, tableOptions{}, nil); empty != cs[:strings.IndexByte(cs, '\n')+1] {
				t.Errorf("CSV of no rows %q, want the header alone", empty)
			}

			// Table: the same names upper-cased; "-" for none, the
			// table's own word, terminal-safe text.
			tb := writeColRows(t, formatTable, tc.run, tableOptions{}, rows)
			tl := strings.Split(strings.TrimSuffix(tb, "\n"), "\n")
			if strings.Join(strings.Fields(tl[0]), " ") != strings.ToUpper(strings.Join(tc.names, " ")) {
				t.Errorf("table header %q, want %v", tl[0], tc.names)
			}
			if got := strings.Fields(tl[2])[:5]; strings.Join(got, " ") != "- not-enrolled -1 false -" {
				t.Errorf("table second row %q", got)
			}
			if !strings.HasPrefix(tl[1], `=cmd,\"x\"\n  enabled  `) {
				t.Errorf("table first row %q: want the name escaped", tl[1])
			}
			rel := writeColRows(t, formatTable, tc.run, tableOptions{color: true, now: at.Add(-time.Hour)}, rows[:1])
			if !strings.Contains(rel, "\x1b[32menabled\x1b[0m") || !strings.Contains(rel, "in 1 h") {
				t.Errorf("coloured relative table %q", rel)
			}
		})
	}
}

// status writes its word columns as they are, without escaping or
// quoting: every word they can hold must need neither.
func TestStatusWordsNeedNoQuoting(t *testing.T) {
	for _, c := range statusSpec {
		if c.kind != cellWord {
			continue
		}
		for _, s := range models.StatusStates {
			row := models.StatusRow{State: s}
			v := c.text(&row)
			if q := string(appendJSONString(nil, v)); q != `"`+v+`"` {
				t.Errorf("%s %q needs JSON escaping: %s", c.name, v, q)
			}
			if q := string(appendCSVField(nil, v)); q != v {
				t.Errorf("%s %q needs CSV quoting: %s", c.name, v, q)
			}
		}
	}
}
