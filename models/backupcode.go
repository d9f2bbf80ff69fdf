package models

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"gorm.io/gorm"
)

// BackupCode is one single-use recovery code, stored only as a salted hash.
type BackupCode struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    string
	Salt      []byte
	Hash      []byte
	CreatedAt time.Time
	UsedAt    *time.Time
}

// backupCodeColumns are the backup-code table's columns (but its serial
// id) in the order of BackupCode.values.
var backupCodeColumns = []string{"user_id", "salt", "hash", "created_at", "used_at"}

func (b *BackupCode) values() []any {
	return []any{b.UserID, b.Salt, b.Hash, b.CreatedAt, b.UsedAt}
}

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

// newBackupCodes returns the plaintext codes and their hashed rows.
func (s *Service) newBackupCodes(userID string, now time.Time) ([]string, []BackupCode, error) {
	plain := make([]string, s.cfg.BackupCodeCount)
	rows := make([]BackupCode, s.cfg.BackupCodeCount)
	for i := range plain {
		code, err := newBackupCode(s.cfg.Random)
		if err != nil {
			return nil, nil, err
		}
		salt, err := newSalt(s.cfg.Random)
		if err != nil {
			return nil, nil, err
		}
		normalized, _ := NormalizeBackupCode(code)
		plain[i] = code
		rows[i] = BackupCode{UserID: userID, Salt: salt, Hash: hashBackupCode(salt, normalized), CreatedAt: now}
	}
	return plain, rows, nil
}

func (s *Service) insertBackupCodes(tx *gorm.DB, d dialect, codes []BackupCode) error {
	rows := make([][]any, len(codes))
	for i := range codes {
		rows[i] = codes[i].values()
	}
	if err := insertRows(tx, d, s.cfg.Tables.BackupCodes, backupCodeColumns, rows); err != nil {
		return fmt.Errorf("save backup codes: %w", err)
	}
	return nil
}

// backupCodesOf reads a user's backup codes, used or not.
func (s *Service) backupCodesOf(tx *gorm.DB, userID string) ([]BackupCode, error) {
	d, err := dialectOf(tx)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Raw("SELECT id, salt, hash, used_at FROM "+d.quote(s.cfg.Tables.BackupCodes)+" WHERE user_id = ?", userID).Rows()
	if err != nil {
		return nil, fmt.Errorf("read backup codes: %w", err)
	}
	defer rows.Close()
	var codes []BackupCode
	for rows.Next() {
		var (
			c    BackupCode
			used sql.NullTime
		)
		if err := rows.Scan(&c.ID, &c.Salt, &c.Hash, &used); err != nil {
			return nil, fmt.Errorf("read backup codes: %w", err)
		}
		c.UserID, c.UsedAt = userID, nullTimePtr(used)
		codes = append(codes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read backup codes: %w", err)
	}
	return codes, nil
}

// RegenerateBackupCodes invalidates every backup code of user and returns
// a new set, shown once. A concurrent verify with an old code either
// consumed it before this transaction or finds it gone: never both. It
// is RegenerateMany of one.
func (s *Service) RegenerateBackupCodes(ctx context.Context, db *gorm.DB, user User) ([]string, error) {
	users := []User{user}
	plain := make([][]string, 1)
	if err := s.runOne(ctx, db, users, s.regenerateWrite(users, plain)); err != nil {
		return nil, err
	}
	return plain[0], nil
}

// RegenerateMany replaces the backup codes of many users, a batch per
// transaction (see Service.run). done gets each user's new plaintext
// codes.
func (s *Service) RegenerateMany(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, done func(i int, codes []string, err error)) error {
	plain := make([][]string, len(users))
	return s.run(ctx, db, users, bulk, s.regenerateWrite(users, plain), func(i int, err error) {
		codes := plain[i]
		plain[i] = nil
		if err != nil {
			codes = nil
		}
		done(i, codes, err)
	})
}

// regenerateWrite draws each batch's codes before its transaction and
// leaves users[i]'s plaintext codes in plain[i].
func (s *Service) regenerateWrite(users []User, plain [][]string) write {
	rows := make([][]BackupCode, len(users))
	w := s.enrolledOnly(users, ActionBackupCodes,
		func(tx *gorm.DB, d dialect, enrolled []int) error {
			if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id IN ?", idsOf(users, enrolled)).Delete(&BackupCode{}).Error; err != nil {
				return fmt.Errorf("delete old codes: %w", err)
			}
			all := make([]BackupCode, 0, len(enrolled)*s.cfg.BackupCodeCount)
			for _, i := range enrolled {
				all = append(all, rows[i]...)
			}
			return s.insertBackupCodes(tx, d, all)
		},
		func(int) (string, string) { return "regenerated", "" })
	w.prepare = func(lo, hi int) error {
		clear(rows[:lo]) // earlier batches are settled
		now := s.now()
		for i := lo; i < hi; i++ {
			var err error
			if plain[i], rows[i], err = s.newBackupCodes(users[i].ID, now); err != nil {
				return err
			}
		}
		return nil
	}
	return w
}
