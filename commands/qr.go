package commands

import (
	"bytes"
	"io"
	"strings"

	"github.com/mdp/qrterminal/v3"
)

// ANSI colours pinned for the QR code: bright white glyphs on black. The
// half-block glyphs draw "white" in the foreground colour, so without
// pinning both colours the code would come out inverted on a light
// terminal, which many phone scanners do not read.
const (
	qrColorOn  = "\x1b[97;40m"
	qrColorOff = "\x1b[0m"
)

// writeQR renders uri as a QR code of half-block characters (two modules a
// character cell, so it fits a terminal) with the standard four-module
// quiet zone.
func writeQR(w io.Writer, uri string, color bool) error {
	var buf bytes.Buffer
	qrterminal.GenerateWithConfig(uri, qrterminal.Config{
		Level:          qrterminal.M,
		Writer:         &buf,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      qrterminal.QUIET_ZONE,
	})
	if !color {
		_, err := buf.WriteTo(w)
		return err
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
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
