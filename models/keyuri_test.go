package models

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// b32 of 20 bytes ("12345678901234567890", RFC 4226's test secret).
const testSecret20 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestParseKeyURILabel(t *testing.T) {
	for _, tc := range []struct {
		name, uri       string
		issuer, account string
		err             string // substring of the error; "" = accepted
	}{
		{name: "literal colon", uri: "otpauth://totp/Example:alice?secret=" + testSecret20 + "&issuer=Example", issuer: "Example", account: "alice"},
		{name: "encoded colon", uri: "otpauth://totp/Example%20App%3Acarol?secret=" + testSecret20, issuer: "Example App", account: "carol"},
		{name: "encoded colon lower case", uri: "otpauth://totp/Example%3acarol?secret=" + testSecret20, issuer: "Example", account: "carol"},
		{name: "encoded colon and parameter", uri: "otpauth://totp/Example%20App%3Acarol?secret=" + testSecret20 + "&issuer=Example%20App", issuer: "Example App", account: "carol"},
		// The account is a login, taken byte for byte: the spaces are
		// part of it, so it can never land on john.doe@email.com.
		{name: "space after colon", uri: "otpauth://totp/ACME%20Co:%20%20john.doe%40email.com?secret=" + testSecret20 + "&issuer=ACME%20Co", issuer: "ACME Co", account: "  john.doe@email.com"},
		{name: "trailing space", uri: "otpauth://totp/ACME:admin%20?secret=" + testSecret20, issuer: "ACME", account: "admin "},
		{name: "whitespace first", uri: "otpauth://totp/ACME:%09admin?secret=" + testSecret20, issuer: "ACME", account: "\tadmin"},
		{name: "NEL and line separator first", uri: "otpauth://totp/ACME:%C2%85%E2%80%A8admin?secret=" + testSecret20, issuer: "ACME", account: "\u0085\u2028admin"},
		{name: "case and composition kept", uri: "otpauth://totp/ACME:Cafe%CC%81?secret=" + testSecret20, issuer: "ACME", account: "Cafe\u0301"},
		{name: "invalid UTF-8 kept", uri: "otpauth://totp/ACME:a%FFb?secret=" + testSecret20, issuer: "ACME", account: "a\xffb"},
		{name: "no issuer", uri: "otpauth://totp/alice%40example.com?secret=" + testSecret20, account: "alice@example.com"},
		{name: "issuer only as parameter", uri: "otpauth://totp/alice?secret=" + testSecret20 + "&issuer=Example", issuer: "Example", account: "alice"},
		{name: "issuer case differs", uri: "otpauth://totp/ACME:alice?secret=" + testSecret20 + "&issuer=Acme", issuer: "Acme", account: "alice"},
		{name: "colon in account", uri: "otpauth://totp/totpadm:domain%3Abob?secret=" + testSecret20 + "&issuer=totpadm", issuer: "totpadm", account: "domain:bob"},
		{name: "colon in account, no parameter", uri: "otpauth://totp/totpadm:domain:bob?secret=" + testSecret20, issuer: "totpadm", account: "domain:bob"},
		{name: "colon in issuer, as totpadm writes it", uri: "otpauth://totp/ACME%3AProd:bob?secret=" + testSecret20 + "&issuer=ACME%3AProd", issuer: "ACME:Prod", account: "bob"},
		{name: "login-less user", uri: "otpauth://totp/totpadm:id%3A42?secret=" + testSecret20 + "&issuer=totpadm", issuer: "totpadm", account: "id:42"},
		{name: "issuer disagrees", uri: "otpauth://totp/Other:alice?secret=" + testSecret20 + "&issuer=Example", err: `the label's issuer "Other" differs from the issuer parameter "Example"`},
		{name: "issuer disagrees, encoded colon", uri: "otpauth://totp/Other%3Aalice?secret=" + testSecret20 + "&issuer=Example", err: "differs from the issuer parameter"},
		{name: "empty account", uri: "otpauth://totp/Example%3A?secret=" + testSecret20, err: "no account name"},
		{name: "blank account is a login of one space", uri: "otpauth://totp/Example:%20?secret=" + testSecret20 + "&issuer=Example", issuer: "Example", account: " "},
		{name: "surrounding whitespace is not part of a URI", uri: " otpauth://totp/Example:alice?secret=" + testSecret20, err: "not a URI"},
		{name: "bad escape", uri: "otpauth://totp/Example%3Gbob?secret=" + testSecret20, err: "not a URI"},
		{name: "hotp", uri: "otpauth://hotp/Example:alice?secret=" + testSecret20 + "&counter=0", err: "want otpauth://totp/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseKeyURI(tc.uri)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrInvalidURI) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseKeyURI(%q) = %+v, %v; want an ErrInvalidURI containing %q", tc.uri, c, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeyURI(%q): %v", tc.uri, err)
			}
			if c.Issuer != tc.issuer || c.Account != tc.account {
				t.Fatalf("ParseKeyURI(%q): issuer %q account %q, want %q %q", tc.uri, c.Issuer, c.Account, tc.issuer, tc.account)
			}
			if !bytes.Equal(c.Secret, []byte("12345678901234567890")) || c.Params != DefaultParams {
				t.Fatalf("secret %q params %+v", c.Secret, c.Params)
			}
		})
	}
}

// RFC 4226 §4: the shared secret MUST be at least 128 bits.
func TestParseKeyURISecretSize(t *testing.T) {
	for _, tc := range []struct {
		bytes int
		ok    bool
	}{{5, false}, {10, false}, {15, false}, {16, true}, {20, true}, {64, true}} {
		secret := bytes.Repeat([]byte{0xa5}, tc.bytes)
		uri := "otpauth://totp/Example:alice?secret=" + secretEncoding.EncodeToString(secret)
		c, err := ParseKeyURI(uri)
		if tc.ok {
			if err != nil || !bytes.Equal(c.Secret, secret) {
				t.Errorf("%d-byte secret: %v", tc.bytes, err)
			}
			continue
		}
		want := fmt.Sprintf("the secret has only %d bits; RFC 4226 requires at least 128", tc.bytes*8)
		if err == nil || !errors.Is(err, ErrInvalidURI) || !strings.Contains(err.Error(), want) {
			t.Errorf("%d-byte secret: %v, want an error saying %q", tc.bytes, err, want)
		}
	}

	// The library entry point applies the same floor.
	svc, err := NewService(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	user := User{ID: "1", Login: "alice"}
	if _, err := svc.ImportedEnrollment(user, make([]byte, 10), DefaultParams); err == nil || !strings.Contains(err.Error(), "at least 128") {
		t.Errorf("ImportedEnrollment of an 80-bit secret: %v", err)
	}
	if _, err := svc.ImportedEnrollment(user, make([]byte, 16), DefaultParams); err != nil {
		t.Errorf("ImportedEnrollment of a 128-bit secret: %v", err)
	}
}

// FuzzParseKeyURI: any input either parses to a usable enrollment (an
// account, a secret of at least 128 bits, valid parameters) or fails with
// ErrInvalidURI; and every URI totpadm's own KeyURI writes with an issuer
// reads back to the same issuer and account, colons and escapes included,
// the account byte for byte — the export/import round trip.
func FuzzParseKeyURI(f *testing.F) {
	for _, seed := range [][3]string{
		{"totpadm", "alice", "otpauth://totp/Example%20App%3Acarol?secret=" + testSecret20},
		{"ACME:Prod", "bob", "otpauth://totp/ACME%3AProd:bob?secret=" + testSecret20 + "&issuer=ACME%3AProd"},
		{"a:b:c", "d:e:f", "otpauth://totp/Other:alice?secret=" + testSecret20 + "&issuer=Example"},
		{"Example", "id:42", "otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQ"},
		{" padded ", " x ", "otpauth://totp/%3A%3A?secret=" + testSecret20 + "&issuer=%3A"},
		{"100% real", "50%25", "otpauth://totp/x?secret=" + testSecret20 + "&digits=9"},
		{"Ünïcödé 会社", "пользователь", "otpauth://totp/a%00b:c?secret=" + testSecret20},
		{"\x00\xff", "\r\n\t", "not a uri at all"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	secret := []byte("12345678901234567890")
	f.Fuzz(func(t *testing.T, issuer, account, raw string) {
		if c, err := ParseKeyURI(raw); err != nil {
			if !errors.Is(err, ErrInvalidURI) {
				t.Fatalf("ParseKeyURI(%q): error %v is not ErrInvalidURI", raw, err)
			}
		} else if c.Account == "" || len(c.Secret) < MinSecretSize || c.Params.Validate() != nil {
			t.Fatalf("ParseKeyURI(%q) accepted %+v", raw, c)
		}

		if strings.TrimSpace(issuer) == "" || account == "" {
			return
		}
		uri := KeyURI(issuer, account, secret, DefaultParams)
		c, err := ParseKeyURI(uri)
		if err != nil {
			t.Fatalf("KeyURI(%q, %q) = %q does not parse back: %v", issuer, account, uri, err)
		}
		if c.Issuer != strings.TrimSpace(issuer) || c.Account != account || !bytes.Equal(c.Secret, secret) || c.Params != DefaultParams {
			t.Fatalf("KeyURI(%q, %q) = %q reads back as issuer %q account %q", issuer, account, uri, c.Issuer, c.Account)
		}
	})
}
