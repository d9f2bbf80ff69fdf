package commands_test

import (
	"image"
	"image/color"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/totpadm/totpadm/internal/testutil"
	"github.com/totpadm/totpadm/models"
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

// qrHelperQuietZone is the light margin totpadm keeps around the symbol,
// in modules: two, which phone scanners read on a screen.
const qrHelperQuietZone = 2

// qrHelperCheckQuietZone asserts exactly qrHelperQuietZone light modules
// around the symbol, which is square with 21+4k modules a side. A row that
// is dark across the whole width is not part of the symbol (qrterminal
// ends with one; on a terminal it reads as background below the code).
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
	light := 0
	for y := bottom + 1; y < h && !full(y); y++ {
		light++
	}
	const q = qrHelperQuietZone
	if left != q || w-1-right != q || top != q || light != q {
		t.Errorf("quiet zone left %d, right %d, top %d, bottom %d modules; want %d each", left, w-1-right, top, light, q)
	}
}

// qrHelperCheckQRURI asserts that the URI a QR code holds is the URI line
// without the parameters every app assumes: the same enrollment to
// models.ParseKeyURI (and so to an app), minus algorithm=SHA1, digits=6
// and period=30, with the issuer kept.
func qrHelperCheckQRURI(t *testing.T, qrText, uriLine string) {
	t.Helper()
	want, err := models.ParseKeyURI(uriLine)
	if err != nil {
		t.Fatalf("URI line %q: %v", uriLine, err)
	}
	got, err := models.ParseKeyURI(qrText)
	if err != nil {
		t.Fatalf("QR code holds %q: %v", qrText, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("QR code holds %+v (%q), the URI line says %+v (%q)", got, qrText, want, uriLine)
	}
	u, err := url.Parse(qrText)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	defaults := map[string]string{"algorithm": "SHA1", "digits": "6", "period": "30"}
	for name, def := range defaults {
		if v, ok := q[name]; ok && v[0] == def {
			t.Errorf("QR URI %q carries the default %s=%s", qrText, name, def)
		}
	}
	if want.Issuer != "" && q.Get("issuer") != want.Issuer {
		t.Errorf("QR URI %q: issuer %q, want %q", qrText, q.Get("issuer"), want.Issuer)
	}
}

func TestQRDecodesToURI(t *testing.T) {
	testutil.Backends(t, func(t *testing.T, db *testutil.DB) {
		// A login and an issuer that need escaping in the URI label.
		db.Exec(t, "INSERT INTO users (username, email) VALUES (?, ?)", "ops:dana smith", "dana@example.com")
		for _, tc := range []struct {
			issuer, login string
			digits        int
		}{
			{"totpadm", "alice", 6},
			{"ACME Corp: Staff", "ops:dana smith", 6},
			{"totpadm", "bob", 8}, // digits=8 stays in the QR code
		} {
			t.Run(tc.login, func(t *testing.T) {
				res := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)},
					db.Args("--issuer", tc.issuer, "--digits", strconv.Itoa(tc.digits), "enroll", "--no-confirm", tc.login)...)
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
				qrHelperCheckQRURI(t, text, p.URI)
				secret := strings.ReplaceAll(p.Key, " ", "")
				enrollHelperCheckURI(t, p.URI, tc.issuer, tc.login, secret, "SHA1", tc.digits)
				if got := strings.Contains(text, "digits=8"); got != (tc.digits == 8) {
					t.Errorf("QR URI %q: digits=8 present %v, want %v", text, got, tc.digits == 8)
				}
				// The secret in the QR code is the stored one.
				params := models.Params{Algorithm: "SHA1", Digits: tc.digits, Period: 30}
				c, err := models.GenerateCode(mustParseKeyURI(t, text).Secret, params.Step(enrollHelperT0), params)
				if err != nil {
					t.Fatal(err)
				}
				if v := testutil.Run(t, testutil.Options{Now: enrollHelperAt(enrollHelperT0)}, db.Args("verify", tc.login, c)...); v.Code != 0 {
					t.Errorf("code from the QR secret: exit %d, %q", v.Code, v.Stderr)
				}
			})
		}
	})
}

func mustParseKeyURI(t *testing.T, uri string) models.KeyURIContents {
	t.Helper()
	c, err := models.ParseKeyURI(uri)
	if err != nil {
		t.Fatalf("%q: %v", uri, err)
	}
	return c
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
	qrHelperCheckQRURI(t, qrHelperDecode(t, grid), p.URI)

	// NO_COLOR turns the colours off, and the code still decodes.
	out = qrHelperScript(t, db.Dir, []string{"NO_COLOR=1"}, db.Args("enroll", "--no-confirm", "bob")...)
	if strings.Contains(out, "\x1b[") {
		t.Errorf("NO_COLOR set, yet ANSI codes in the output: %q", out)
	}
	p = enrollHelperParseTable(t, out)
	qrHelperCheckQRURI(t, qrHelperDecode(t, qrHelperModules(t, qrHelperBlock(out))), p.URI)
}

// qrHelperPane is a real terminal: a private tmux server (its own socket,
// no configuration file) running one command in a cols×rows window.
type qrHelperPane struct {
	t    *testing.T
	tmux string
	sock string
}

const qrHelperSession = "totpadm-test"

// qrHelperTmux starts the built binary with args in a cols×rows tmux
// window, in dir. When the binary exits, the shell prints "exit=N" and
// waits, so the pane stays to be read.
func qrHelperTmux(t *testing.T, cols, rows int, dir string, args ...string) *qrHelperPane {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux not installed (apt-get install tmux): cannot give the binary a real terminal")
	}
	quoted := []string{qrHelperQuote(testutil.Binary(t))}
	for _, a := range args {
		quoted = append(quoted, qrHelperQuote(a))
	}
	p := &qrHelperPane{t: t, tmux: tmux, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	shell := "cd " + qrHelperQuote(dir) + " && " + strings.Join(quoted, " ") + `; echo "exit=$?"; sleep 600`
	p.run("-f", "/dev/null", "new-session", "-d", "-s", qrHelperSession, "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), shell)
	t.Cleanup(func() { exec.Command(tmux, "-S", p.sock, "kill-server").Run() })
	return p
}

func (p *qrHelperPane) run(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(p.tmux, append([]string{"-S", p.sock}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NO_COLOR=") && !strings.HasPrefix(kv, "TOTPADM_") && !strings.HasPrefix(kv, "TMUX") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// screen is what the window shows now, wrapped lines joined (-J), so a
// long line reads as the one line it was written as.
func (p *qrHelperPane) screen() string {
	return p.run("capture-pane", "-p", "-J", "-t", qrHelperSession)
}

// visible is the window row by row, exactly as a camera would see it.
func (p *qrHelperPane) visible() string {
	return p.run("capture-pane", "-p", "-t", qrHelperSession)
}

// history is everything the window printed, scrolled-off lines included.
func (p *qrHelperPane) history() string {
	return p.run("capture-pane", "-p", "-J", "-S", "-", "-t", qrHelperSession)
}

// waitFor polls the window until it shows want, and returns the screen.
func (p *qrHelperPane) waitFor(want string) string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := p.screen()
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q; it shows:\n%s", want, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *qrHelperPane) typeLine(s string) { p.run("send-keys", "-t", qrHelperSession, "-l", s+"\r") }

// qrHelperLastLine is the last non-blank line of a capture.
func qrHelperLastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, " \n"), "\n")
	return lines[len(lines)-1]
}

// On a real 80×24 terminal, the whole QR code is on the screen while the
// prompt for the first code waits, with its quiet zone, and scanning what
// the screen shows enrolls the user: the captured window decodes to an
// enrollment equal to the URI line's, and a code from it confirms. A
// login of 30 characters needs a larger symbol, and still fits.
func TestQRFitsTerminalAtThePrompt(t *testing.T) {
	for _, login := range []string{"alice", "dana.longname-operations-team"} {
		t.Run(login, func(t *testing.T) {
			db := testutil.NewSQLite(t)
			if login != "alice" {
				db.Exec(t, "INSERT INTO users (username) VALUES (?)", login)
			}
			pane := qrHelperTmux(t, 80, 24, db.Dir, db.Args("enroll", login)...)
			pane.waitFor("Enter the 6-digit code the app shows for " + login + ":")
			screen := pane.visible()
			if got := strings.Count(screen, "\n"); got > 24 {
				t.Fatalf("capture has %d lines, the window 24", got)
			}
			if last := qrHelperLastLine(screen); !strings.HasPrefix(last, "Enter the 6-digit code") {
				t.Errorf("the prompt is not the last line on the screen: %q", last)
			}
			block := qrHelperBlock(screen)
			if len(block) == 0 {
				t.Fatalf("no QR code on the screen at the prompt:\n%s", screen)
			}
			full := qrHelperBlock(pane.history())
			if len(block) != len(full) {
				t.Fatalf("%d of the QR code's %d lines are on the screen at the prompt:\n%s", len(block), len(full), screen)
			}
			grid := qrHelperModules(t, block)
			qrHelperCheckQuietZone(t, grid)
			text := qrHelperDecode(t, grid)
			p := enrollHelperParseTable(t, pane.history())
			qrHelperCheckQRURI(t, text, p.URI)

			code := testutil.Code(t, strings.ReplaceAll(p.Key, " ", ""), time.Now())
			pane.typeLine(code)
			pane.waitFor("exit=")
			done := pane.history()
			if !strings.Contains(done, login+": confirmed; 2FA is enabled.") || !strings.Contains(done, "exit=0") {
				t.Errorf("the code from the screen's QR code did not confirm:\n%s", done)
			}
		})
	}
}

// A terminal too small for the QR code gets one line saying so and what to
// do instead, right above the prompt, with the key for manual entry on
// the screen — and that key enrolls.
func TestQRTooSmallTerminalSaysSo(t *testing.T) {
	db := testutil.NewSQLite(t)
	pane := qrHelperTmux(t, 60, 16, db.Dir, db.Args("enroll", "alice")...)
	screen := pane.waitFor("Enter the 6-digit code the app shows for alice:")
	lines := strings.Split(strings.TrimRight(screen, " \n"), "\n")
	var notice []int
	for i, l := range lines {
		if strings.Contains(l, "QR code") && strings.HasPrefix(l, "totpadm: ") {
			notice = append(notice, i)
		}
	}
	if len(notice) != 1 {
		t.Fatalf("want one notice line about the QR code, got %d:\n%s", len(notice), screen)
	}
	n := lines[notice[0]]
	for _, want := range []string{"60×16", "--qr-png DIR", "Key"} {
		if !strings.Contains(n, want) {
			t.Errorf("notice %q does not mention %q", n, want)
		}
	}
	if notice[0] != len(lines)-2 {
		t.Errorf("the notice is not right above the prompt:\n%s", screen)
	}
	m := enrollHelperKeyRE.FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("the key for manual entry is not on the screen at the prompt:\n%s", screen)
	}
	pane.typeLine(testutil.Code(t, strings.ReplaceAll(m[1], " ", ""), time.Now()))
	pane.waitFor("exit=")
	if done := pane.history(); !strings.Contains(done, "alice: confirmed; 2FA is enabled.") || !strings.Contains(done, "exit=0") {
		t.Errorf("the key on the screen did not confirm:\n%s", done)
	}
}

// A login so long that its URI fits no QR code gets the key and a line
// saying so, never a crash.
func TestQRTooLongForAnyCode(t *testing.T) {
	db := testutil.NewSQLite(t)
	login := strings.Repeat("é", 500) // 1,000 bytes, 3,000 once percent-escaped
	db.Exec(t, "INSERT INTO users (username) VALUES (?)", login)
	res := testutil.Run(t, testutil.Options{}, db.Args("enroll", "--no-confirm", login)...)
	if res.Code != 0 {
		t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
	}
	if qrHelperBlock(res.Stdout) != nil {
		t.Errorf("a QR code was drawn for a URI too long for one")
	}
	if !enrollHelperKeyRE.MatchString(res.Stdout) {
		t.Errorf("no key for manual entry:\n%s", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "too long for a QR code") || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("stderr %q: want one line saying the URI is too long for a QR code", res.Stderr)
	}
}
