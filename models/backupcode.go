package models

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"strings"
)

// Backup codes use Crockford's base32 alphabet in lower case: 32 symbols,
// none of which look like another (no i, l, o, u), so 12 symbols carry
// exactly 60 bits. Input is forgiving: case, spaces and dashes are ignored,
// and the look-alikes i/l → 1 and o → 0 are mapped as Crockford specifies.
const backupAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

const (
	backupCodeLen = 12 // symbols; 12 × 5 bits = 60 bits
	saltLen       = 16
)

// newBackupCode returns a code formatted as xxxx-xxxx-xxxx.
func newBackupCode(random io.Reader) (string, error) {
	var buf [backupCodeLen]byte
	if _, err := io.ReadFull(random, buf[:]); err != nil {
		return "", fmt.Errorf("generate backup code: %w", err)
	}
	var b strings.Builder
	for i, v := range buf {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		// 256 is a multiple of 32, so the low five bits are uniform.
		b.WriteByte(backupAlphabet[v&31])
	}
	return b.String(), nil
}

// NormalizeBackupCode returns the canonical 12-symbol form of a typed
// backup code, or false when the input cannot be one.
func NormalizeBackupCode(input string) (string, bool) {
	var b strings.Builder
	for _, r := range input {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		}
		switch r {
		case 'i', 'l':
			r = '1'
		case 'o':
			r = '0'
		}
		if r > 0x7f || strings.IndexRune(backupAlphabet, r) < 0 {
			return "", false
		}
		if b.Len() == backupCodeLen {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != backupCodeLen {
		return "", false
	}
	return b.String(), true
}

// hashBackupCode is SHA-256(salt || normalized code). The per-code salt
// means one hash computation tests one guess against one code, never
// against every code in a leaked table at once.
func hashBackupCode(salt []byte, normalized string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(normalized))
	return h.Sum(nil)
}

func newSalt(random io.Reader) ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, fmt.Errorf("generate salt: %w", err)
	}
	return salt, nil
}

func backupCodeMatches(salt, hash []byte, normalized string) bool {
	return subtle.ConstantTimeCompare(hashBackupCode(salt, normalized), hash) == 1
}
