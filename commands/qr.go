package commands

import (
	"bytes"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/mdp/qrterminal/v3"
	"github.com/rivo/uniseg"
	"golang.org/x/term"
	"rsc.io/qr"

	"github.com/totpadm/totpadm/models"
)

// ANSI colours pinned for the QR code: bright white glyphs on black. The
// half-block glyphs draw "white" in the foreground colour, so without
// pinning both colours the code would come out inverted on a light
// terminal, which many phone scanners do not read.
const (
	qrColorOn  = "\x1b[97;40m"
	qrColorOff = "\x1b[0m"
)

// qrQuietZone is the light margin around the symbol, in modules. ISO/IEC
// 18004 asks for four; phone scanners read a code on a screen with two,
// and the four lines saved are what lets the code and the prompt share an
// 80×24 terminal.
const qrQuietZone = 2

// terminalQR is a QR code drawn in half-block characters, two modules a
// character cell.
type terminalQR struct {
	text       string // the lines, each ending in "\n", without colour
	cols, rows int    // its size in character cells
}

// renderQR draws uri at error-correction level M, or at level L when M
// would not fit into cols×rows character cells and L does (a screen is
// not a crumpled sticker: 7 % recovery reads fine there). fits is false
// when neither does; cols or rows 0 means the size is unknown, and
// anything fits. err is set only when uri is too long for any QR code.
func renderQR(uri string, cols, rows int) (q terminalQR, fits bool, err error) {
	for i, level := range []qr.Level{qr.M, qr.L} {
		code, err := qr.Encode(uri, level)
		if err != nil {
			if i == 0 {
				return terminalQR{}, false, err
			}
			break
		}
		// qrterminal's half-block layout: the symbol with the quiet zone
		// on each side, a row pair a line (the odd last row shares its
		// line with the quiet zone below).
		side := code.Size + 2*qrQuietZone
		ok := (cols == 0 || side <= cols) && (rows == 0 || (side+1)/2 <= rows)
		if i == 0 || ok {
			q, fits = drawQR(uri, level), ok
		}
		if ok {
			break
		}
	}
	return q, fits, nil
}

func drawQR(uri string, level qr.Level) terminalQR {
	var buf bytes.Buffer
	qrterminal.GenerateWithConfig(uri, qrterminal.Config{
		Level:          level,
		Writer:         &buf,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      qrQuietZone,
	})
	text := buf.String()
	first, _, _ := strings.Cut(text, "\n")
	return terminalQR{text: text, cols: uniseg.StringWidth(first), rows: strings.Count(text, "\n")}
}

// writeQR prints q, pinned to bright white on black when color is set.
func writeQR(w io.Writer, q terminalQR, color bool) error {
	if !color {
		_, err := io.WriteString(w, q.text)
		return err
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(q.text, "\n") {
		if line == "" {
			continue
		}
		out.WriteString(qrColorOn)
		out.WriteString(strings.TrimSuffix(line, "\n"))
		out.WriteString(qrColorOff + "\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// qrURI is the otpauth URI the terminal QR code holds: uri without the
// parameters that equal what the Key URI format defines as their absence
// and every authenticator app assumes — algorithm=SHA1, digits=6,
// period=30. Label, secret and issuer stay as they are, so an app (and
// models.ParseKeyURI) reads the same enrollment from both, while the code
// comes out one or two versions smaller: 21 lines instead of 27 for a
// short login.
func qrURI(uri string) string {
	base, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return uri
	}
	d := models.DefaultParams
	for name, def := range map[string]string{"algorithm": d.Algorithm, "digits": strconv.Itoa(d.Digits), "period": strconv.Itoa(d.Period)} {
		if v := q[name]; len(v) == 1 && strings.EqualFold(v[0], def) {
			q.Del(name)
		}
	}
	return base + "?" + q.Encode()
}

// terminalSize is the size of the terminal w writes to; ok is false when w
// is not a terminal (a file, a pipe, a test's buffer).
func terminalSize(w io.Writer) (cols, rows int, ok bool) {
	f, isFile := w.(interface{ Fd() uintptr })
	if !isFile {
		return 0, 0, false
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	if err != nil || cols <= 0 || rows <= 0 {
		return 0, 0, false
	}
	return cols, rows, true
}

// displayRows is how many terminal rows s takes at cols columns (at least
// one), counted by display width: a CJK login in a prompt takes two
// columns a character.
func displayRows(s string, cols int) int {
	if cols <= 0 {
		return 1
	}
	return max(1, (uniseg.StringWidth(s)+cols-1)/cols)
}
