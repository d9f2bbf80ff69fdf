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
	return string(appendBackupCode(nil, buf[:])), nil
}

// backupCodeText is the length of a formatted code: 12 symbols, 2 dashes.
const backupCodeText = backupCodeLen + 2

// appendBackupCode appends the code that backupCodeLen random bytes
// make, formatted as xxxx-xxxx-xxxx.
func appendBackupCode(dst, random []byte) []byte {
	for i, v := range random[:backupCodeLen] {
		if i > 0 && i%4 == 0 {
			dst = append(dst, '-')
		}
		// 256 is a multiple of 32, so the low five bits are uniform.
		dst = append(dst, backupAlphabet[v&31])
	}
	return dst
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

// codeSet is one user's new backup codes as they are saved: each code's
// salt and hash side by side in one array, so that a bulk run holds and
// binds one value per user instead of two per code.
type codeSet struct {
	userID  string
	created time.Time
	records []byte // per code: its salt (saltLen bytes), then its hash
}

// codeRecord is the size of one code's record in codeSet.records.
const codeRecord = saltLen + sha256.Size

func (c codeSet) count() int { return len(c.records) / codeRecord }

// rows are the set's codes as table rows; salts and hashes share the
// set's array.
func (c codeSet) rows() []BackupCode {
	rows := make([]BackupCode, c.count())
	for i := range rows {
		rec := c.records[i*codeRecord : (i+1)*codeRecord : (i+1)*codeRecord]
		rows[i] = BackupCode{UserID: c.userID, Salt: rec[:saltLen:saltLen], Hash: rec[saltLen:], CreatedAt: c.created}
	}
	return rows
}

// newCodeSet draws a fresh set of backup codes for a user and returns
// their plaintext (shown once) and the set to store. The randomness is
// read once for the whole set, in the order newBackupCode and newSalt
// would read it code after code: a code's symbols, then its salt.
// scratch, if not nil, is reused for the random bytes across calls.
func (s *Service) newCodeSet(userID string, now time.Time, scratch *[]byte) ([]string, codeSet, error) {
	const drawn = backupCodeLen + saltLen // random bytes per code
	n := s.cfg.BackupCodeCount
	var random []byte
	if scratch != nil && cap(*scratch) >= n*drawn {
		random = (*scratch)[:n*drawn]
	} else {
		random = make([]byte, n*drawn)
		if scratch != nil {
			*scratch = random
		}
	}
	defer clear(random)
	if _, err := io.ReadFull(s.cfg.Random, random); err != nil {
		return nil, codeSet{}, fmt.Errorf("generate backup codes: %w", err)
	}
	var text strings.Builder
	text.Grow(n * backupCodeText)
	var code [backupCodeText]byte
	records := make([]byte, n*codeRecord)
	for i := range n {
		r := random[i*drawn : (i+1)*drawn]
		text.Write(appendBackupCode(code[:0], r))
		// The hash input, salt || normalized code, as hashBackupCode has it.
		var in [saltLen + backupCodeLen]byte
		copy(in[:], r[backupCodeLen:])
		for j, v := range r[:backupCodeLen] {
			in[saltLen+j] = backupAlphabet[v&31]
		}
		sum := sha256.Sum256(in[:])
		rec := records[i*codeRecord:]
		copy(rec, r[backupCodeLen:])
		copy(rec[saltLen:], sum[:])
	}
	all := text.String() // one string; the codes are slices of it
	plain := make([]string, n)
	for i := range plain {
		plain[i] = all[i*backupCodeText : (i+1)*backupCodeText]
	}
	return plain, codeSet{userID: userID, created: now, records: records}, nil
}

// newBackupCodes returns the plaintext codes and their hashed rows.
func (s *Service) newBackupCodes(userID string, now time.Time) ([]string, []BackupCode, error) {
	plain, set, err := s.newCodeSet(userID, now, nil)
	if err != nil {
		return nil, nil, err
	}
	return plain, set.rows(), nil
}

// insertCodeSets saves the codes of sets. On SQLite a statement takes a
// user's whole set as one value and splits it into rows in SQL
// (codeSetInsertSQL): 3 bound values per user instead of 5 per code, and
// each is a call into the driver's C library.
func (s *Service) insertCodeSets(tx *gorm.DB, d dialect, sets []codeSet) error {
	if len(sets) == 0 {
		return nil
	}
	n := sets[0].count()
	same := d.name == "sqlite"
	for _, c := range sets {
		same = same && c.count() == n
	}
	if !same {
		var rows [][]any
		for _, c := range sets {
			for _, r := range c.rows() {
				rows = append(rows, r.values())
			}
		}
		if err := insertRows(tx, d, s.cfg.Tables.BackupCodes, backupCodeColumns, rows); err != nil {
			return fmt.Errorf("save backup codes: %w", err)
		}
		return nil
	}
	rows := make([][]any, len(sets))
	for i, c := range sets {
		rows[i] = []any{c.userID, sqliteTime(c.created), c.records}
	}
	if err := insertStatements(tx, codeSetsPerInsert, rows, func(users int) string {
		return s.codeSetInsertSQL(d, users, n)
	}); err != nil {
		return fmt.Errorf("save backup codes: %w", err)
	}
	return nil
}

// codeSetsPerInsert is how many users' code sets one SQLite statement
// carries (with ten codes each, 100 rows); see sqliteRowsPerInsert.
const codeSetsPerInsert = 10

// codeSetInsertSQL inserts users code sets of codes codes each, bound as
// (user id, created at, records) per user: a join with the code numbers
// 0…codes-1 cuts each user's records into its rows, user after user.
func (s *Service) codeSetInsertSQL(d dialect, users, codes int) string {
	var b strings.Builder
	quoted := make([]string, len(backupCodeColumns))
	for i, c := range backupCodeColumns {
		quoted[i] = d.quote(c)
	}
	fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT u.column1, substr(u.column3, k.column1 * %d + 1, %d), substr(u.column3, k.column1 * %d + %d, %d), u.column2, NULL FROM (VALUES ",
		d.quote(s.cfg.Tables.BackupCodes), strings.Join(quoted, ", "), codeRecord, saltLen, codeRecord, saltLen+1, sha256.Size)
	for i := range users {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
	}
	b.WriteString(") AS u CROSS JOIN (VALUES ")
	for i := range codes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d)", i)
	}
	b.WriteString(") AS k")
	return b.String()
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
	sets := make([]codeSet, len(users))
	w := s.enrolledOnly(users, ActionBackupCodes,
		func(tx *gorm.DB, d dialect, enrolled []int) error {
			if err := tx.Table(s.cfg.Tables.BackupCodes).Where("user_id IN ?", idsOf(users, enrolled)).Delete(&BackupCode{}).Error; err != nil {
				return fmt.Errorf("delete old codes: %w", err)
			}
			save := make([]codeSet, 0, len(enrolled))
			for _, i := range enrolled {
				save = append(save, sets[i])
			}
			return s.insertCodeSets(tx, d, save)
		},
		func(int) (string, string) { return "regenerated", "" })
	w.prepare = func(lo, hi int) error {
		clear(sets[:lo]) // earlier batches are settled
		now := s.now()
		var scratch []byte
		for i := lo; i < hi; i++ {
			var err error
			if plain[i], sets[i], err = s.newCodeSet(users[i].ID, now, &scratch); err != nil {
				return err
			}
		}
		return nil
	}
	return w
}
