package models

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// KeySize is the length of an AES-256 key.
const KeySize = 32

// Key encrypts TOTP secrets at rest with AES-256-GCM. The user id is the
// associated data, so a ciphertext copied onto another user's row fails to
// open instead of silently granting that user someone else's secret.
type Key struct {
	aead cipher.AEAD
	id   string
}

// NewKey wraps raw key material.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key must be %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// The key id is a fingerprint, not a secret: it tells which key sealed a
	// row (for rotation and for a precise "wrong key" error) and leaks nothing
	// useful about the key itself.
	sum := sha256.Sum256(append([]byte("totpadm key id\x00"), raw...))
	return &Key{aead: aead, id: hex.EncodeToString(sum[:6])}, nil
}

// ParseKey decodes a key written by GenerateKey (standard or URL base64,
// surrounding white space ignored).
func ParseKey(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(text); err == nil {
			if len(raw) != KeySize {
				return nil, fmt.Errorf("%w: it decodes to %d bytes, want %d", ErrKeyFormat, len(raw), KeySize)
			}
			return NewKey(raw)
		}
	}
	return nil, fmt.Errorf("%w: not valid base64", ErrKeyFormat)
}

// GenerateKey returns a new random key in the text form ParseKey reads.
func GenerateKey(random io.Reader) (string, error) {
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(random, raw); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// ID is the key's public fingerprint, stored beside every sealed secret.
func (k *Key) ID() string { return k.id }

func associatedData(userID string) []byte {
	return []byte("totpadm/v1/secret/user:" + userID)
}

// seal encrypts secret for userID: nonce || ciphertext+tag.
func (k *Key) seal(userID string, secret []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, secret, associatedData(userID)), nil
}

// open decrypts a value produced by seal for the same user.
func (k *Key) open(userID, keyID string, sealed []byte) ([]byte, error) {
	if keyID != k.id {
		return nil, fmt.Errorf("%w: the secret was sealed with key %s, the configured key is %s", ErrWrongKey, keyID, k.id)
	}
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: stored secret is truncated", ErrWrongKey)
	}
	plain, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], associatedData(userID))
	if err != nil {
		// Same key id but authentication failed: the row was tampered with
		// or moved from another user.
		return nil, fmt.Errorf("%w: authentication failed (row altered or copied from another user)", ErrWrongKey)
	}
	return plain, nil
}
