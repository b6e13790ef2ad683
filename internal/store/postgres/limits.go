package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postfach/postfach/internal/store"
)

// The mailbox limit (issue 11: 88,000 mailboxes created in 110 s made
// LIST take a second). It is checked inside the write that creates, and
// writes run one after the other in the writer goroutine, so two
// sessions creating at the same time cannot pass it together.

// checkMailboxLimit fails with store.ErrMailboxLimit when the account
// cannot take adding more mailboxes.
func (s *Store) checkMailboxLimit(w *wtx, acct store.AccountID, adding int) error {
	max := s.ops.maxMailboxes
	if max <= 0 || adding <= 0 {
		return nil
	}
	var n int
	if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM mailboxes WHERE account_id = ?`, acct).Scan(&n); err != nil {
		return err
	}
	if n+adding > max {
		return fmt.Errorf("%w: the account has %d of at most %d", store.ErrMailboxLimit, n, max)
	}
	return nil
}

// checkSubscriptionLimit fails with store.ErrMailboxLimit when name is a
// new subscription and the account has as many as the mailbox limit.
func (s *Store) checkSubscriptionLimit(w *wtx, acct store.AccountID, name string) error {
	max := s.ops.maxMailboxes
	if max <= 0 {
		return nil
	}
	var n, have int
	if err := w.QueryRowContext(w.ctx, `SELECT count(*), count(CASE WHEN name = ? THEN 1 END) FROM subscriptions WHERE account_id = ?`,
		name, acct).Scan(&n, &have); err != nil {
		return err
	}
	if have == 0 && n >= max {
		return fmt.Errorf("%w: the account has %d subscriptions, at most %d", store.ErrMailboxLimit, n, max)
	}
	return nil
}

// CreateMailbox implements store.Store. A name kept as \Noselect (deleted
// with children) becomes a real mailbox again, with a new UIDVALIDITY.
func (s *Store) CreateMailbox(ctx context.Context, acct store.AccountID, name string, uses []string) (*store.Mailbox, error) {
	return s.CreateMailboxWith(ctx, acct, name, store.CreateOptions{SpecialUse: uses})
}

// CreateMailboxWith implements store.Store. The name, and with
// opt.Parents its missing superior levels, are created in one write: all
// or nothing. A level kept as \Noselect becomes a real mailbox again (it
// adds no row, so it does not count against the limit).
func (s *Store) CreateMailboxWith(ctx context.Context, acct store.AccountID, name string, opt store.CreateOptions) (*store.Mailbox, error) {
	cname, err := store.CanonicalMailboxName(name)
	if err != nil {
		return nil, err
	}
	var levels []string // superior levels first, the name last
	if opt.Parents {
		for i := 0; i < len(cname); i++ {
			if cname[i] == '/' && !store.IsInbox(cname[:i]) {
				levels = append(levels, cname[:i])
			}
		}
	}
	levels = append(levels, cname)
	var mb *store.Mailbox
	err = s.writeGrow(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		var missing []string
		var revive []*store.Mailbox
		for i, n := range levels {
			old, err := scanMailbox(w.QueryRowContext(w.ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account_id = ? AND m.name = ?`, acct, n))
			switch {
			case err == nil && old.NoSelect:
				revive = append(revive, old)
			case err == nil && i == len(levels)-1:
				return store.ErrExists
			case err == nil:
			case errors.Is(err, store.ErrNotFound):
				missing = append(missing, n)
			default:
				return err
			}
		}
		if err := s.checkMailboxLimit(w, acct, len(missing)); err != nil {
			return err
		}
		var created []string
		for _, old := range revive {
			var uses []string
			if old.Name == cname {
				uses = opt.SpecialUse
			}
			uv, err := nextUIDValidity(w)
			if err != nil {
				return err
			}
			if _, err := w.ExecContext(w.ctx, `UPDATE mailboxes SET noselect = 0, uidvalidity = ?, special_use = ? WHERE id = ?`,
				uv, strings.Join(uses, " "), old.ID); err != nil {
				return err
			}
			old.NoSelect, old.UIDValidity, old.SpecialUse = false, uv, uses
			w.event(store.Event{Account: acct, Mailbox: old.ID, Kind: store.EventMailboxCreated, Name: old.Name, ModSeq: old.HighestModSeq})
			created = append(created, old.Name)
			if old.Name == cname {
				mb = old
			}
		}
		for _, n := range missing {
			var uses []string
			if n == cname {
				uses = opt.SpecialUse
			}
			m, err := createMailboxTx(w, acct, n, uses)
			if err != nil {
				return err
			}
			created = append(created, n)
			if n == cname {
				mb = m
			}
		}
		if opt.Subscribe {
			for _, n := range created {
				if _, err := w.ExecContext(w.ctx, `INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING`, acct, n); err != nil {
					return err
				}
				w.event(store.Event{Account: acct, Kind: store.EventSubscription, Name: n})
			}
			if mb != nil {
				mb.Subscribed = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create mailbox %q: %w", name, err)
	}
	return mb, nil
}
