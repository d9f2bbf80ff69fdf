package commands

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rivo/uniseg"

	"github.com/totpadm/totpadm/models"
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
	line, err := t.row()
	if err != nil {
		return err
	}
	for _, v := range byColumnValues(t.columns, r) {
		line.addCell(plainValue(v))
	}
	return nil
}

// row is the line for the next row, its cells to be added: the header
// comes first, and a full batch is written out before it.
func (t *tableWriter) row() (*tableLine, error) {
	if t.rows%tableBatch == 0 {
		if t.rows > 0 {
			if err := t.align(); err != nil {
				return nil, err
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
	return t.next(), nil
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

// addCell adds a value as a table shows it: terminal-safe, and "-" when
// there is none.
func (l *tableLine) addCell(s string) {
	s = terminalSafe(s)
	if s == "" {
		s = "-"
	}
	l.add(s)
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

// A column specification lays out a listing of rows of one Go type R —
// status's models.StatusRow — as an ordered list of columns. Each column is
// one entry: its name, what kind of value it holds, how to read that value
// from a row and, for an optional column, when it is shown. The table, JSON
// and CSV encoders below iterate the list, so the three formats cannot
// disagree about names, order or which optional columns appear; the kind
// decides the quoting each format applies, so a column never does its own.
//
// The generic recordWriter above stays for the other commands: their
// records are built as they go (a user not found has fewer fields, an
// outcome carries command-specific extras, JSON writes whatever fields the
// record has, in its order), which is not a fixed list of columns over one
// row type. Both share the cell encoders of encode.go.

// cellKind is what a column holds, and so how each format writes it.
type cellKind uint8

const (
	// cellText is text anyone may have chosen (a login, an email): JSON
	// escaped, neutralised and quoted for spreadsheets in CSV
	// (appendCSVField), terminal-safe in a table.
	cellText cellKind = iota
	// cellWord is one of totpadm's own words (a state), written as it is
	// in JSON and CSV: it never needs escaping or quoting.
	cellWord
	cellInt
	cellBool
	// cellTime is a moment or none: RFC 3339 in UTC, or relative in a
	// table on request; none is JSON null, an empty CSV cell, "-" in a
	// table.
	cellTime
)

// column is one column of a listing of R. Exactly the reader its kind
// names is set.
type column[R any] struct {
	name string // the JSON key and CSV header; upper-cased, the table header
	kind cellKind
	text func(*R) string // cellText, cellWord
	int  func(*R) int
	bool func(*R) bool
	time func(*R) *time.Time
	// table, when set, is the cell a table shows in place of the value
	// (status's "not-enrolled" for "disabled").
	table func(*R) string
	// colour marks the column a colour terminal colours by the state its
	// cells name (colourStateColumn).
	colour bool
	// show, when set, includes the column only when it reports true for
	// the run: an optional column such as protected.
	show func(*columnContext) bool
}

// columnContext is what optional columns are shown or not by: the
// mapping, and what the store keeps.
type columnContext struct {
	config models.Config
	store  models.StoreInfo
}

func textColumn[R any](name string, v func(*R) string) column[R] {
	return column[R]{name: name, kind: cellText, text: v}
}

func wordColumn[R any](name string, v func(*R) string) column[R] {
	return column[R]{name: name, kind: cellWord, text: v}
}

func intColumn[R any](name string, v func(*R) int) column[R] {
	return column[R]{name: name, kind: cellInt, int: v}
}

func boolColumn[R any](name string, v func(*R) bool) column[R] {
	return column[R]{name: name, kind: cellBool, bool: v}
}

func timeColumn[R any](name string, v func(*R) *time.Time) column[R] {
	return column[R]{name: name, kind: cellTime, time: v}
}

// when makes c an optional column, shown when show holds for the run.
func (c column[R]) when(show func(*columnContext) bool) column[R] {
	c.show = show
	return c
}

// inTable makes a table show table(row) in c's cells.
func (c column[R]) inTable(table func(*R) string) column[R] {
	c.table = table
	return c
}

// coloured makes a colour terminal colour c's cells by the state they name.
func (c column[R]) coloured() column[R] {
	c.colour = true
	return c
}

// jsonKeyMax bounds a JSON key held inline in a boundColumn.
const jsonKeyMax = 24

// boundColumn is a column resolved for one run, packed for the encoders'
// walk over every row: its kind, its readers and its JSON key.
type boundColumn[R any] struct {
	kind   cellKind
	keyLen uint8 // 0: the key is longKey
	// key is `{"name":` for the first column, `,"name":` for the others,
	// in a fixed-size array: appending it is then a constant-size copy the
	// compiler inlines, where a string of any length costs a memmove call
	// per cell (~15 % of JSON's time in BenchmarkStatusWriter).
	key     [jsonKeyMax]byte
	longKey string
	text    func(*R) string
	int     func(*R) int
	bool    func(*R) bool
	time    func(*R) *time.Time
	table   func(*R) string
}

// columnsFor resolves spec for one run: the columns it shows, in order.
func columnsFor[R any](spec []column[R], run *columnContext) []column[R] {
	cols := make([]column[R], 0, len(spec))
	for _, c := range spec {
		if c.show == nil || c.show(run) {
			cols = append(cols, c)
		}
	}
	return cols
}

func bind[R any](cols []column[R]) []boundColumn[R] {
	bound := make([]boundColumn[R], len(cols))
	for i, c := range cols {
		key := append([]byte{','}, appendJSONString(nil, c.name)...)
		if i == 0 {
			key[0] = '{'
		}
		key = append(key, ':')
		b := &bound[i]
		*b = boundColumn[R]{kind: c.kind, text: c.text, int: c.int, bool: c.bool, time: c.time, table: c.table}
		if len(key) <= jsonKeyMax {
			b.keyLen = uint8(copy(b.key[:], key))
		} else {
			b.longKey = string(key)
		}
	}
	return bound
}

// columnWriter writes rows of R by resolved columns (columnsFor): CSV and
// JSON appended straight from each row into one reused buffer — status
// may print a million rows — and tables through the aligned tableWriter.
type columnWriter[R any] struct {
	format  string
	cols    []boundColumn[R]
	w       *bufio.Writer
	buf     []byte
	header  []byte       // CSV: the header line, written before the first row
	table   *tableWriter // table format only
	now     time.Time    // table: show times relative to now, unless zero
	started bool
}

// tableOptions shape a table beyond its columns.
type tableOptions struct {
	color bool      // colour the coloured column
	now   time.Time // show times relative to now, unless zero
}

func newColumnWriter[R any](format string, w io.Writer, cols []column[R], opts tableOptions) *columnWriter[R] {
	cw := &columnWriter[R]{format: format, cols: bind(cols)}
	switch format {
	case formatTable:
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.name
		}
		cw.table = newRecordWriter(formatTable, w, names).(*tableWriter)
		cw.now = opts.now
		for i, c := range cols {
			if c.colour && opts.color {
				cw.table.style = colourStateColumn(i)
			}
		}
	case formatCSV:
		for i, c := range cols {
			if i > 0 {
				cw.header = append(cw.header, ',')
			}
			cw.header = appendCSVPlain(cw.header, c.name)
		}
		cw.header = append(cw.header, '\n')
		fallthrough
	default:
		cw.w = bufio.NewWriterSize(w, 64<<10)
	}
	return cw
}

func (cw *columnWriter[R]) write(r *R) error {
	var b []byte
	switch cw.format {
	case formatTable:
		return cw.writeTable(r)
	case formatJSON:
		b = cw.appendJSON(cw.buf[:0], r)
	default:
		if !cw.started {
			cw.started = true
			if _, err := cw.w.Write(cw.header); err != nil {
				return err
			}
		}
		b = cw.appendCSV(cw.buf[:0], r)
	}
	cw.buf = b
	_, err := cw.w.Write(b)
	return err
}

func (cw *columnWriter[R]) appendJSON(b []byte, r *R) []byte {
	for i := range cw.cols {
		c := &cw.cols[i]
		if c.keyLen > 0 {
			n := len(b)
			if cap(b)-n < jsonKeyMax {
				b = slices.Grow(b, jsonKeyMax)
			}
			*(*[jsonKeyMax]byte)(b[n : n+jsonKeyMax]) = c.key
			b = b[:n+int(c.keyLen)]
		} else {
			b = append(b, c.longKey...)
		}
		switch c.kind {
		case cellText:
			b = appendJSONString(b, c.text(r))
		case cellWord:
			b = append(b, '"')
			b = append(b, c.text(r)...)
			b = append(b, '"')
		case cellInt:
			b = appendInt(b, c.int(r))
		case cellBool:
			b = strconv.AppendBool(b, c.bool(r))
		case cellTime:
			if t := c.time(r); t == nil {
				b = append(b, "null"...)
			} else {
				b = appendJSONTime(b, t)
			}
		}
	}
	return append(b, '}', '\n')
}

func (cw *columnWriter[R]) appendCSV(b []byte, r *R) []byte {
	for i := range cw.cols {
		c := &cw.cols[i]
		if i > 0 {
			b = append(b, ',')
		}
		switch c.kind {
		case cellText:
			b = appendCSVField(b, c.text(r))
		case cellWord:
			b = append(b, c.text(r)...)
		case cellInt:
			b = appendInt(b, c.int(r))
		case cellBool:
			b = strconv.AppendBool(b, c.bool(r))
		case cellTime:
			if t := c.time(r); t != nil {
				b = appendCSVTime(b, t)
			}
		}
	}
	return append(b, '\n')
}

func (cw *columnWriter[R]) writeTable(r *R) error {
	line, err := cw.table.row()
	if err != nil {
		return err
	}
	for i := range cw.cols {
		c := &cw.cols[i]
		var s string
		switch {
		case c.table != nil:
			s = c.table(r)
		case c.kind == cellText || c.kind == cellWord:
			s = c.text(r)
		case c.kind == cellInt:
			s = strconv.Itoa(c.int(r))
		case c.kind == cellBool:
			s = strconv.FormatBool(c.bool(r))
		case c.kind == cellTime:
			if t := c.time(r); t == nil {
			} else if !cw.now.IsZero() {
				s = relativeTime(*t, cw.now)
			} else {
				s = t.UTC().Format(time.RFC3339)
			}
		}
		line.addCell(s)
	}
	return nil
}

// flush writes the CSV header even for an empty result, so a script sees
// the columns.
func (cw *columnWriter[R]) flush() error {
	if cw.format == formatTable {
		return cw.table.flush()
	}
	if cw.format == formatCSV && !cw.started {
		cw.started = true
		if _, err := cw.w.Write(cw.header); err != nil {
			return err
		}
	}
	return cw.w.Flush()
}
