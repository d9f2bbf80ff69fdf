package commands

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Append-style encoders for the output formats. status writes a million
// rows; building each value in place into one buffer, instead of boxing it
// and calling encoding/json twice per field, is most of what makes that
// as fast as the database's own client.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, U+2028/U+2029 escaped as encoding/json does,
// invalid UTF-8 replaced by U+FFFD. HTML characters are left alone: this is
// a terminal and pipe format, not a page.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case '\u2028':
				b = append(b, `\u2028`...)
			case '\u2029':
				b = append(b, `\u2029`...)
			default:
				b = append(b, `\ufffd`...)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONValue appends the values records hold; anything else goes
// through encoding/json.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, t), nil
	case int:
		return strconv.AppendInt(b, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case time.Time:
		return appendJSONTime(b, &t), nil
	case *time.Time:
		return appendJSONTime(b, t), nil
	case []string:
		if t == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		return append(b, ']'), nil
	}
	enc, err := json.Marshal(v)
	return append(b, enc...), err
}

func appendJSONTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendCSVField appends s as a text cell: neutralised for spreadsheets
// (csvFormulaStart), invalid UTF-8 replaced by U+FFFD as in JSON, and
// quoted as encoding/csv would quote it. status calls it three times a
// row for a million rows, so one pass over the bytes decides everything
// for the common clean cell, which is then copied as it is.
func appendCSVField(b []byte, s string) []byte {
	if s == "" {
		return b
	}
	quote, ascii := csvScan(s)
	if !ascii && !utf8.ValidString(s) {
		s = replaceInvalidUTF8(s)
	}
	if !quote {
		quote = s == `\.` || csvStartsWithSpace(s)
	}
	if quote {
		b = append(b, '"')
	}
	if csvFormulaStart(s[0]) {
		b = append(b, '\'')
	}
	if quote {
		b = appendDoubledQuotes(b, s)
		return append(b, '"')
	}
	return append(b, s...)
}

// appendCSVPlain appends a cell totpadm formats itself (a number, a time,
// a column name): quoted when it needs it, never neutralised — a negative
// number is a number to a spreadsheet, not a formula.
func appendCSVPlain(b []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	b = appendDoubledQuotes(b, s)
	return append(b, '"')
}

func appendDoubledQuotes(b []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i+1]...)
		b = append(b, '"')
		s = s[i+1:]
	}
}

// csvFormulaStart reports a first byte that makes a spreadsheet evaluate
// the cell (OWASP's list: = + - @ TAB CR), and ' itself, so that
// neutralising is a bijection: a cell totpadm writes starts with ' exactly
// when one was prepended, and csvUnneutralise can undo it.
func csvFormulaStart(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r', '\'':
		return true
	}
	return false
}

// csvUnneutralise undoes appendCSVField's neutralisation of a cell read
// back: one leading ' is removed.
func csvUnneutralise(cell string) string {
	return strings.TrimPrefix(cell, "'")
}

// csvScan reports, in one pass, whether s holds a byte that forces quotes
// (comma, quote, CR, LF) and whether s is all ASCII (and so valid UTF-8).
func csvScan(s string) (quote, ascii bool) {
	ascii = true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			ascii = false
		case c == ',' || c == '"' || c == '\r' || c == '\n':
			quote = true
		}
	}
	return quote, ascii
}

// replaceInvalidUTF8 replaces each invalid byte of s by U+FFFD, as
// encoding/json (and appendJSONString) do: a UTF-8 reader can then read the
// whole file. It is display only; the exact bytes travel percent-encoded in
// export's uri column.
func replaceInvalidUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\ufffd")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// csvNeedsQuotes: encoding/csv's rule — a comma, quote or line break, a
// leading space — plus exactly \. (which would end a PostgreSQL COPY).
func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s == `\.` {
		return true
	}
	if strings.ContainsAny(s, ",\"\r\n") {
		return true
	}
	return csvStartsWithSpace(s)
}

func csvStartsWithSpace(s string) bool {
	// ASCII first, without decoding: unicode.IsSpace's ASCII spaces are
	// TAB, LF, VT, FF, CR and the space.
	if s != "" && s[0] < utf8.RuneSelf {
		return s[0] == ' ' || '\t' <= s[0] && s[0] <= '\r'
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

func appendCSVTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return b
	}
	return t.UTC().AppendFormat(b, time.RFC3339)
}

// appendInt appends n in decimal; a single digit, what most counts are,
// without a call.
func appendInt(b []byte, n int) []byte {
	if uint(n) < 10 {
		return append(b, byte('0'+n))
	}
	return strconv.AppendInt(b, int64(n), 10)
}
