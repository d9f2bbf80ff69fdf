package models

import (
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// SecretSize is 160 bits, the HMAC-SHA1 output length that RFC 4226 §4
// requires and recommends for shared secrets.
const SecretSize = 20

// secretEncoding is how authenticator apps expect the shared secret:
// RFC 4648 base32 without padding.
var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Params are the RFC 6238 parameters of one credential.
type Params struct {
	Algorithm string // SHA1, SHA256 or SHA512
	Digits    int    // 6 to 8
	Period    int    // seconds per time step
}

// DefaultParams are the only values every common authenticator app honours.
var DefaultParams = Params{Algorithm: "SHA1", Digits: 6, Period: 30}

// Validate checks that p is usable at all.
func (p Params) Validate() error {
	if _, err := p.otpAlgorithm(); err != nil {
		return err
	}
	if p.Digits < 6 || p.Digits > 8 {
		return fmt.Errorf("digits must be 6, 7 or 8, got %d", p.Digits)
	}
	if p.Period < 1 || p.Period > 300 {
		return fmt.Errorf("period must be 1 to 300 seconds, got %d", p.Period)
	}
	return nil
}

// NonDefault reports whether p differs from what every app honours; such
// enrollments silently produce wrong codes in Google and Microsoft
// Authenticator, which ignore these URI parameters.
func (p Params) NonDefault() bool { return p != DefaultParams }

func (p Params) otpAlgorithm() (otp.Algorithm, error) {
	switch strings.ToUpper(p.Algorithm) {
	case "SHA1":
		return otp.AlgorithmSHA1, nil
	case "SHA256":
		return otp.AlgorithmSHA256, nil
	case "SHA512":
		return otp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("algorithm must be SHA1, SHA256 or SHA512, got %q", p.Algorithm)
}

// Step is the RFC 6238 time step T for t.
func (p Params) Step(t time.Time) int64 {
	return t.Unix() / int64(p.Period)
}

// GenerateCode returns the code for the given time step. Exposed so that
// tests and `verify --diagnose` compute codes the same way verify checks them.
func GenerateCode(secret []byte, step int64, p Params) (string, error) {
	alg, err := p.otpAlgorithm()
	if err != nil {
		return "", err
	}
	if step < 0 {
		return "", fmt.Errorf("negative time step %d", step)
	}
	return hotp.GenerateCodeCustom(secretEncoding.EncodeToString(secret), uint64(step), hotp.ValidateOpts{
		Digits:    otp.Digits(p.Digits),
		Algorithm: alg,
	})
}

// matchStep returns the time step in [now-skew, now+skew] whose code equals
// code, preferring the current step, or false.
func matchStep(secret []byte, code string, now time.Time, skew int, p Params) (int64, bool, error) {
	current := p.Step(now)
	order := []int64{current}
	for d := 1; d <= skew; d++ {
		order = append(order, current-int64(d), current+int64(d))
	}
	found, matched := int64(0), false
	for _, step := range order {
		want, err := GenerateCode(secret, step, p)
		if err != nil {
			return 0, false, err
		}
		// Compare every candidate, not just until the first hit, so timing
		// does not reveal which step matched.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !matched {
			found, matched = step, true
		}
	}
	return found, matched, nil
}

// IsTOTPCode reports whether input looks like a TOTP code of n digits.
func IsTOTPCode(input string, digits int) bool {
	input = strings.TrimSpace(input)
	if len(input) != digits {
		return false
	}
	for _, r := range input {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// normalizeTOTPInput strips the spaces people type in "123 456".
func normalizeTOTPInput(input string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '-' {
			return -1
		}
		return r
	}, input)
}

// KeyURI builds the otpauth:// URI of Google's Key Uri Format. Issuer and
// account are escaped separately, so a ':' inside either cannot move the
// boundary between them, and the issuer is repeated as a query parameter as
// the format recommends.
func KeyURI(issuer, account string, secret []byte, p Params) string {
	label := escapeLabelPart(account)
	if issuer != "" {
		label = escapeLabelPart(issuer) + ":" + label
	}
	q := url.Values{}
	q.Set("secret", secretEncoding.EncodeToString(secret))
	if issuer != "" {
		q.Set("issuer", issuer)
	}
	q.Set("algorithm", strings.ToUpper(p.Algorithm))
	q.Set("digits", strconv.Itoa(p.Digits))
	q.Set("period", strconv.Itoa(p.Period))
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// escapeLabelPart escapes one side of the issuer:account label. PathEscape
// leaves ':' alone (it is legal in a path), but here it is the separator.
func escapeLabelPart(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}

// ManualEntryKey is the secret in base32, grouped by four for reading aloud
// or typing into an app without a camera.
func ManualEntryKey(secret []byte) string {
	s := secretEncoding.EncodeToString(secret)
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// DecodeSecret reads a base32 secret as apps show it: any case, spaces and
// padding optional.
func DecodeSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(s))
	raw, err := secretEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("secret is not valid base32: %w", err)
	}
	return raw, nil
}
