package models

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1_700_000_020, 0).UTC()

func testKey(t *testing.T) (*Key, []byte) {
	t.Helper()
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k, raw
}

func TestSealOpenRoundTrip(t *testing.T) {
	k, raw := testKey(t)
	for _, n := range []int{0, 1, SecretSize, 32, 64} {
		secret := make([]byte, n)
		rand.Read(secret)
		for _, user := range []string{"1", "42", "6f1c2a7e-0d55-4a59-9c3e-1d2f6b7a8c9d", "alice", ""} {
			sealed, err := k.seal(user, secret)
			if err != nil {
				t.Fatal(err)
			}
			if n >= 4 && bytes.Contains(sealed, secret) {
				t.Errorf("sealed value contains the plaintext secret")
			}
			if bytes.Contains(sealed, raw) {
				t.Errorf("sealed value contains the key")
			}
			got, err := k.open(user, k.ID(), sealed)
			if err != nil {
				t.Fatalf("open(%q): %v", user, err)
			}
			if !bytes.Equal(got, secret) {
				t.Errorf("open(seal(%x)) = %x", secret, got)
			}
		}
	}
	// A fresh nonce each time: the same secret seals differently.
	secret := []byte("12345678901234567890")
	a, _ := k.seal("1", secret)
	b, _ := k.seal("1", secret)
	if bytes.Equal(a, b) {
		t.Error("sealing the same secret twice gave the same ciphertext (nonce reuse)")
	}
	if len(a) != 12+len(secret)+16 {
		t.Errorf("sealed length %d, want 12-byte nonce + %d + 16-byte tag", len(a), len(secret))
	}
}

func TestOpenWrongKey(t *testing.T) {
	k1, _ := testKey(t)
	k2, _ := testKey(t)
	if k1.ID() == k2.ID() {
		t.Fatal("two random keys share an id")
	}
	secret := []byte("12345678901234567890")
	sealed, err := k1.seal("1", secret)
	if err != nil {
		t.Fatal(err)
	}
	// The row records k1's id; k2 refuses by id.
	if _, err := k2.open("1", k1.ID(), sealed); !errors.Is(err, ErrWrongKey) {
		t.Errorf("open with another key: %v, want ErrWrongKey", err)
	}
	// Even if the stored id were k2's, authentication fails.
	if _, err := k2.open("1", k2.ID(), sealed); !errors.Is(err, ErrWrongKey) {
		t.Errorf("open with another key under its own id: %v, want ErrWrongKey", err)
	}
	forged := *k2
	forged.id = k1.ID()
	if _, err := forged.open("1", k1.ID(), sealed); !errors.Is(err, ErrWrongKey) {
		t.Errorf("open with another key claiming the right id: %v, want ErrWrongKey", err)
	}
}

func TestOpenBoundToUser(t *testing.T) {
	k, _ := testKey(t)
	secret := []byte("12345678901234567890")
	sealed, err := k.seal("1", secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"2", "01", "1 ", "", "11", "id:1"} {
		if got, err := k.open(other, k.ID(), sealed); !errors.Is(err, ErrWrongKey) {
			t.Errorf("ciphertext of user 1 opened for user %q: %x, %v; want ErrWrongKey", other, got, err)
		}
	}
}

func TestOpenTampered(t *testing.T) {
	k, _ := testKey(t)
	secret := []byte("12345678901234567890")
	sealed, err := k.seal("1", secret)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(sealed)
			bad[i] ^= bit
			if got, err := k.open("1", k.ID(), bad); !errors.Is(err, ErrWrongKey) {
				t.Errorf("flipping bit %#x of byte %d: open = %x, %v; want ErrWrongKey", bit, i, got, err)
			}
		}
	}
	for _, n := range []int{0, 1, 12, 27, len(sealed) - 1} {
		if _, err := k.open("1", k.ID(), sealed[:n]); !errors.Is(err, ErrWrongKey) {
			t.Errorf("truncated to %d bytes: %v, want ErrWrongKey", n, err)
		}
	}
	if _, err := k.open("1", k.ID(), append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrWrongKey) {
		t.Errorf("extended by a byte: %v, want ErrWrongKey", err)
	}
}

func TestParseKey(t *testing.T) {
	// Bytes chosen so the standard and URL alphabets differ (+/ vs -_).
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 11)[:KeySize]
	want, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	std := base64.StdEncoding.EncodeToString(raw)
	if !strings.ContainsAny(std, "+/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test key %q does not exercise both alphabets and padding", std)
	}
	for _, text := range []string{
		std,
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		std + "\n",
		"  " + std + "\r\n",
		"\t" + base64.RawURLEncoding.EncodeToString(raw) + "\n\n",
	} {
		k, err := ParseKey(text)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", text, err)
			continue
		}
		if k.ID() != want.ID() {
			t.Errorf("ParseKey(%q) has id %s, want %s", text, k.ID(), want.ID())
		}
		// And it actually is the same key.
		sealed, _ := want.seal("1", []byte("secret"))
		if got, err := k.open("1", k.ID(), sealed); err != nil || string(got) != "secret" {
			t.Errorf("ParseKey(%q) cannot open what the original key sealed: %v", text, err)
		}
	}
	for _, text := range []string{
		"",
		"   ",
		base64.StdEncoding.EncodeToString(raw[:31]),
		base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
		base64.StdEncoding.EncodeToString(raw[:16]),
		"not base64 at all!",
		std[:len(std)-2] + "!!",
		hex.EncodeToString(raw),
		strings.Replace(std, "+", "-", 1), // mixes the two alphabets
	} {
		if k, err := ParseKey(text); err == nil {
			t.Errorf("ParseKey(%q) = key %s, want an error", text, k.ID())
		} else if strings.Contains(err.Error(), std) {
			t.Errorf("ParseKey error repeats the key: %v", err)
		}
	}
}

func TestKeyID(t *testing.T) {
	k, raw := testKey(t)
	id := k.ID()
	if id == "" {
		t.Fatal("empty key id")
	}
	// A fingerprint, not key material.
	if strings.Contains(hex.EncodeToString(raw), id) || strings.Contains(base64.StdEncoding.EncodeToString(raw), id) {
		t.Errorf("key id %q is a piece of the key", id)
	}
	again, _ := NewKey(raw)
	if again.ID() != id {
		t.Errorf("same key, different ids %q and %q", id, again.ID())
	}
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewKey(make([]byte, n)); err == nil {
			t.Errorf("NewKey(%d bytes): want an error", n)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey(rand.Reader)
	if a == b {
		t.Error("two generated keys are equal")
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Errorf("GenerateKey = %q: want standard base64 of 32 bytes (%v)", a, err)
	}
	if _, err := ParseKey(a); err != nil {
		t.Errorf("ParseKey(GenerateKey()): %v", err)
	}
	if _, err := GenerateKey(failingReader{}); err == nil {
		t.Error("failing randomness: want an error")
	}
}
