package models

import (
	"context"
	"errors"
	"sync"
	"time"

	"gorm.io/gorm"
)

// ChangeEvent is one committed change, as a change hook (Config.OnChange)
// receives it: who did what to whom, when, and how it ended — the audit
// row of the change plus the user's email. It never holds a secret, a
// code, a URI or a hash.
type ChangeEvent struct {
	Action  string    `json:"action"`  // enroll, import, confirm, backup-codes, disable, unlock, rotate-key
	UserID  string    `json:"user_id"` // empty for rotate-key, which covers many users
	Login   string    `json:"login"`
	Email   string    `json:"email"` // empty when no email column is mapped
	Actor   string    `json:"actor"`
	Host    string    `json:"host"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
	Outcome string    `json:"outcome"`
}

// ChangeHook receives the events of changes just committed: all the
// changes of one transaction (a batch of a bulk run, up to
// BulkOptions.BatchSize users) in one call. Its error never undoes or
// fails the change; it is recorded in the audit log as an ActionOnChange
// row per event, outcome "timed out" when the error is (or wraps)
// context.DeadlineExceeded, else "failed: " and the error's text.
type ChangeHook func(ctx context.Context, events []ChangeEvent) error

// ActionConfirm is the change event of a pending enrollment activated by
// its first successful verification (audited as a verify, outcome "ok
// (activated)").
const ActionConfirm = "confirm"

// changeCollector gathers the audit entries written inside a transaction
// of the engine; it rides on the transaction's context, so that
// writeAudit, wherever a write calls it, reports to it.
type changeCollector struct {
	mu      sync.Mutex
	entries []AuditEntry
}

type collectorKey struct{}

// collecting returns ctx carrying a fresh collector when the service has
// a change hook and db is not inside the caller's transaction — there
// nothing is committed when the engine's transaction ends, so no hook
// could honestly say "committed"; the caller, who commits, knows.
func (s *Service) collecting(ctx context.Context, db *gorm.DB) (context.Context, *changeCollector) {
	if s.cfg.OnChange == nil || inTransaction(db) {
		return ctx, nil
	}
	c := &changeCollector{}
	return context.WithValue(ctx, collectorKey{}, c), c
}

func collectorOf(tx *gorm.DB) *changeCollector {
	if tx == nil || tx.Statement == nil || tx.Statement.Context == nil {
		return nil
	}
	c, _ := tx.Statement.Context.Value(collectorKey{}).(*changeCollector)
	return c
}

// resetChanges forgets what an earlier attempt of tx's transaction
// collected: a retried transaction writes its audit rows again.
func resetChanges(tx *gorm.DB) {
	if c := collectorOf(tx); c != nil {
		c.mu.Lock()
		c.entries = c.entries[:0]
		c.mu.Unlock()
	}
}

// collectChanges is writeAudit's report to the collector, if any.
func collectChanges(tx *gorm.DB, entries []AuditEntry) {
	if c := collectorOf(tx); c != nil {
		c.mu.Lock()
		c.entries = append(c.entries, entries...)
		c.mu.Unlock()
	}
}

// take returns and forgets what was collected.
func (c *changeCollector) take() []AuditEntry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.entries
	c.entries = nil
	return out
}

// changeEvents turns committed audit entries into events, each user's
// email taken from users.
func changeEvents(entries []AuditEntry, users []User) []ChangeEvent {
	if len(entries) == 0 {
		return nil
	}
	emails := make(map[string]string)
	for _, u := range users {
		if u.Email != "" {
			emails[u.ID] = u.Email
		}
	}
	events := make([]ChangeEvent, len(entries))
	for i, e := range entries {
		events[i] = ChangeEvent{
			Action: e.Action, UserID: e.UserID, Login: e.UserLogin, Email: emails[e.UserID],
			Actor: e.Actor, Host: e.Host, Reason: e.Reason, Time: e.At.UTC(), Outcome: e.Outcome,
		}
	}
	return events
}

// notifyChanges runs the change hook on events of changes already
// committed. Nothing it does can undo or fail them: a cancelled run still
// announces what it committed (the hook has its own time limit), and a
// hook's failure is only recorded, one ActionOnChange audit row per
// event, in a transaction of its own.
func (s *Service) notifyChanges(ctx context.Context, db *gorm.DB, events []ChangeEvent) {
	if s.cfg.OnChange == nil || len(events) == 0 {
		return
	}
	// Without the collector: the failure's own audit rows are no change.
	ctx = context.WithValue(context.WithoutCancel(ctx), collectorKey{}, (*changeCollector)(nil))
	err := s.cfg.OnChange(ctx, events)
	if err == nil {
		return
	}
	outcome := "failed: " + err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		outcome = "timed out"
	}
	rows := make([]AuditEntry, len(events))
	for i, e := range events {
		rows[i] = s.auditEntry(ActionOnChange, User{ID: e.UserID, Login: e.Login}, outcome, "after "+e.Action)
	}
	sess, err := s.session(ctx, db)
	if err != nil {
		return
	}
	// The hook already said it failed (the tool warns); a lost audit row
	// of that must not turn a committed change into an error either.
	_ = s.transaction(sess, func(tx *gorm.DB) error { return s.writeAudit(tx, rows) })
}

// notifyConfirmed announces a pending enrollment that a first successful
// verification just activated (committed: Verify refuses the caller's
// transaction).
func (s *Service) notifyConfirmed(ctx context.Context, db *gorm.DB, user User) {
	if s.cfg.OnChange == nil {
		return
	}
	e := s.auditEntry(ActionConfirm, user, StateActive, "")
	s.notifyChanges(ctx, db, changeEvents([]AuditEntry{e}, []User{user}))
}
