package models

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// crockford is Crockford's base32 alphabet (https://www.crockford.com/base32.html)
// in lower case, written out independently of the package constant.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

var backupFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

func TestNormalizeBackupCode(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = rejected
	}{
		{"abcd-efgh-jkmn", "abcdefghjkmn"},
		{"ABCD-EFGH-JKMN", "abcdefghjkmn"},
		{"AbCd-eFgH-jKmN", "abcdefghjkmn"},
		{"abcdefghjkmn", "abcdefghjkmn"},
		{"ABCDEFGHJKMN", "abcdefghjkmn"},
		{"abcd efgh jkmn", "abcdefghjkmn"},
		{"  abcd-efgh-jkmn  ", "abcdefghjkmn"},
		{"\tabcd - efgh - jkmn", "abcdefghjkmn"},
		{"ab-cd-ef-gh-jk-mn", "abcdefghjkmn"},
		{"pqrs-tvwx-yz01", "pqrstvwxyz01"},
		{"2345-6789-0000", "234567890000"},
		// Crockford look-alikes: i, l → 1 and o → 0, in either case.
		{"iIlL-oO00-1111", "111100001111"},
		{"abcd-efgh-jkmi", "abcdefghjkm1"},
		{"abcd-efgh-jkml", "abcdefghjkm1"},
		{"abcd-efgh-jkmo", "abcdefghjkm0"},
		{"ABCD-EFGH-JKMO", "abcdefghjkm0"},
		// u is not in the alphabet (Crockford reserves it).
		{"abcd-efgh-jkmu", ""},
		{"ABCD-EFGH-JKMU", ""},
		// Wrong length.
		{"", ""},
		{"----", ""},
		{"abcd-efgh-jkm", ""},
		{"abcd-efgh-jkmnp", ""},
		{"abcd-efgh-jkmn-pqrs", ""},
		{"123456", ""},
		// Other characters.
		{"abcd_efgh_jkmn", ""},
		{"abcd.efgh.jkmn", ""},
		{"abcd-efgh-jkm!", ""},
		{"abcd-efgh-jkm\x00", ""},
		{"abcd-efgh-jkmé", ""},
		{"ａbcd-efgh-jkmn", ""},      // full-width a
		{"abcd-efgh-jkm\u212a", ""}, // Kelvin sign, which folds to k in Unicode
		{"abcd-efgh-jkm\u0131", ""}, // dotless ı
		{"abcd-efgh-jkm\u0130", ""}, // İ
		{"абвг-efgh-jkmn", ""},
		{"abcd-efgh-jk\xffn", ""},
	}
	for _, tc := range tests {
		got, ok := NormalizeBackupCode(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("NormalizeBackupCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.want != "")
		}
	}
}

func TestNewBackupCodeFormat(t *testing.T) {
	const n = 5000
	seen := make(map[string]bool, n)
	counts := map[rune]int{}
	for range n {
		code, err := newBackupCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !backupFormat.MatchString(code) {
			t.Fatalf("backup code %q does not look like xxxx-xxxx-xxxx in Crockford's alphabet", code)
		}
		if seen[code] {
			t.Fatalf("backup code %q drawn twice in %d", code, n)
		}
		seen[code] = true
		norm, ok := NormalizeBackupCode(code)
		if !ok || norm != strings.ReplaceAll(code, "-", "") {
			t.Fatalf("NormalizeBackupCode(%q) = %q, %v", code, norm, ok)
		}
		if upper, _ := NormalizeBackupCode(strings.ToUpper(code)); upper != norm {
			t.Fatalf("upper-case %q normalizes to %q, want %q", code, upper, norm)
		}
		for _, r := range norm {
			counts[r]++
		}
	}
	// Every one of the 32 symbols is used, roughly uniformly: 60 000
	// symbols give 1875 expected each; ±25% is beyond 10 standard deviations.
	if len(counts) != 32 {
		t.Errorf("codes use %d distinct symbols, want all 32", len(counts))
	}
	for _, r := range crockford {
		if c := counts[r]; c < 1875*3/4 || c > 1875*5/4 {
			t.Errorf("symbol %q appears %d times in %d symbols, want about 1875", r, c, n*12)
		}
	}
}

// TestNewBackupCodeCarries60Bits shows the mapping from randomness to code
// is injective on 60 bits: any 60-bit value, split into twelve 5-bit
// symbols, is recovered from the code, whatever the other random bits are.
func TestNewBackupCodeCarries60Bits(t *testing.T) {
	if got := len(crockford); got != 32 {
		t.Fatalf("alphabet size %d", got)
	}
	for range 200 {
		var v [8]byte
		rand.Read(v[:])
		value := uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
			uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7])
		value &= 1<<60 - 1
		// Build the random bytes: low five bits from value, high three
		// bits random noise that must not matter.
		noise := make([]byte, 12)
		rand.Read(noise)
		src := make([]byte, 12)
		for i := range src {
			src[i] = byte(value>>(55-5*i))&31 | noise[i]&^31
		}
		code, err := newBackupCode(bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		norm, _ := NormalizeBackupCode(code)
		var back uint64
		for _, r := range norm {
			back = back<<5 | uint64(strings.IndexRune(crockford, r))
		}
		if back != value {
			t.Fatalf("code %q decodes to %015x, want %015x", code, back, value)
		}
	}
	// The extremes of the 60-bit range.
	if code, _ := newBackupCode(bytes.NewReader(make([]byte, 12))); code != "0000-0000-0000" {
		t.Errorf("all-zero randomness gives %q", code)
	}
	if code, _ := newBackupCode(bytes.NewReader(bytes.Repeat([]byte{0xff}, 12))); code != "zzzz-zzzz-zzzz" {
		t.Errorf("all-ones randomness gives %q", code)
	}
}

func TestNewBackupCodeShortRandomness(t *testing.T) {
	if _, err := newBackupCode(bytes.NewReader(make([]byte, 11))); err == nil {
		t.Error("11 random bytes: want an error")
	}
	if _, err := newSalt(bytes.NewReader(make([]byte, 15))); err == nil {
		t.Error("15 random bytes for a salt: want an error")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestBackupCodeHash(t *testing.T) {
	salt, err := newSalt(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(salt) < 16 {
		t.Errorf("salt is %d bytes, want at least 128 bits", len(salt))
	}
	code := "abcdefghjkmn"
	want := sha256.Sum256(append(append([]byte{}, salt...), code...))
	got := hashBackupCode(salt, code)
	if !bytes.Equal(got, want[:]) {
		t.Errorf("hashBackupCode = %x, want SHA-256(salt || code) = %x", got, want)
	}
	if !backupCodeMatches(salt, got, code) {
		t.Error("backupCodeMatches(right code) = false")
	}
	for _, other := range []string{"abcdefghjkmp", "abcd-efgh-jkmn", "ABCDEFGHJKMN", ""} {
		if backupCodeMatches(salt, got, other) {
			t.Errorf("backupCodeMatches(%q) = true for a hash of %q", other, code)
		}
	}
	salt2, _ := newSalt(rand.Reader)
	if bytes.Equal(salt, salt2) {
		t.Error("two salts are equal")
	}
	if bytes.Equal(hashBackupCode(salt2, code), got) {
		t.Error("the same code under two salts hashes the same")
	}
}

func TestNewBackupCodesService(t *testing.T) {
	svc, err := NewService(Config{BackupCodeCount: 12})
	if err != nil {
		t.Fatal(err)
	}
	plain, rows, err := svc.newBackupCodes("42", truncateTime(testNow))
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 12 || len(rows) != 12 {
		t.Fatalf("got %d codes and %d rows, want 12", len(plain), len(rows))
	}
	salts := map[string]bool{}
	for i, code := range plain {
		norm, ok := NormalizeBackupCode(code)
		if !ok || !backupFormat.MatchString(code) {
			t.Errorf("code %q is malformed", code)
		}
		r := rows[i]
		if r.UserID != "42" || r.UsedAt != nil || !backupCodeMatches(r.Salt, r.Hash, norm) {
			t.Errorf("row %d does not hold code %q for user 42: %+v", i, code, r)
		}
		if bytes.Contains(r.Hash, []byte(norm)) || bytes.Contains(r.Salt, []byte(norm)) {
			t.Errorf("row %d contains the plaintext code", i)
		}
		if salts[string(r.Salt)] {
			t.Errorf("salt reused across codes")
		}
		salts[string(r.Salt)] = true
	}

	svc.cfg.Random = failingReader{}
	if _, _, err := svc.newBackupCodes("42", testNow); err == nil {
		t.Error("failing randomness: want an error")
	}
}
