package commands_test

import (
	"image"
	"image/color"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/totpadm/totpadm/internal/testutil"
)

// The half-block glyphs of github.com/mdp/qrterminal/v3 as totpadm uses
// them: the glyph is drawn in the (light) foreground colour on a dark
// background, so "█" is two light modules, " " two dark ones, "▀" light
// over dark and "▄" dark over light.
const (
	qrHelperLightLight = '█'
	qrHelperDarkDark   = ' '
	qrHelperLightDark  = '▀'
	qrHelperDarkLight  = '▄'
)

var qrHelperANSI = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func qrHelperIsQRLine(line string) bool {
	if !strings.ContainsAny(line, "█▀▄") || len([]rune(line)) < 21 {
		return false
	}
	for _, r := range line {
		switch r {
		case qrHelperLightLight, qrHelperDarkDark, qrHelperLightDark, qrHelperDarkLight:
		default:
			return false
		}
	}
	return true
}

// qrHelperBlock returns the lines of the first QR code in out.
func qrHelperBlock(out string) []string {
	var block []string
	for _, line := range strings.Split(out, "\n") {
		if qrHelperIsQRLine(line) {
			block = append(block, line)
		} else if block != nil {
			break
		}
	}
	return block
}

// qrHelperModules turns half-block lines into a grid of modules, true for
// dark.
func qrHelperModules(t *testing.T, block []string) [][]bool {
	t.Helper()
	width := len([]rune(block[0]))
	grid := make([][]bool, 0, 2*len(block))
	for i, line := range block {
		runes := []rune(line)
		if len(runes) != width {
			t.Fatalf("QR line %d is %d characters wide, line 0 is %d", i, len(runes), width)
		}
		top, bottom := make([]bool, width), make([]bool, width)
		for j, r := range runes {
			switch r {
			case qrHelperDarkDark:
				top[j], bottom[j] = true, true
			case qrHelperLightDark:
				bottom[j] = true
			case qrHelperDarkLight:
				top[j] = true
			}
		}
		grid = append(grid, top, bottom)
	}
	return grid
}

// qrHelperDecode renders the grid at 8 pixels a module and decodes it the
// way a phone's scanner would, without hints about where the code is.
func qrHelperDecode(t *testing.T, grid [][]bool) string {
	t.Helper()
	bmp := qrHelperBitmap(t, grid)
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		// gozxing's scanner-style search (finder patterns, then sampling)
		// misses or misreads a small share of valid symbols. The grid is
		// exact, so decode the symbol itself: cropped to its bounding box
		// with a four-module margin, as the pure barcode it is.
		t.Logf("scanner-style decode failed (%v); decoding the cropped symbol", err)
		res, err = qrcode.NewQRCodeReader().Decode(qrHelperBitmap(t, qrHelperCrop(grid)),
			map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true})
	}
	if err != nil {
		t.Fatalf("the terminal QR code does not decode: %v", err)
	}
	return res.GetText()
}

// qrHelperBitmap renders the grid at 8 pixels a module.
func qrHelperBitmap(t *testing.T, grid [][]bool) *gozxing.BinaryBitmap {
	t.Helper()
	const scale = 8
	h, w := len(grid), len(grid[0])
	img := image.NewGray(image.Rect(0, 0, w*scale, h*scale))
	for y := 0; y < h*scale; y++ {
		for x := 0; x < w*scale; x++ {
			c := color.Gray{Y: 0xff}
			if grid[y/scale][x/scale] {
				c.Y = 0
			}
			img.SetGray(x, y, c)
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("bitmap: %v", err)
	}
	return bmp
}

// qrHelperCrop returns the dark modules' bounding box with a light margin
// of four modules on every side. A row dark across the whole width is the
// half-block renderer's bottom edge, not part of the symbol.
func qrHelperCrop(grid [][]bool) [][]bool {
	top, left, bottom, right := len(grid), len(grid[0]), -1, -1
	for y, row := range grid {
		if !slices.Contains(row, false) {
			continue
		}
		for x, dark := range row {
			if dark {
				top, left = min(top, y), min(left, x)
				bottom, right = max(bottom, y), max(right, x)
			}
		}
	}
	const margin = 4
	out := make([][]bool, bottom-top+1+2*margin)
	for y := range out {
		out[y] = make([]bool, right-left+1+2*margin)
		if sy := y - margin + top; y >= margin && sy <= bottom {
			copy(out[y][margin:], grid[sy][left:right+1])
		}
	}
	return out
}

// qrHelperCheckQuietZone asserts four light modules around the symbol,
// which is square with 21+4k modules a side. A row that is dark across
// the whole width is not part of the symbol (qrterminal ends with one; on
// a terminal it reads as background below the code).
func qrHelperCheckQuietZone(t *testing.T, grid [][]bool) {
	t.Helper()
	h, w := len(grid), len(grid[0])
	full := func(y int) bool {
		for _, d := range grid[y] {
			if !d {
				return false
			}
		}
		return true
	}
	top, bottom, left, right := h, -1, w, -1
	for y := range grid {
		if full(y) {
			continue
		}
		for x, d := range grid[y] {
			if d {
				top, bottom = min(top, y), max(bottom, y)
				left, right = min(left, x), max(right, x)
			}
		}
	}
	if bottom < 0 {
		t.Fatalf("no dark module in the QR code")
	}
	size := right - left + 1
	if bottom-top+1 != size || (size-21)%4 != 0 {
		t.Errorf("symbol is %dx%d modules, want square with 21+4k a side", size, bottom-top+1)
	}
	if left < 4 || w-1-right < 4 || top < 4 {
		t.Errorf("quiet zone left %d, right %d, top %d modules; want at least 4", left, w-1-right, top)
	}
	light := 0
	for y := bottom + 1; y < h && !full(y); y++ {
		light++
	}
	if light < 4 {
		t.Errorf("quiet zone below the symbol is %d modules, want at least 4", light)
	}
}

func TestQRDecodesToURI(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		// A login and an issuer that need escaping in the URI label.
		db.Exec(t, "INSERT INTO users (username, email) VALUES (?, ?)", "ops:dana smith", "dana@example.com")
		for _, tc := range []struct{ issuer, login string }{
			{"totpadm", "alice"},
			{"ACME Corp: Staff", "ops:dana smith"},
		} {
			t.Run(tc.login, func(t *testing.T) {
				res := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)},
					db.Args("--issuer", tc.issuer, "enroll", "--no-confirm", tc.login)...)
				if res.Code != 0 {
					t.Fatalf("exit %d, %q", res.Code, res.Stderr)
				}
				p := enrollHelperParseTable(t, res.Stdout)
				block := qrHelperBlock(res.Stdout)
				if len(block) == 0 {
					t.Fatalf("no QR code in:\n%s", res.Stdout)
				}
				grid := qrHelperModules(t, block)
				qrHelperCheckQuietZone(t, grid)
				text := qrHelperDecode(t, grid)
				if text != p.URI {
					t.Errorf("QR code holds %q, the URI line says %q", text, p.URI)
				}
				secret := strings.ReplaceAll(p.Key, " ", "")
				enrollHelperCheckURI(t, text, tc.issuer, tc.login, secret, "SHA1", 6)
				// The secret in the QR code is the stored one.
				c := testutil.Code(t, secret, enrollHelperT0)
				if v := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("verify", tc.login, c)...); v.Code != 0 {
					t.Errorf("code from the QR secret: exit %d, %q", v.Code, v.Stderr)
				}
			})
		}
	})
}

// qrHelperScript runs the built binary with stdout on a pseudo-terminal
// (through util-linux script), the only way main sets Streams.Color.
func qrHelperScript(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) not installed: cannot give the binary a terminal")
	}
	quoted := []string{qrHelperQuote(testutil.Binary(t))}
	for _, a := range args {
		quoted = append(quoted, qrHelperQuote(a))
	}
	cmd := exec.Command(script, "-qec", strings.Join(quoted, " "), "/dev/null")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NO_COLOR=") && !strings.HasPrefix(kv, "TOTPADM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("script %v: %v; output %q", args, err, out)
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

func qrHelperQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestQRColourOnTerminal(t *testing.T) {
	db := testutil.NewSQLite(t)
	out := qrHelperScript(t, db.Dir, nil, db.Args("enroll", "--no-confirm", "alice")...)
	var coloured []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "\x1b[") {
			coloured = append(coloured, line)
		}
	}
	if len(coloured) < 10 {
		t.Fatalf("no coloured QR code on a terminal:\n%q", out)
	}
	for _, line := range coloured {
		if !strings.HasPrefix(line, "\x1b[97;40m") || !strings.HasSuffix(line, "\x1b[0m") {
			t.Errorf("QR line not pinned to bright white on black and reset: %q", line)
			break
		}
	}
	plain := qrHelperANSI.ReplaceAllString(out, "")
	p := enrollHelperParseTable(t, plain)
	block := qrHelperBlock(plain)
	if len(block) != len(coloured) {
		t.Errorf("%d coloured lines but %d QR lines", len(coloured), len(block))
	}
	grid := qrHelperModules(t, block)
	qrHelperCheckQuietZone(t, grid)
	if text := qrHelperDecode(t, grid); text != p.URI {
		t.Errorf("coloured QR holds %q, URI line %q", text, p.URI)
	}

	// NO_COLOR turns the colours off, and the code still decodes.
	out = qrHelperScript(t, db.Dir, []string{"NO_COLOR=1"}, db.Args("enroll", "--no-confirm", "bob")...)
	if strings.Contains(out, "\x1b[") {
		t.Errorf("NO_COLOR set, yet ANSI codes in the output: %q", out)
	}
	p = enrollHelperParseTable(t, out)
	if text := qrHelperDecode(t, qrHelperModules(t, qrHelperBlock(out))); text != p.URI {
		t.Errorf("QR holds %q, URI line %q", text, p.URI)
	}
}
