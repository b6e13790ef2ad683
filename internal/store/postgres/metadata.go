package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/postfach/postfach/internal/store"
)

// Metadata implements store.Store.
func (s *Store) Metadata(ctx context.Context, acct store.AccountID, mailbox store.MailboxID) (map[string][]byte, error) {
	if mailbox != 0 {
		if _, err := s.MailboxByID(ctx, acct, mailbox); err != nil {
			return nil, err
		}
	} else if _, err := s.AccountByID(ctx, acct); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, `SELECT name, value FROM metadata WHERE account_id = ? AND mailbox_id = ?`, acct, mailbox)
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name string
		var value []byte
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("read metadata: %w", err)
		}
		if value == nil {
			value = []byte{} // an empty value is a value, not NIL
		}
		out[name] = value
	}
	return out, rows.Err()
}

// SetMetadata implements store.Store.
func (s *Store) SetMetadata(ctx context.Context, acct store.AccountID, mailbox store.MailboxID, entries map[string][]byte, maxEntries int, maxBytes int64) error {
	err := s.writeGrow(ctx, func(w *wtx) error {
		if mailbox != 0 {
			if _, err := loadMailboxTx(w, acct, mailbox); err != nil {
				return err
			}
		} else if err := accountExists(w, acct); err != nil {
			return err
		}
		for name, value := range entries {
			var err error
			if value == nil {
				_, err = w.ExecContext(w.ctx, `DELETE FROM metadata WHERE account_id = ? AND mailbox_id = ? AND name = ?`, acct, mailbox, name)
			} else {
				_, err = w.ExecContext(w.ctx, `INSERT INTO metadata (account_id, mailbox_id, name, value) VALUES (?, ?, ?, ?)
					ON CONFLICT (account_id, mailbox_id, name) DO UPDATE SET value = excluded.value`, acct, mailbox, name, value)
			}
			if err != nil {
				return err
			}
		}
		var n int
		var total int64
		if err := w.QueryRowContext(w.ctx, `SELECT count(*), coalesce(sum(length(value)), 0) FROM metadata WHERE account_id = ?`, acct).Scan(&n, &total); err != nil {
			return err
		}
		if maxEntries > 0 && n > maxEntries || maxBytes > 0 && total > maxBytes {
			return store.ErrOverQuota
		}
		names := make([]string, 0, len(entries))
		for name := range entries {
			names = append(names, name)
		}
		slices.Sort(names)
		w.event(store.Event{Account: acct, Mailbox: mailbox, Kind: store.EventMetadata, Entries: names})
		return nil
	})
	if err != nil {
		return fmt.Errorf("set metadata: %w", err)
	}
	return nil
}
