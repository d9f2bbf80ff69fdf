package models

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// DefaultBatchSize is how many users one transaction covers: large enough
// that per-transaction costs (fsync, round trips) vanish, small enough
// that locks are held briefly and a retry is cheap.
const DefaultBatchSize = 500

// BulkOptions control a bulk run.
type BulkOptions struct {
	BatchSize int // users per transaction; default DefaultBatchSize
}

// write is one write operation over a batch of users, the only
// implementation of that operation: the single-user method is a batch of
// one, so the two cannot drift apart or lock differently.
type write struct {
	action string // names the operation in per-user errors
	// prepare, if set, does a batch's CPU work (sealing secrets, hashing
	// codes) before its transaction, so that the transaction only writes.
	prepare func(lo, hi int) error
	// apply makes the change for users[lo:hi] inside tx, where existing
	// holds the credential state of each of them that has one, its row
	// locked. It records a per-user refusal in errs[i-lo] and leaves that
	// user unchanged; an error it returns undoes the whole batch. It may
	// run more than once for one batch (a retried transaction, then each
	// user alone), and must start afresh each time.
	apply func(tx *gorm.DB, d dialect, existing map[string]string, lo, hi int, errs []error) error
	// lock, if set, replaces existingStates: a store other than totpadm's
	// own locks and reads its own rows (see DjangoOTP).
	lock func(tx *gorm.DB, d dialect, ids []string) (map[string]string, error)
}

// run applies w to users batch by batch, each user completely or not at
// all. When a batch's transaction fails, its users are tried again one
// transaction each, so one failing user does not undo the others —
// unless the failure is the database's own (gone, locked, read-only,
// full, cancelled): then the run stops with ErrStopped, as every further
// user would fail the same way. done is called for every user, in order,
// as soon as its batch is settled.
//
// With a change hook (Config.OnChange), each batch's committed changes —
// what its transaction audited — are announced in one call once it has
// committed and its users are reported; after a per-user retry, once for
// the users it committed.
func (s *Service) run(ctx context.Context, db *gorm.DB, users []User, bulk BulkOptions, w write, done func(i int, err error)) error {
	ctx, changes := s.collecting(ctx, db)
	sess, err := s.session(ctx, db)
	if err != nil {
		return err
	}
	ids := userIDs(users)
	var committed []AuditEntry // of the batch in hand, announced when it is settled
	announce := func(lo, hi int) {
		if len(committed) > 0 {
			s.notifyChanges(ctx, db, changeEvents(committed, users[lo:hi]))
			committed = nil
		}
	}
	for _, b := range batches(ids, bulk.BatchSize) {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := b[0], b[1]
		if w.prepare != nil {
			if err := w.prepare(lo, hi); err != nil {
				return err
			}
		}
		errs := make([]error, hi-lo)
		if err := s.runBatch(sess, ids, lo, hi, w, errs); err != nil {
			if ctx.Err() != nil {
				// Cancelled mid-batch: the transaction was rolled back,
				// whatever the statement in flight then reported.
				return &stoppedError{ctx.Err()}
			}
			if isEnvironmental(err) {
				return &stoppedError{err}
			}
			if hi-lo == 1 {
				errs[0] = err
			} else {
				for i := lo; i < hi; i++ {
					one := make([]error, 1)
					if err := s.runBatch(sess, ids, i, i+1, w, one); err != nil {
						if ctx.Err() != nil {
							err = ctx.Err()
						}
						if isEnvironmental(err) {
							announce(lo, hi)
							return &stoppedError{err}
						}
						one[0] = err
					} else {
						committed = append(committed, changes.take()...)
					}
					errs[i-lo] = one[0]
				}
			}
		} else {
			committed = changes.take()
		}
		for i := lo; i < hi; i++ {
			err := errs[i-lo]
			if err != nil {
				err = fmt.Errorf("%s %s: %w", w.action, users[i], err)
			}
			done(i, err)
		}
		announce(lo, hi)
	}
	return nil
}

// runBatch is one batch's transaction: lock the users' credential rows,
// then apply. A unique violation means a concurrent first enrollment of
// one of the users committed between the read and the insert (no row
// existed to lock); the retry sees its row and decides on it. Each round
// at least one contender commits, so the loop ends.
func (s *Service) runBatch(sess session, ids []string, lo, hi int, w write, errs []error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = s.transaction(sess, func(tx *gorm.DB) error {
			// The transaction began (and will commit) under the caller's
			// context, so cancelling it rolls the batch back at its next
			// statement; the statements themselves run uncancellable on
			// SQLite, whose driver starts a goroutine for every one
			// under a cancellable context (rowContext).
			tx = tx.WithContext(rowContext(tx.Statement.Context, sess.d))
			clear(errs)
			resetChanges(tx)
			lock := w.lock
			if lock == nil {
				lock = s.existingStates
			}
			existing, err := lock(tx, sess.d, ids[lo:hi])
			if err != nil {
				return err
			}
			return w.apply(tx, sess.d, existing, lo, hi, errs)
		})
		if err == nil || !isUniqueViolation(err) || attempt == maxTxAttempts {
			return err
		}
	}
}

// ErrStopped wraps the error that ended a bulk run early: the database
// went away, or is locked, read-only or full, so that retrying the
// remaining users one by one would only repeat the failure.
var ErrStopped = errors.New("stopped")

type stoppedError struct{ err error }

func (e *stoppedError) Error() string        { return ErrStopped.Error() + ": " + e.err.Error() }
func (e *stoppedError) Unwrap() error        { return e.err }
func (e *stoppedError) Is(target error) bool { return target == ErrStopped }

// runOne applies w, built over users (one user), to that user: the
// single-user methods. A stop is reported as its cause, since there was
// no "rest" to leave undone.
func (s *Service) runOne(ctx context.Context, db *gorm.DB, users []User, w write) error {
	var userErr error
	err := s.run(ctx, db, users, BulkOptions{}, w, func(_ int, err error) { userErr = err })
	var stopped *stoppedError
	if errors.As(err, &stopped) {
		err = stopped.err
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", w.action, users[0], err)
	}
	return userErr
}

// enrolledOnly is the shape of the writes that change existing
// enrollments (disable, backup codes, unlock): a user without a
// credential gets ErrNotEnrolled, and change runs on the others (indexes
// into users); each changed user gets an audit row with outcome's values.
func (s *Service) enrolledOnly(users []User, action string,
	change func(tx *gorm.DB, d dialect, enrolled []int) error,
	outcome func(i int) (outcome, reason string)) write {
	return write{action: action, apply: func(tx *gorm.DB, d dialect, existing map[string]string, lo, hi int, errs []error) error {
		var enrolled []int
		for i := lo; i < hi; i++ {
			if _, ok := existing[users[i].ID]; ok {
				enrolled = append(enrolled, i)
			} else {
				errs[i-lo] = ErrNotEnrolled
			}
		}
		if len(enrolled) == 0 {
			return nil
		}
		if err := change(tx, d, enrolled); err != nil {
			return err
		}
		audits := make([]AuditEntry, 0, len(enrolled))
		for _, i := range enrolled {
			o, reason := outcome(i)
			audits = append(audits, s.auditEntry(action, users[i], o, reason))
		}
		return s.writeAudit(tx, audits)
	}}
}

// idsOf returns the ids of users[i] for each i of indexes.
func idsOf(users []User, indexes []int) []string {
	ids := make([]string, len(indexes))
	for j, i := range indexes {
		ids[j] = users[i].ID
	}
	return ids
}

// batches splits n items into runs of at most size, also ending a run
// before an item whose user is already in it, so that one transaction
// never touches a user twice.
func batches(ids []string, size int) [][2]int {
	if size <= 0 {
		size = DefaultBatchSize
	}
	var out [][2]int
	lo := 0
	seen := make(map[string]bool, min(size, len(ids)))
	for i, id := range ids {
		if i-lo == size || seen[id] {
			out = append(out, [2]int{lo, i})
			lo = i
			clear(seen)
		}
		seen[id] = true
	}
	if lo < len(ids) {
		out = append(out, [2]int{lo, len(ids)})
	}
	return out
}

func userIDs(users []User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}
