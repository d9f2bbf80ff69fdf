package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// AuditFilter selects audit entries; zero values select everything.
type AuditFilter struct {
	UserID string
	Action string
	Since  time.Time
	Limit  int
}

// EachAuditEntry streams audit entries matching f, newest first.
func (s *Service) EachAuditEntry(ctx context.Context, db *gorm.DB, f AuditFilter, fn func(AuditEntry) error) error {
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	q := sess.db.Table(s.cfg.Tables.AuditLog).Order("at DESC, id DESC")
	if f.UserID != "" {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", truncateTime(f.Since))
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		if err := sess.db.ScanRows(rows, &e); err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		e.At = e.At.UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	return nil
}
