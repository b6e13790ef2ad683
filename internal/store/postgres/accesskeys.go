package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postfach/postfach/internal/store"
)

var _ store.AccessKeys = (*Store)(nil)

// AccessKey implements store.AccessKeys.
func (s *Store) AccessKey(ctx context.Context, acct store.AccountID, mailbox store.MailboxID) ([]byte, error) {
	var key []byte
	err := s.queryRow(ctx, `SELECT k.key FROM access_keys k WHERE k.mailbox_id = ? AND k.account_id = ?`, mailbox, acct).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("access key of mailbox %d: %w", mailbox, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("access key of mailbox %d: %w", mailbox, err)
	}
	return key, nil
}

// EnsureAccessKey implements store.AccessKeys. The check and the insert
// are one write transaction, and the writer runs one at a time, so
// concurrent calls make one key.
func (s *Store) EnsureAccessKey(ctx context.Context, acct store.AccountID, mailbox store.MailboxID) ([]byte, error) {
	if key, err := s.AccessKey(ctx, acct, mailbox); err == nil {
		return key, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	fresh := make([]byte, store.AccessKeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("make access key: %w", err)
	}
	var key []byte
	err := s.write(ctx, func(w *wtx) error {
		var noselect bool
		err := w.QueryRowContext(w.ctx, `SELECT noselect FROM mailboxes WHERE id = ? AND account_id = ?`, mailbox, acct).Scan(&noselect)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if noselect {
			return store.ErrNoSelect
		}
		if _, err := w.ExecContext(w.ctx, `INSERT INTO access_keys (mailbox_id, account_id, key, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (mailbox_id) DO NOTHING`, mailbox, acct, fresh, time.Now().Unix()); err != nil {
			return err
		}
		return w.QueryRowContext(w.ctx, `SELECT key FROM access_keys WHERE mailbox_id = ?`, mailbox).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("access key of mailbox %d: %w", mailbox, err)
	}
	return key, nil
}

// ResetAccessKeys implements store.AccessKeys.
func (s *Store) ResetAccessKeys(ctx context.Context, acct store.AccountID, mailbox store.MailboxID) error {
	err := s.write(ctx, func(w *wtx) error {
		if mailbox == 0 {
			if err := accountExists(w, acct); err != nil {
				return err
			}
			_, err := w.ExecContext(w.ctx, `DELETE FROM access_keys WHERE account_id = ?`, acct)
			return err
		}
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM mailboxes WHERE id = ? AND account_id = ?`, mailbox, acct).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		_, err := w.ExecContext(w.ctx, `DELETE FROM access_keys WHERE mailbox_id = ?`, mailbox)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset access keys: %w", err)
	}
	return nil
}
