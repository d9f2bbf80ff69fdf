package models

// Fuzz targets for the pure functions that handle untrusted input: typed
// backup codes, user references, the otpauth URI and the classification of
// a typed code. Each asserts properties, not just "no panic". Seed corpora
// are in testdata/fuzz/<FuzzName>/; run one with
//
//	go test -run '^$' -fuzz '^FuzzNormalizeBackupCode$' -fuzztime 20s ./models/

import (
	"bytes"
	"encoding/base32"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// fzAlphabet is the backup-code alphabet, written out independently.
const fzAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

func fzIsCanonicalBackupCode(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(fzAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// fzTypo applies the changes people make when typing a code: any case,
// look-alikes (i, l for 1; o for 0), dashes dropped or added, spaces and
// tabs anywhere. edits drives the choices.
func fzTypo(code string, edits []byte) string {
	var b strings.Builder
	next := func() byte {
		if len(edits) == 0 {
			return 0
		}
		e := edits[0]
		edits = edits[1:]
		return e
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		e := next()
		for n := 0; n < int(e>>6); n++ { // 0–3 separators before the symbol
			b.WriteByte(" -\t-"[(int(e)+n)&3])
		}
		switch {
		case c == '-':
			if e&1 == 1 {
				continue // dash dropped
			}
		case c == '1' && e&2 != 0:
			c = "iIlL"[(e>>2)&3]
		case c == '0' && e&2 != 0:
			c = "oO"[(e>>2)&1]
		case c >= 'a' && c <= 'z' && e&4 != 0:
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if e := next(); e&1 == 1 {
		b.WriteString(" - ")
	}
	return b.String()
}

func FuzzNormalizeBackupCode(f *testing.F) {
	f.Add("abcd-efgh-jkmn", []byte("twelve bytes"), []byte{0xff, 0x06, 0x02, 0x41})
	f.Add("ABCD EFGH JKMN", []byte{}, []byte{})
	f.Add("iIlL-oO00-1111", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []byte{2, 6, 10, 14})
	f.Add("abcd-efgh-jkmu", []byte{31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31}, []byte{0x80})
	f.Add("abcd-efgh-jkmn-p", []byte{255}, []byte{1, 1, 1})
	f.Add("ａｂｃｄ-efgh-jkmn", []byte("\x00"), []byte("\xc0\xc0"))
	f.Add("\tabcd--efgh--jkmn\t", []byte("0123456789ab"), []byte{})
	f.Add("ıbcd-efgh-jkmn", []byte{}, []byte{})
	f.Add("", []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, input string, seed, edits []byte) {
		// Any input: canonical or rejected, and normalizing is idempotent
		// and blind to the display format.
		norm, ok := NormalizeBackupCode(input)
		if !ok {
			if norm != "" {
				t.Fatalf("NormalizeBackupCode(%q) rejected but returned %q", input, norm)
			}
		} else {
			if !fzIsCanonicalBackupCode(norm) {
				t.Fatalf("NormalizeBackupCode(%q) = %q: not 12 symbols of the alphabet", input, norm)
			}
			if again, ok := NormalizeBackupCode(norm); !ok || again != norm {
				t.Fatalf("not idempotent: %q → %q → %q, %v", input, norm, again, ok)
			}
			for _, shown := range []string{norm[:4] + "-" + norm[4:8] + "-" + norm[8:], strings.ToUpper(norm), " " + norm + "\t"} {
				if got, ok := NormalizeBackupCode(shown); !ok || got != norm {
					t.Fatalf("%q normalizes to %q, %v; want %q", shown, got, ok, norm)
				}
			}
			// The symbols of the input, separators removed, are the code.
			stripped := strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(input)
			if len(stripped) != 12 {
				t.Fatalf("%q accepted with %d symbols", input, len(stripped))
			}
		}
		if IsTOTPCode(input, 6) && ok {
			t.Fatalf("%q is both a TOTP code and a backup code", input)
		}

		// A generated code, typed sloppily, normalizes back to itself.
		random := bytes.NewReader(append(append([]byte(nil), seed...), make([]byte, backupCodeLen)...))
		code, err := newBackupCode(random)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 14 || code[4] != '-' || code[9] != '-' {
			t.Fatalf("generated %q, want xxxx-xxxx-xxxx", code)
		}
		want := strings.ReplaceAll(code, "-", "")
		if !fzIsCanonicalBackupCode(want) {
			t.Fatalf("generated %q outside the alphabet", code)
		}
		typed := fzTypo(code, edits)
		if got, ok := NormalizeBackupCode(typed); !ok || got != want {
			t.Fatalf("generated %q typed as %q normalizes to %q, %v", code, typed, got, ok)
		}
		// One symbol too many or too few, or one outside the alphabet, is
		// rejected.
		for _, bad := range []string{typed + "a", want[1:], want[:5] + "u" + want[6:], want[:5] + "!" + want[6:]} {
			if got, ok := NormalizeBackupCode(bad); ok {
				t.Fatalf("%q accepted as %q", bad, got)
			}
		}
	})
}

// fzValidRef is the documented rule for a user reference: non-blank, at
// most 1024 bytes of valid UTF-8 without NUL, and "id:" needs an id.
func fzValidRef(s string) bool {
	return strings.TrimSpace(s) != "" && len(s) <= 1024 && utf8.ValidString(s) &&
		!strings.ContainsRune(s, 0) && s != "id:"
}

func FuzzParseUserRef(f *testing.F) {
	for _, s := range []string{
		"alice", "id:42", "id:6f1c2a7e-0d55-4a59-9c3e-1d2f6b7a8c9d", "ID:42", "id:", "id: ", "id:id:1",
		"o'brien", `say "hi"`, `alice' OR '1'='1`, `"; DROP TABLE users; --`, "Zoë", "用户", "🔐",
		"", " ", "\t\n", "\u00a0", "\u200b", "al\x00ice", "\xff\xfe", "a\xc3",
		strings.Repeat("a", 1024), strings.Repeat("a", 1025), strings.Repeat("é", 512), strings.Repeat("é", 513),
		"\x1b[2Jevil", "%_*", " alice ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseUserRef(s)
		if valid := fzValidRef(s); valid != (err == nil) {
			t.Fatalf("ParseUserRef(%.60q) = %+v, %v; valid by the rules: %v", s, ref, err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidUserRef) {
				t.Fatalf("ParseUserRef(%.60q): %v does not wrap ErrInvalidUserRef", s, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("ParseUserRef(%d bytes): error of %d bytes echoes the input", len(s), len(err.Error()))
			}
			return
		}
		if ref.String() != s {
			t.Fatalf("ParseUserRef(%q).String() = %q", s, ref.String())
		}
		if ref.ByID != strings.HasPrefix(s, "id:") || ref.Value != strings.TrimPrefix(s, "id:") {
			t.Fatalf("ParseUserRef(%q) = %+v", s, ref)
		}
		if again, err := ParseUserRef(ref.String()); err != nil || again != ref {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

var fzB32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func FuzzKeyURI(f *testing.F) {
	secret := []byte("12345678901234567890")
	for _, names := range [][2]string{
		{"totpadm", "alice"}, {"Example Corp", "alice@example.com"}, {"ACME", "domain:bob"},
		{"ACME:Prod", "bob"}, {"a:b:c", "d:e:f"}, {"Q&A?", "x#y"}, {"100% real", "50%25"},
		{"path/issuer", "dir/user"}, {"plus+sign", "space  two"}, {"Ünïcödé 会社", "пользователь"},
		{"", "no-issuer"}, {"", "colon:in:account"}, {"", ""}, {"x", ""}, {"\x00\xff", "\r\n\t"},
		{"%3A", "%"}, {"a=b&c=d", "?secret=AAAA"}, {"..", "."}, {";,", "[]@!$'()*"},
	} {
		f.Add(names[0], names[1], secret, uint8(0), uint8(29), uint8(0))
	}
	f.Add("Big", "b", []byte{}, uint8(2), uint8(59), uint8(1))
	f.Add("Big", "b", bytes.Repeat([]byte{0xff}, 64), uint8(1), uint8(255), uint8(2))
	f.Fuzz(func(t *testing.T, issuer, account string, secret []byte, digits, period, alg uint8) {
		p := Params{Algorithm: []string{"SHA1", "SHA256", "SHA512"}[alg%3], Digits: 6 + int(digits%3), Period: 1 + int(period)%300}
		uri := KeyURI(issuer, account, secret, p)
		for i := 0; i < len(uri); i++ {
			if uri[i] <= ' ' || uri[i] >= 0x7f {
				t.Fatalf("URI has byte %#x at %d (not a printable ASCII QR payload): %q", uri[i], i, uri)
			}
		}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("KeyURI(%q, %q) = %q does not parse: %v", issuer, account, uri, err)
		}
		if u.Scheme != "otpauth" || u.Host != "totp" {
			t.Fatalf("scheme %q host %q in %q", u.Scheme, u.Host, uri)
		}
		// The label as an app reads it: the escaped path, split on the
		// first literal ':', each side unescaped.
		rest, ok := strings.CutPrefix(uri, "otpauth://totp/")
		if !ok {
			t.Fatalf("URI %q", uri)
		}
		label, _, _ := strings.Cut(rest, "?")
		if ep := strings.TrimPrefix(u.EscapedPath(), "/"); ep != label {
			t.Fatalf("net/url sees label %q, the URI has %q", ep, label)
		}
		unescape := func(s string) string {
			v, err := url.PathUnescape(s)
			if err != nil {
				t.Fatalf("label part %q of %q: %v", s, uri, err)
			}
			return v
		}
		gotIssuer, gotAccount, hasColon := strings.Cut(label, ":")
		if issuer == "" {
			if hasColon {
				t.Fatalf("no issuer, yet the label %q has a literal ':'", label)
			}
			gotIssuer, gotAccount = "", label
		} else if !hasColon {
			t.Fatalf("label %q has no issuer separator", label)
		}
		if unescape(gotIssuer) != issuer || unescape(gotAccount) != account {
			t.Fatalf("label %q reads as issuer %q account %q, want %q %q", label, unescape(gotIssuer), unescape(gotAccount), issuer, account)
		}
		if u.Path != "/"+issuer+map[bool]string{true: ":", false: ""}[issuer != ""]+account {
			t.Fatalf("net/url path %q", u.Path)
		}

		q := u.Query()
		if issuer != "" {
			if got := q["issuer"]; len(got) != 1 || got[0] != issuer {
				t.Fatalf("issuer parameter %q, want %q", got, issuer)
			}
		} else if q.Has("issuer") {
			t.Fatalf("issuer parameter without an issuer: %q", uri)
		}
		if got, err := fzB32.DecodeString(q.Get("secret")); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("secret parameter %q decodes to %x, %v; want %x", q.Get("secret"), got, err, secret)
		}
		for name, want := range map[string]string{"algorithm": p.Algorithm, "digits": strconv.Itoa(p.Digits), "period": strconv.Itoa(p.Period)} {
			if got := q[name]; len(got) != 1 || got[0] != want {
				t.Fatalf("%s parameter %q, want %q", name, got, want)
			}
		}
		if len(q) != 4+map[bool]int{true: 1, false: 0}[issuer != ""] {
			t.Fatalf("unexpected parameters in %q", uri)
		}
	})
}

// FuzzClassifyCode: every typed input is a TOTP code, a backup code or
// malformed — never two of these — and the malformed error never echoes
// the input.
func FuzzClassifyCode(f *testing.F) {
	for _, s := range []string{
		"123456", "1234567", "12345678", "123 456", " 123456 ", "12-34-56", "123456789", "12345",
		"abcd-efgh-jkmn", "ABCDEFGHJKMN", "123456789012", "1234-5678-9012", "1234 5678 9012",
		"iiiiii", "oooooo", "IIIIIIIIIIII", "١٢٣٤٥٦", "１２３４５６", "123456\n", "\v123456\u00a0",
		"", "-", "\t\t", "12345६",
	} {
		f.Add(s)
	}
	_, _, malformed := classifyCode("x")
	f.Fuzz(func(t *testing.T, input string) {
		kind, code, err := classifyCode(input)
		backup, isBackup := NormalizeBackupCode(input)
		trimmed := normalizeTOTPInput(strings.TrimSpace(input))
		isTOTP := false
		for d := 6; d <= 8; d++ {
			isTOTP = isTOTP || IsTOTPCode(trimmed, d)
		}
		if isTOTP && isBackup {
			t.Fatalf("%q is both a TOTP code (%q) and a backup code (%q)", input, trimmed, backup)
		}
		switch {
		case err != nil:
			if !errors.Is(err, ErrMalformedCode) || err.Error() != malformed.Error() {
				t.Fatalf("classifyCode(%q) error %q", input, err)
			}
			if isTOTP || isBackup {
				t.Fatalf("classifyCode(%q) malformed, but TOTP %v backup %v", input, isTOTP, isBackup)
			}
		case kind == kindTOTP:
			if !isTOTP || code != trimmed || len(code) < 6 || len(code) > 8 {
				t.Fatalf("classifyCode(%q) = TOTP %q", input, code)
			}
			for i := 0; i < len(code); i++ {
				if code[i] < '0' || code[i] > '9' {
					t.Fatalf("classifyCode(%q) = TOTP %q with a non-digit", input, code)
				}
			}
		case kind == kindBackup:
			if !isBackup || code != backup {
				t.Fatalf("classifyCode(%q) = backup %q, NormalizeBackupCode gives %q %v", input, code, backup, isBackup)
			}
		default:
			t.Fatalf("classifyCode(%q) = kind %d", input, kind)
		}
	})
}
