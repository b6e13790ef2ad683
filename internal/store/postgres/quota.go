package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/postfach/postfach/internal/store"
)

// Quotas (store/quota.go). The account row holds the usage counters
// (used_bytes, used_messages) and the account's own limits (quota_bytes,
// quota_messages; NULL follows the default of OpsOptions.Quota). Every
// change of a mailbox's message counters goes through bumpMailbox, which
// adds the same change to the account's counters, in the same
// transaction: appends, deliveries, copies, moves (one side adds what the
// other takes away), expunges and mailbox deletions (through expunge).
// Deleting an account deletes its row; the retention purge removes only
// expunged messages, which do not count.

// addUsage adds a mailbox's counter change to its account's usage.
func addUsage(w *wtx, mailbox store.MailboxID, c counters) error {
	if c.messages == 0 && c.size == 0 {
		return nil // a flag change
	}
	_, err := w.ExecContext(w.ctx, `UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ?
		WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)`, c.size, c.messages, mailbox)
	return err
}

// limit is the limit that applies for an account's own setting (NULL:
// the default).
func limit(own sql.NullInt64, def int64) int64 {
	if own.Valid {
		return own.Int64
	}
	return def
}

// ownQuota is how Usage reports an account's own setting.
func ownQuota(own sql.NullInt64) int64 {
	if own.Valid {
		return own.Int64
	}
	return store.QuotaDefault
}

// checkQuota fails with store.ErrOverQuota when the account is over a
// limit after a change the request made: the caller's savepoint is then
// rolled back, so nothing of the change stays (RFC 9208 §4.3.1).
func (s *Store) checkQuota(w *wtx, acct store.AccountID) error {
	var used, msgs int64
	var qb, qm sql.NullInt64
	err := w.QueryRowContext(w.ctx, `SELECT used_bytes, used_messages, quota_bytes, quota_messages FROM accounts WHERE id = ?`, acct).Scan(
		&used, &msgs, &qb, &qm)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	q := store.Quota{Bytes: limit(qb, s.ops.quota.Bytes), Messages: limit(qm, s.ops.quota.Messages)}
	if q.Over(used, msgs) {
		return fmt.Errorf("%w: the account would hold %d bytes in %d messages, its quota is %d bytes and %d messages (0: no limit)",
			store.ErrOverQuota, used, msgs, q.Bytes, q.Messages)
	}
	return nil
}

// Usage implements store.Store.
func (s *Store) Usage(ctx context.Context, acct store.AccountID) (*store.Usage, error) {
	var u store.Usage
	var qb, qm sql.NullInt64
	err := s.queryRow(ctx, `SELECT used_bytes, used_messages, quota_bytes, quota_messages FROM accounts WHERE id = ?`, acct).Scan(
		&u.Bytes, &u.Messages, &qb, &qm)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("usage of account %d: %w", acct, err)
	}
	u.Own = store.Quota{Bytes: ownQuota(qb), Messages: ownQuota(qm)}
	u.Limit = store.Quota{Bytes: limit(qb, s.ops.quota.Bytes), Messages: limit(qm, s.ops.quota.Messages)}
	return &u, nil
}

// SetQuota implements store.Store.
func (s *Store) SetQuota(ctx context.Context, acct store.AccountID, q store.Quota) error {
	if q.Bytes < store.QuotaDefault || q.Messages < store.QuotaDefault {
		return fmt.Errorf("set quota of account %d: negative limit", acct)
	}
	own := func(v int64) any {
		if v == store.QuotaDefault {
			return nil
		}
		return v
	}
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.ExecContext(w.ctx, `UPDATE accounts SET quota_bytes = ?, quota_messages = ? WHERE id = ?`,
			own(q.Bytes), own(q.Messages), acct)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set quota of account %d: %w", acct, err)
	}
	return nil
}
