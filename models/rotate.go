package models

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"gorm.io/gorm"
)

// RotateResult counts what a key rotation did.
type RotateResult struct {
	Rotated    int // re-encrypted by this run
	AlreadyNew int // found already under the new key (an earlier, interrupted run)
}

// ErrSameKey: rotating to the key already in use.
var ErrSameKey = errors.New("the new key is the current key")

// RotateKey re-encrypts every secret sealed with the service's key under
// newKey, in transactions of batch rows. Each row is updated only if it
// still carries the old key id, so a run that crashed can simply be run
// again: rows already under the new key are skipped. Before anything is
// written, every secret must be under the old or the new key; otherwise
// nothing changes. progress, if not nil, is called after each batch.
func (s *Service) RotateKey(ctx context.Context, db *gorm.DB, newKey *Key, batch int, progress func(done, total int)) (RotateResult, error) {
	oldKey, err := s.requireKey()
	if err != nil {
		return RotateResult{}, err
	}
	if newKey == nil {
		return RotateResult{}, fmt.Errorf("rotate key: %w", ErrNoKey)
	}
	if newKey.ID() == oldKey.ID() {
		return RotateResult{}, fmt.Errorf("rotate key: %w (%s)", ErrSameKey, oldKey.ID())
	}
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return RotateResult{}, err
	}
	counts, err := s.keyIDCounts(sess.db)
	if err != nil {
		return RotateResult{}, err
	}
	var unknown []string
	for id, n := range counts {
		if id != oldKey.ID() && id != newKey.ID() {
			unknown = append(unknown, fmt.Sprintf("%d under key %s", n, id))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return RotateResult{}, fmt.Errorf("rotate key: %w: secrets sealed with neither the current key (%s) nor the new one (%s): %s; nothing changed",
			ErrWrongKey, oldKey.ID(), newKey.ID(), strings.Join(unknown, ", "))
	}
	res := RotateResult{AlreadyNew: counts[newKey.ID()]}
	total := counts[oldKey.ID()]
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n, err := s.rotateBatch(sess, oldKey, newKey, batch)
		if err != nil {
			return res, fmt.Errorf("rotate key after %d secrets: %w", res.Rotated, err)
		}
		if n == 0 {
			return res, nil
		}
		res.Rotated += n
		if progress != nil {
			progress(res.Rotated, total)
		}
	}
}

func (s *Service) keyIDCounts(db *gorm.DB) (map[string]int, error) {
	var rows []struct {
		KeyID string
		N     int
	}
	err := db.Table(s.cfg.Tables.Credentials).Select("key_id, COUNT(*) AS n").Group("key_id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count secrets by key: %w", err)
	}
	counts := make(map[string]int, len(rows))
	for _, r := range rows {
		counts[r.KeyID] = r.N
	}
	return counts, nil
}

// rotateBatch re-encrypts up to batch secrets still under oldKey.
func (s *Service) rotateBatch(sess session, oldKey, newKey *Key, batch int) (int, error) {
	done := 0
	var entry AuditEntry
	err := s.transaction(sess, func(tx *gorm.DB) error {
		done = 0
		var creds []Credential
		q := fmt.Sprintf("SELECT user_id, secret, key_id FROM %s WHERE key_id = ? ORDER BY user_id LIMIT %d%s",
			sess.d.quote(s.cfg.Tables.Credentials), batch, sess.d.forUpdate())
		if err := tx.Raw(q, oldKey.ID()).Scan(&creds).Error; err != nil {
			return fmt.Errorf("read secrets: %w", err)
		}
		for _, c := range creds {
			plain, err := oldKey.open(c.UserID, c.KeyID, c.Secret)
			if err != nil {
				return fmt.Errorf("user id %s: %w", c.UserID, err)
			}
			sealed, err := newKey.seal(c.UserID, plain)
			clear(plain)
			if err != nil {
				return err
			}
			upd := tx.Table(s.cfg.Tables.Credentials).Where("user_id = ? AND key_id = ?", c.UserID, oldKey.ID()).
				Updates(map[string]any{"secret": sealed, "key_id": newKey.ID()})
			if upd.Error != nil {
				return fmt.Errorf("user id %s: %w", c.UserID, upd.Error)
			}
			done += int(upd.RowsAffected)
		}
		if done == 0 {
			return nil
		}
		entry = s.auditEntry(ActionRotateKey, User{}, fmt.Sprintf("re-encrypted %d secrets from key %s to key %s", done, oldKey.ID(), newKey.ID()), "")
		return s.writeAudit(tx, []AuditEntry{entry})
	})
	if err != nil {
		return 0, err
	}
	if done > 0 && !inTransaction(sess.db) {
		s.notifyChanges(sess.db.Statement.Context, sess.db, changeEvents([]AuditEntry{entry}, nil))
	}
	return done, nil
}
