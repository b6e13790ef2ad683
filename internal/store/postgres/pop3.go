package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

func scanPOP3View(row interface{ Scan(...any) error }) (*store.POP3View, error) {
	var v store.POP3View
	var hidden string
	var created, used int64
	if err := row.Scan(&v.Device, &v.Mailbox, &v.UIDValidity, &hidden, &created, &used); err != nil {
		return nil, err
	}
	set, err := mail.ParseUIDSet(hidden)
	if err != nil {
		return nil, fmt.Errorf("bad hidden set: %w", err)
	}
	v.Hidden, v.Created, v.LastUsed = set, time.Unix(created, 0), time.Unix(used, 0)
	return &v, nil
}

// POP3View implements store.Store.
func (s *Store) POP3View(ctx context.Context, acct store.AccountID, device string, mailbox store.MailboxID) (*store.POP3View, error) {
	mb, err := s.MailboxByID(ctx, acct, mailbox)
	if err != nil {
		return nil, err
	}
	v, err := scanPOP3View(s.queryRow(ctx, `SELECT device, mailbox_id, uidvalidity, hidden, created, last_used
		FROM pop3_views WHERE account_id = ? AND device = ? AND mailbox_id = ?`, acct, device, mailbox))
	if errors.Is(err, sql.ErrNoRows) || err == nil && v.UIDValidity != mb.UIDValidity {
		return &store.POP3View{Device: device, Mailbox: mailbox, UIDValidity: mb.UIDValidity}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pop3 view %q: %w", device, err)
	}
	return v, nil
}

// HidePOP3 implements store.Store.
func (s *Store) HidePOP3(ctx context.Context, acct store.AccountID, device string, mailbox store.MailboxID, uids mail.UIDSet) error {
	now := time.Now().Unix()
	err := s.write(ctx, func(w *wtx) error {
		mb, err := loadMailboxTx(w, acct, mailbox)
		if err != nil {
			return err
		}
		v, err := scanPOP3View(w.QueryRowContext(w.ctx, `SELECT device, mailbox_id, uidvalidity, hidden, created, last_used
			FROM pop3_views WHERE account_id = ? AND device = ? AND mailbox_id = ?`, acct, device, mailbox))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			v = &store.POP3View{Created: time.Unix(now, 0)}
		case err != nil:
			return err
		case v.UIDValidity != mb.uidvalidity:
			v.Hidden = nil
		}
		hidden := v.Hidden.Union(uids)
		_, err = w.ExecContext(w.ctx, `INSERT INTO pop3_views (account_id, device, mailbox_id, uidvalidity, hidden, created, last_used)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id, device, mailbox_id) DO UPDATE SET uidvalidity = excluded.uidvalidity,
				hidden = excluded.hidden, last_used = excluded.last_used`,
			acct, device, mailbox, mb.uidvalidity, hidden.String(), v.Created.Unix(), now)
		return err
	})
	if err != nil {
		return fmt.Errorf("update pop3 view %q: %w", device, err)
	}
	return nil
}

// POP3Views implements store.Store.
func (s *Store) POP3Views(ctx context.Context, acct store.AccountID) ([]store.POP3View, error) {
	rows, err := s.query(ctx, `SELECT device, mailbox_id, uidvalidity, hidden, created, last_used
		FROM pop3_views WHERE account_id = ? ORDER BY device, mailbox_id`, acct)
	if err != nil {
		return nil, fmt.Errorf("list pop3 views: %w", err)
	}
	defer rows.Close()
	var out []store.POP3View
	for rows.Next() {
		v, err := scanPOP3View(rows)
		if err != nil {
			return nil, fmt.Errorf("list pop3 views: %w", err)
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

// ForgetPOP3View implements store.Store.
func (s *Store) ForgetPOP3View(ctx context.Context, acct store.AccountID, device string) error {
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.ExecContext(w.ctx, `DELETE FROM pop3_views WHERE account_id = ? AND device = ?`, acct, device)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget pop3 view %q: %w", device, err)
	}
	return nil
}
