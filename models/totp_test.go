package models_test

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/totpadm/totpadm/models"
)

// RFC 6238 Appendix B: the seed for each mode is the ASCII string
// "12345678901234567890" repeated to the hash's natural key length.
var (
	rfcSeedSHA1   = []byte("12345678901234567890")
	rfcSeedSHA256 = []byte("12345678901234567890123456789012")
	rfcSeedSHA512 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

var rfc6238Vectors = []struct {
	unix int64
	alg  string
	want string
}{
	{59, "SHA1", "94287082"},
	{59, "SHA256", "46119246"},
	{59, "SHA512", "90693936"},
	{1111111109, "SHA1", "07081804"},
	{1111111109, "SHA256", "68084774"},
	{1111111109, "SHA512", "25091201"},
	{1111111111, "SHA1", "14050471"},
	{1111111111, "SHA256", "67062674"},
	{1111111111, "SHA512", "99943326"},
	{1234567890, "SHA1", "89005924"},
	{1234567890, "SHA256", "91819424"},
	{1234567890, "SHA512", "93441116"},
	{2000000000, "SHA1", "69279037"},
	{2000000000, "SHA256", "90698825"},
	{2000000000, "SHA512", "38618901"},
	{20000000000, "SHA1", "65353130"},
	{20000000000, "SHA256", "77737706"},
	{20000000000, "SHA512", "47863826"},
}

// RFC 6238 Appendix B lists T in hex for each time.
var rfc6238Steps = map[int64]int64{
	59: 0x1, 1111111109: 0x23523EC, 1111111111: 0x23523ED,
	1234567890: 0x273EF07, 2000000000: 0x3F940AA, 20000000000: 0x27BC86AA,
}

func rfcSeed(alg string) []byte {
	switch alg {
	case "SHA256":
		return rfcSeedSHA256
	case "SHA512":
		return rfcSeedSHA512
	}
	return rfcSeedSHA1
}

func TestGenerateCodeRFC6238(t *testing.T) {
	for _, v := range rfc6238Vectors {
		t.Run(fmt.Sprintf("%s@%d", v.alg, v.unix), func(t *testing.T) {
			p := models.Params{Algorithm: v.alg, Digits: 8, Period: 30}
			step := p.Step(time.Unix(v.unix, 0))
			if step != rfc6238Steps[v.unix] {
				t.Fatalf("Step(%d) = %#x, RFC 6238 says %#x", v.unix, step, rfc6238Steps[v.unix])
			}
			got, err := models.GenerateCode(rfcSeed(v.alg), step, p)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.want {
				t.Errorf("GenerateCode = %s, RFC 6238 says %s", got, v.want)
			}
			// The test's own reference implementation must agree too,
			// since the service tests rely on it.
			if ref := refTOTP(rfcSeed(v.alg), time.Unix(v.unix, 0), p); ref != v.want {
				t.Errorf("reference refTOTP = %s, RFC 6238 says %s", ref, v.want)
			}
		})
	}
}

func TestGenerateCodeRFC4226(t *testing.T) {
	// RFC 4226 Appendix D: secret "12345678901234567890", 6 digits.
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, w := range want {
		for _, period := range []int{1, 30, 300} { // the period plays no part for a given step
			got, err := models.GenerateCode(rfcSeedSHA1, int64(counter), models.Params{Algorithm: "SHA1", Digits: 6, Period: period})
			if err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("HOTP counter %d (period %d) = %s, RFC 4226 says %s", counter, period, got, w)
			}
		}
		if ref := refHOTP(rfcSeedSHA1, uint64(counter), "SHA1", 6); ref != w {
			t.Errorf("reference refHOTP counter %d = %s, RFC 4226 says %s", counter, ref, w)
		}
	}
}

func TestGenerateCodeErrors(t *testing.T) {
	secret := rfcSeedSHA1
	if _, err := models.GenerateCode(secret, -1, models.DefaultParams); err == nil {
		t.Error("negative step: want an error")
	}
	if _, err := models.GenerateCode(secret, 1, models.Params{Algorithm: "MD5", Digits: 6, Period: 30}); err == nil {
		t.Error("MD5: want an error")
	}
}

// TestGenerateCodeOathtool compares with oathtool (OATH Toolkit), an
// independent implementation, over random secrets, every algorithm, digit
// count and two periods.
func TestGenerateCodeOathtool(t *testing.T) {
	tool, err := exec.LookPath("oathtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("oathtool not found and CI is set: install oath-toolkit (%v)", err)
		}
		t.Skipf("oathtool not found (install oath-toolkit to cross-check TOTP codes): %v", err)
	}
	times := []int64{0, 59, 1111111109, 1700000020, 4102444800, randomUnix(t)}
	for _, alg := range []string{"SHA1", "SHA256", "SHA512"} {
		for _, digits := range []int{6, 7, 8} {
			for _, period := range []int{30, 60} {
				secret := make([]byte, 20)
				if _, err := rand.Read(secret); err != nil {
					t.Fatal(err)
				}
				b32secret := base32.StdEncoding.EncodeToString(secret)
				p := models.Params{Algorithm: alg, Digits: digits, Period: period}
				for _, unix := range times {
					const window = 2 // oathtool prints the codes of steps T..T+window
					out, err := exec.Command(tool, "--totp="+alg, "-b", "-d", strconv.Itoa(digits),
						"-s", strconv.Itoa(period), "-N", "@"+strconv.FormatInt(unix, 10),
						"-w", strconv.Itoa(window), b32secret).Output()
					if err != nil {
						t.Fatalf("oathtool: %v", err)
					}
					want := strings.Fields(string(out))
					if len(want) != window+1 {
						t.Fatalf("oathtool printed %q, want %d codes", out, window+1)
					}
					step := unix / int64(period)
					for i, w := range want {
						got, err := models.GenerateCode(secret, step+int64(i), p)
						if err != nil {
							t.Fatal(err)
						}
						if got != w {
							t.Errorf("%s/%d digits/%ds at %d step +%d, secret %s: GenerateCode = %s, oathtool = %s",
								alg, digits, period, unix, i, b32secret, got, w)
						}
					}
				}
			}
		}
	}
}

func randomUnix(t *testing.T) int64 {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return int64(b[0])<<24 | int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3])
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		p  models.Params
		ok bool
	}{
		{models.DefaultParams, true},
		{models.Params{Algorithm: "SHA1", Digits: 6, Period: 30}, true},
		{models.Params{Algorithm: "SHA256", Digits: 7, Period: 60}, true},
		{models.Params{Algorithm: "SHA512", Digits: 8, Period: 1}, true},
		{models.Params{Algorithm: "", Digits: 6, Period: 30}, false},
		{models.Params{Algorithm: "MD5", Digits: 6, Period: 30}, false},
		{models.Params{Algorithm: "SHA-1", Digits: 6, Period: 30}, false},
		{models.Params{Algorithm: "SHA384", Digits: 6, Period: 30}, false},
		{models.Params{Algorithm: "SHA1", Digits: 5, Period: 30}, false},
		{models.Params{Algorithm: "SHA1", Digits: 9, Period: 30}, false},
		{models.Params{Algorithm: "SHA1", Digits: 0, Period: 30}, false},
		{models.Params{Algorithm: "SHA1", Digits: 6, Period: 0}, false},
		{models.Params{Algorithm: "SHA1", Digits: 6, Period: -30}, false},
		{models.Params{Algorithm: "SHA1", Digits: 6, Period: 301}, false},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

func TestParamsDefaults(t *testing.T) {
	// SPEC §2: defaults SHA1, 6 digits, 30 s; anything else warns.
	if models.DefaultParams != (models.Params{Algorithm: "SHA1", Digits: 6, Period: 30}) {
		t.Errorf("DefaultParams = %+v", models.DefaultParams)
	}
	if models.DefaultParams.NonDefault() {
		t.Error("DefaultParams.NonDefault() = true")
	}
	for _, p := range []models.Params{
		{Algorithm: "SHA256", Digits: 6, Period: 30},
		{Algorithm: "SHA1", Digits: 8, Period: 30},
		{Algorithm: "SHA1", Digits: 6, Period: 60},
	} {
		if !p.NonDefault() {
			t.Errorf("%+v.NonDefault() = false", p)
		}
	}
}

func TestIsTOTPCode(t *testing.T) {
	tests := []struct {
		in     string
		digits int
		want   bool
	}{
		{"123456", 6, true},
		{"000000", 6, true},
		{" 123456 ", 6, true},
		{"12345678", 8, true},
		{"12345", 6, false},
		{"1234567", 6, false},
		{"12345a", 6, false},
		{"", 6, false},
		{"12 345", 6, false},
		{"１２３４５６", 6, false}, // full-width digits
		{"-12345", 6, false},
		{"123456", 8, false},
	}
	for _, tc := range tests {
		if got := models.IsTOTPCode(tc.in, tc.digits); got != tc.want {
			t.Errorf("IsTOTPCode(%q, %d) = %v, want %v", tc.in, tc.digits, got, tc.want)
		}
	}
}

// parseLabel splits an otpauth URI the way the Key Uri Format defines it:
// the escaped path after /totp/, split at the first literal ':' into
// issuer and account, each then unescaped.
func parseLabel(t *testing.T, u *url.URL) (issuer, account string, hasIssuer bool) {
	t.Helper()
	label, ok := strings.CutPrefix(u.EscapedPath(), "/")
	if !ok {
		t.Fatalf("path %q does not start with /", u.EscapedPath())
	}
	unescape := func(s string) string {
		v, err := url.PathUnescape(s)
		if err != nil {
			t.Fatalf("unescape %q: %v", s, err)
		}
		return v
	}
	if i := strings.IndexByte(label, ':'); i >= 0 {
		return unescape(label[:i]), unescape(label[i+1:]), true
	}
	return "", unescape(label), false
}

func TestKeyURIRoundTrip(t *testing.T) {
	secret := make([]byte, models.SecretSize)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	names := []struct{ issuer, account string }{
		{"totpadm", "alice"},
		{"Example Corp", "alice@example.com"},
		{"ACME:Prod", "bob"},
		{"ACME", "domain:bob"},
		{"a:b:c", "d:e:f"},
		{"Q&A?", "x#y"},
		{"100% real", "50%25"},
		{"path/issuer", "dir/user"},
		{"plus+sign", "space  two"},
		{"Ünïcödé 会社", "пользователь"},
		{"emoji 🔐", "名前"},
		{"a=b;c", "?&=#"},
		{"", "no-issuer"},
		{"", "colon:in:account"},
	}
	params := []models.Params{
		models.DefaultParams,
		{Algorithm: "SHA256", Digits: 8, Period: 60},
		{Algorithm: "sha512", Digits: 7, Period: 15},
	}
	for _, n := range names {
		for _, p := range params {
			raw := models.KeyURI(n.issuer, n.account, secret, p)
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("KeyURI(%q, %q) = %q does not parse: %v", n.issuer, n.account, raw, err)
				continue
			}
			if u.Scheme != "otpauth" || u.Host != "totp" {
				t.Errorf("%q: scheme %q host %q, want otpauth://totp/", raw, u.Scheme, u.Host)
			}
			issuer, account, hasIssuer := parseLabel(t, u)
			if hasIssuer != (n.issuer != "") || issuer != n.issuer || account != n.account {
				t.Errorf("%q: label parses to issuer %q (present %v), account %q; want %q, %q", raw, issuer, hasIssuer, account, n.issuer, n.account)
			}
			q := u.Query()
			if q.Has("issuer") != (n.issuer != "") || q.Get("issuer") != n.issuer {
				t.Errorf("%q: issuer parameter %q (present %v), want %q", raw, q.Get("issuer"), q.Has("issuer"), n.issuer)
			}
			got, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(q.Get("secret"))
			if err != nil || string(got) != string(secret) {
				t.Errorf("%q: secret parameter decodes to %x (%v), want %x", raw, got, err, secret)
			}
			if strings.Contains(q.Get("secret"), "=") {
				t.Errorf("%q: secret parameter is padded", raw)
			}
			if q.Get("algorithm") != strings.ToUpper(p.Algorithm) || q.Get("digits") != strconv.Itoa(p.Digits) || q.Get("period") != strconv.Itoa(p.Period) {
				t.Errorf("%q: algorithm/digits/period = %s/%s/%s, want %s/%d/%d", raw, q.Get("algorithm"), q.Get("digits"), q.Get("period"), strings.ToUpper(p.Algorithm), p.Digits, p.Period)
			}

			// A third-party reader of the format: github.com/pquerna/otp.
			key, err := otp.NewKeyFromURL(raw)
			if err != nil {
				t.Errorf("pquerna NewKeyFromURL(%q): %v", raw, err)
				continue
			}
			wantAlg := map[string]otp.Algorithm{"SHA1": otp.AlgorithmSHA1, "SHA256": otp.AlgorithmSHA256, "SHA512": otp.AlgorithmSHA512}[strings.ToUpper(p.Algorithm)]
			if key.Type() != "totp" || key.Secret() != b32.EncodeToString(secret) || key.Period() != uint64(p.Period) ||
				key.Digits() != otp.Digits(p.Digits) || key.Algorithm() != wantAlg {
				t.Errorf("pquerna reads %q as type %s secret %s period %d digits %d alg %s",
					raw, key.Type(), key.Secret(), key.Period(), key.Digits(), key.Algorithm())
			}
			// pquerna splits the *decoded* label at its first ':' (the
			// format forbids ':' in names), so issuer and account only come
			// back where no ':' stands before the separator.
			if n.issuer != "" || !strings.Contains(n.account, ":") {
				if key.Issuer() != n.issuer {
					t.Errorf("pquerna reads issuer of %q as %q, want %q", raw, key.Issuer(), n.issuer)
				}
			}
			if (n.issuer != "" && !strings.Contains(n.issuer, ":")) || (n.issuer == "" && !strings.Contains(n.account, ":")) {
				if key.AccountName() != n.account {
					t.Errorf("pquerna reads account of %q as %q, want %q", raw, key.AccountName(), n.account)
				}
			}
		}
	}
}

func TestManualEntryKey(t *testing.T) {
	for _, n := range []int{1, 3, 5, 10, 16, models.SecretSize, 32} {
		secret := make([]byte, n)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		got := models.ManualEntryKey(secret)
		want := strings.TrimRight(base32.StdEncoding.EncodeToString(secret), "=")
		if strings.ReplaceAll(got, " ", "") != want {
			t.Errorf("ManualEntryKey(%d bytes) = %q, want the groups of %q", n, got, want)
		}
		groups := strings.Split(got, " ")
		for i, g := range groups {
			if len(g) == 0 || len(g) > 4 || (i < len(groups)-1 && len(g) != 4) {
				t.Errorf("ManualEntryKey(%d bytes) = %q: group %d is %q, want groups of four", n, got, i, g)
			}
		}
		back, err := models.DecodeSecret(got)
		if err != nil || string(back) != string(secret) {
			t.Errorf("DecodeSecret(ManualEntryKey) = %x, %v; want %x", back, err, secret)
		}
	}
	// 160 bits = 32 base32 symbols = eight groups.
	if got := models.ManualEntryKey(make([]byte, models.SecretSize)); got != "AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA" {
		t.Errorf("ManualEntryKey(20 zero bytes) = %q", got)
	}
}

func TestDecodeSecret(t *testing.T) {
	want := rfcSeedSHA1 // base32: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
	ok := []string{
		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		"gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
		"gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
		"GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ",
		" GezdGNBVgy3tQOJQ GEZDGNBVGY3TQOJQ ",
	}
	for _, s := range ok {
		got, err := models.DecodeSecret(s)
		if err != nil || string(got) != string(want) {
			t.Errorf("DecodeSecret(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
	// Padding is optional.
	for _, s := range []string{"MZXW6===", "MZXW6", "mzxw6"} {
		got, err := models.DecodeSecret(s)
		if err != nil || string(got) != "foo" {
			t.Errorf("DecodeSecret(%q) = %q, %v; want \"foo\"", s, got, err)
		}
	}
	for _, s := range []string{"GEZDGNBVGY3TQOJ1", "GEZDGNBVGY3TQOJ0", "GEZDGNBV!Y3TQOJQ", "GEZDGNBVGY3TQOJQ8", "ÄEZDGNBV"} {
		if got, err := models.DecodeSecret(s); err == nil {
			t.Errorf("DecodeSecret(%q) = %x, want an error", s, got)
		}
	}
}

// TestCheckCode covers the no-write check used while a person types the
// first code: the window, malformed input, and that nothing is consumed.
func TestCheckCode(t *testing.T) {
	clock := &fakeClock{now: baseTime}
	cfg := models.DefaultConfig()
	cfg.Now = clock.Now
	svc, err := models.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []models.Params{models.DefaultParams, {Algorithm: "SHA512", Digits: 8, Period: 60}} {
		enr, err := svc.NewEnrollment(models.User{ID: "7", Login: "grace"}, p)
		if err != nil {
			t.Fatal(err)
		}
		secret := decodeB32(t, enr.Secret())
		if len(secret) != models.SecretSize || models.SecretSize != 20 {
			t.Fatalf("secret is %d bytes, want 160 bits", len(secret))
		}
		at := func(off int) string {
			return refTOTP(secret, baseTime.Add(time.Duration(off*p.Period)*time.Second), p)
		}
		for off, want := range map[int]bool{-2: false, -1: true, 0: true, 1: true, 2: false} {
			if at(off) == at(0) && off != 0 {
				continue // an astronomically unlikely collision
			}
			for range 2 { // checking twice: CheckCode consumes nothing
				ok, err := svc.CheckCode(enr, at(off))
				if err != nil || ok != want {
					t.Errorf("%+v: CheckCode(step %+d) = %v, %v; want %v", p, off, ok, err, want)
				}
			}
		}
		spaced := at(0)[:3] + " " + at(0)[3:]
		if ok, err := svc.CheckCode(enr, spaced); err != nil || !ok {
			t.Errorf("CheckCode(%q) = %v, %v; want accepted", spaced, ok, err)
		}
		for _, bad := range []string{"", "12345", "abcdefgh", strings.Repeat("1", p.Digits+1), strings.Repeat("1", p.Digits-1)} {
			if _, err := svc.CheckCode(enr, bad); !errors.Is(err, models.ErrMalformedCode) {
				t.Errorf("CheckCode(%q) error = %v, want ErrMalformedCode", bad, err)
			}
		}
		// The URI carries the issuer, the login and the parameters.
		u, err := url.Parse(enr.URI())
		if err != nil {
			t.Fatal(err)
		}
		issuer, account, _ := parseLabel(t, u)
		if issuer != "totpadm" || account != "grace" || u.Query().Get("secret") != enr.Secret() || u.Query().Get("digits") != strconv.Itoa(p.Digits) {
			t.Errorf("enrollment URI %q: issuer %q account %q", enr.URI(), issuer, account)
		}
		if strings.ReplaceAll(enr.ManualEntryKey(), " ", "") != enr.Secret() {
			t.Errorf("ManualEntryKey %q is not the grouped secret %q", enr.ManualEntryKey(), enr.Secret())
		}
	}
	// Two enrollments never share a secret.
	a, _ := svc.NewEnrollment(models.User{ID: "1", Login: "a"}, models.Params{})
	b, _ := svc.NewEnrollment(models.User{ID: "1", Login: "a"}, models.Params{})
	if a.Secret() == b.Secret() {
		t.Error("two enrollments drew the same secret")
	}
	if _, err := svc.NewEnrollment(models.User{ID: "1"}, models.Params{Algorithm: "MD5", Digits: 6, Period: 30}); err == nil {
		t.Error("NewEnrollment with MD5: want an error")
	}
}
