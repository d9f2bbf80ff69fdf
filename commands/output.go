package commands

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// Output formats.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatCSV   = "csv"
)

func parseFormat(s string) (string, error) {
	switch s {
	case formatTable, formatJSON, formatCSV:
		return s, nil
	}
	return "", usagef("invalid --output %q: want table, json or csv", s)
}

// field is one named value of a record; records keep their field order in
// every format, so a CSV header and a JSON object read the same way.
type field struct {
	key   string
	value any
}

type record []field

// recordWriter writes records as an aligned table, JSON lines or CSV.
type recordWriter interface {
	write(record) error
	flush() error
}

func newRecordWriter(format string, w io.Writer, columns []string) recordWriter {
	buf := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case formatJSON:
		return &jsonWriter{w: buf}
	case formatCSV:
		return &csvWriter{w: buf, columns: columns}
	default:
		return &tableWriter{buf: buf, columns: columns}
	}
}

type jsonWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (j *jsonWriter) write(r record) error {
	b := append(j.buf[:0], '{')
	var err error
	for i, f := range r {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.key)
		b = append(b, ':')
		if b, err = appendJSONValue(b, f.value); err != nil {
			return err
		}
	}
	b = append(b, '}', '\n')
	j.buf = b
	_, err = j.w.Write(b)
	return err
}

func (j *jsonWriter) flush() error { return j.w.Flush() }

type csvWriter struct {
	w       *bufio.Writer
	columns []string
	started bool
	buf     []byte
}

func (c *csvWriter) header() error {
	if c.started {
		return nil
	}
	c.started = true
	b := c.buf[:0]
	for i, name := range c.columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVPlain(b, name)
	}
	return c.end(b)
}

// write neutralises every text cell (appendCSVField) — logins, emails,
// ids, reasons and error messages can be chosen by whoever named a user —
// and writes numbers and times as they are.
func (c *csvWriter) write(r record) error {
	if err := c.header(); err != nil {
		return err
	}
	b := c.buf[:0]
	for i, v := range byColumnValues(c.columns, r) {
		if i > 0 {
			b = append(b, ',')
		}
		switch v.(type) {
		case string, []string:
			b = appendCSVField(b, plainValue(v))
		default:
			b = appendCSVPlain(b, plainValue(v))
		}
	}
	return c.end(b)
}

func (c *csvWriter) end(b []byte) error {
	b = append(b, '\n')
	c.buf = b
	_, err := c.w.Write(b)
	return err
}

// flush writes the header even for an empty result, so a script sees the
// columns.
func (c *csvWriter) flush() error {
	if len(c.columns) > 0 {
		if err := c.header(); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// tableWriter aligns columns by display width, as a terminal draws them —
// a CJK character takes two columns, a combining accent none, an emoji
// two (uniseg's widths) — which text/tabwriter, counting runes, cannot.
// It aligns in batches of tableBatch rows, since status must stream a
// million rows in constant memory: the header and the first batch share
// their widths, and each later batch has its own. Columns are separated by
// at least two spaces; the last cell of a line is not padded.
type tableWriter struct {
	buf     *bufio.Writer
	columns []string
	// style, when set, returns what to write before and after a cell
	// (ANSI colours): not counted in its width, so never in alignment.
	style  func(column int, cell string) (before, after string)
	lines  []tableLine // the batch being aligned
	n      int         // lines of the batch in use; the rest are for reuse
	widths []int
	rows   int
	pad    []byte
}

// tableLine is one line's cells and their display widths.
type tableLine struct {
	cells  []string
	widths []int
	header bool
}

const tableBatch = 500

// tableColumnGap is the padding between columns.
const tableColumnGap = 2

func (t *tableWriter) write(r record) error {
	if t.rows%tableBatch == 0 {
		if t.rows > 0 {
			if err := t.align(); err != nil {
				return err
			}
		} else {
			header := t.next()
			header.header = true
			for _, c := range t.columns {
				header.add(strings.ToUpper(c))
			}
		}
	}
	t.rows++
	line := t.next()
	for _, v := range byColumnValues(t.columns, r) {
		s := terminalSafe(plainValue(v))
		if s == "" {
			s = "-"
		}
		line.add(s)
	}
	return nil
}

// next is a cleared line at the end of the batch.
func (t *tableWriter) next() *tableLine {
	if t.n == len(t.lines) {
		t.lines = append(t.lines, tableLine{})
	}
	l := &t.lines[t.n]
	t.n++
	l.cells, l.widths, l.header = l.cells[:0], l.widths[:0], false
	return l
}

func (l *tableLine) add(cell string) {
	l.cells = append(l.cells, cell)
	l.widths = append(l.widths, displayWidth(cell))
}

// align writes the batch, every column as wide as its widest cell.
func (t *tableWriter) align() error {
	t.widths = t.widths[:0]
	for _, l := range t.lines[:t.n] {
		for i, w := range l.widths {
			if i == len(t.widths) {
				t.widths = append(t.widths, 0)
			}
			t.widths[i] = max(t.widths[i], w)
		}
	}
	for _, l := range t.lines[:t.n] {
		for i, cell := range l.cells {
			before, after := "", ""
			if t.style != nil && !l.header {
				before, after = t.style(i, cell)
			}
			t.buf.WriteString(before)
			t.buf.WriteString(cell)
			t.buf.WriteString(after)
			if i < len(l.cells)-1 {
				t.buf.Write(t.spaces(t.widths[i] - l.widths[i] + tableColumnGap))
			}
		}
		if err := t.buf.WriteByte('\n'); err != nil {
			return err
		}
	}
	t.n = 0
	return nil
}

func (t *tableWriter) spaces(n int) []byte {
	for len(t.pad) < n {
		t.pad = append(t.pad, ' ')
	}
	return t.pad[:n]
}

func (t *tableWriter) flush() error {
	if err := t.align(); err != nil {
		return err
	}
	return t.buf.Flush()
}

// displayWidth is how many terminal columns s takes. ASCII, what nearly
// every cell is, is one column a byte and needs no grapheme segmentation.
func displayWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return uniseg.StringWidth(s)
		}
	}
	return len(s)
}

// byColumn lays r out in the order of columns, so every row has every
// column even when a record (say, a user not found) has fewer fields.
func byColumn(columns []string, r record, render func(any) string) []string {
	values := byColumnValues(columns, r)
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = render(v)
	}
	return out
}

func byColumnValues(columns []string, r record) []any {
	out := make([]any, len(columns))
	for i, c := range columns {
		for _, f := range r {
			if f.key == c {
				out[i] = f.value
				break
			}
		}
	}
	return out
}

// plainValue renders a value for CSV and tables.
func plainValue(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case bool:
		return strconv.FormatBool(t)
	case time.Time:
		return t.UTC().Format(time.RFC3339)
	case *time.Time:
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	case []string:
		return strings.Join(t, " ")
	}
	return fmt.Sprint(v)
}

// terminalSafe escapes what a terminal would act on or render deceptively,
// so that a login crafted with escape sequences cannot repaint or retitle a
// support engineer's terminal, and a look-alike login cannot hide in a
// table, a prompt or an error: control characters (C0, C1, DEL), Unicode
// format characters (bidi overrides such as U+202E, zero-width U+200B,
// U+200D, U+FEFF, soft hyphen…), line and paragraph separators, private-use
// and unassigned code points, and invalid UTF-8 (a stray 0x9b byte is CSI
// to a terminal in an 8-bit mode). They become Go escapes: \x1b, \u202e.
// A clean string is returned as it is, without allocating.
func terminalSafe(s string) string {
	clean := true
	for i, r := range s {
		if !strconv.IsGraphic(r) {
			clean = false
			break
		}
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				clean = false // an invalid byte, not a real U+FFFD
				break
			}
		}
	}
	if clean {
		return s
	}
	// QuoteToGraphic escapes exactly the runes strconv.IsGraphic rejects
	// (and every invalid byte), so the result is all graphic and
	// terminalSafe(terminalSafe(s)) == terminalSafe(s).
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
