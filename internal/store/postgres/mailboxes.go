package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

const mailboxCols = `m.id, m.account_id, m.name, m.special_use, m.noselect, m.uidvalidity, m.uidnext, m.highestmodseq,
	EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name)`

func scanMailbox(row interface{ Scan(...any) error }) (*store.Mailbox, error) {
	var mb store.Mailbox
	var uses string
	if err := row.Scan(&mb.ID, &mb.Account, &mb.Name, &uses, &mb.NoSelect, &mb.UIDValidity, &mb.UIDNext, &mb.HighestModSeq, &mb.Subscribed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	mb.SpecialUse = strings.Fields(uses)
	return &mb, nil
}

// Mailboxes implements store.Store.
func (s *Store) Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error) {
	out, err := s.listMailboxes(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	// The rows are closed: looking at the account takes a connection of
	// the read pool again (see readerStmts).
	if out == nil {
		if _, err := s.AccountByID(ctx, acct); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) listMailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error) {
	rows, err := s.query(ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account_id = ? ORDER BY m.name`, acct)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Mailbox
	for rows.Next() {
		mb, err := scanMailbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *mb)
	}
	return out, rows.Err()
}

// Mailbox implements store.Store.
func (s *Store) Mailbox(ctx context.Context, acct store.AccountID, name string) (*store.Mailbox, error) {
	cname, err := store.CanonicalMailboxName(name)
	if err != nil {
		return nil, fmt.Errorf("mailbox %q: %w", name, store.ErrNotFound)
	}
	mb, err := scanMailbox(s.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account_id = ? AND m.name = ?`, acct, cname))
	if err != nil {
		return nil, fmt.Errorf("mailbox %q: %w", name, err)
	}
	return mb, nil
}

// MailboxByID implements store.Store.
func (s *Store) MailboxByID(ctx context.Context, acct store.AccountID, id store.MailboxID) (*store.Mailbox, error) {
	mb, err := scanMailbox(s.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account_id = ? AND m.id = ?`, acct, id))
	if err != nil {
		return nil, fmt.Errorf("mailbox %d: %w", id, err)
	}
	return mb, nil
}

func createMailboxTx(w *wtx, acct store.AccountID, name string, uses []string) (*store.Mailbox, error) {
	uv, err := nextUIDValidity(w)
	if err != nil {
		return nil, err
	}
	id, err := insertID(w, `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)`,
		acct, name, strings.Join(uses, " "), uv)
	if err != nil {
		return nil, err
	}
	mb := &store.Mailbox{ID: store.MailboxID(id), Account: acct, Name: name, SpecialUse: uses,
		UIDValidity: uv, UIDNext: 1, HighestModSeq: 1}
	w.event(store.Event{Account: acct, Mailbox: mb.ID, Kind: store.EventMailboxCreated, Name: name, ModSeq: 1})
	return mb, nil
}

func accountExists(w *wtx, acct store.AccountID) error {
	var n int
	if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM accounts WHERE id = ?`, acct).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// hasChildren reports whether a mailbox named name has inferiors.
func hasChildren(w *wtx, acct store.AccountID, name string) (bool, error) {
	var n int
	err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?`,
		acct, len(name)+1, name+"/").Scan(&n)
	return n > 0, err
}

// DeleteMailbox implements store.Store (RFC 9051 §6.3.5): a mailbox with
// children loses its messages and becomes \Noselect; a \Noselect name with
// children cannot be deleted (ErrHasChildren); otherwise the mailbox goes.
// Its messages become tombstones, recoverable for the retention window.
func (s *Store) DeleteMailbox(ctx context.Context, acct store.AccountID, id store.MailboxID) error {
	err := s.write(ctx, func(w *wtx) error {
		mb, err := scanMailbox(w.QueryRowContext(w.ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account_id = ? AND m.id = ?`, acct, id))
		if err != nil {
			return err
		}
		if store.IsInbox(mb.Name) {
			return store.ErrInbox
		}
		children, err := hasChildren(w, acct, mb.Name)
		if err != nil {
			return err
		}
		if children && mb.NoSelect {
			return store.ErrHasChildren
		}
		if _, err := expungeTx(w, acct, id, nil, false); err != nil {
			return err
		}
		if children {
			_, err := w.ExecContext(w.ctx, `UPDATE mailboxes SET noselect = 1, special_use = '' WHERE id = ?`, id)
			if err != nil {
				return err
			}
		} else if _, err := w.ExecContext(w.ctx, `DELETE FROM mailboxes WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := w.ExecContext(w.ctx, `DELETE FROM metadata WHERE account_id = ? AND mailbox_id = ?`, acct, id); err != nil {
			return err
		}
		// A \Noselect name keeps its row (and id): its URLAUTH key must
		// go all the same (store.AccessKeys).
		if _, err := w.ExecContext(w.ctx, `DELETE FROM access_keys WHERE mailbox_id = ?`, id); err != nil {
			return err
		}
		w.event(store.Event{Account: acct, Mailbox: id, Kind: store.EventMailboxDeleted, Name: mb.Name})
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete mailbox %d: %w", id, err)
	}
	return nil
}

// RenameMailbox implements store.Store.
func (s *Store) RenameMailbox(ctx context.Context, acct store.AccountID, oldName, newName string) error {
	from, err := store.CanonicalMailboxName(oldName)
	if err != nil {
		return fmt.Errorf("rename mailbox: %w", store.ErrNotFound)
	}
	to, err := store.CanonicalMailboxName(newName)
	if err != nil {
		return fmt.Errorf("rename mailbox: %w", err)
	}
	err = s.write(ctx, func(w *wtx) error {
		src, err := scanMailbox(w.QueryRowContext(w.ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account_id = ? AND m.name = ?`, acct, from))
		if err != nil {
			return err
		}
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM mailboxes WHERE account_id = ? AND name = ?`, acct, to).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		if store.IsInbox(to) || strings.HasPrefix(to, from+"/") {
			return store.ErrInvalidName
		}
		if store.IsInbox(from) {
			// RFC 9051 §6.3.6: renaming INBOX moves its messages to a new
			// mailbox and leaves INBOX empty; inferiors of INBOX stay.
			if err := s.checkMailboxLimit(w, acct, 1); err != nil {
				return err
			}
			dst, err := createMailboxTx(w, acct, to, nil)
			if err != nil {
				return err
			}
			_, err = copyTx(w, acct, src.ID, nil, dst.ID, true)
			return err
		}
		rows, err := w.QueryContext(w.ctx, `SELECT id, name FROM mailboxes WHERE account_id = ? AND (name = ? OR substr(name, 1, ?) = ?)`,
			acct, from, len(from)+1, from+"/")
		if err != nil {
			return err
		}
		type ren struct {
			id       store.MailboxID
			old, new string
		}
		var rens []ren
		for rows.Next() {
			var r ren
			if err := rows.Scan(&r.id, &r.old); err != nil {
				rows.Close()
				return err
			}
			r.new = to + r.old[len(from):]
			rens = append(rens, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range rens {
			if len(r.new) > store.MaxMailboxNameLen {
				return store.ErrInvalidName
			}
			if _, err := w.ExecContext(w.ctx, `UPDATE mailboxes SET name = ? WHERE id = ?`, r.new, r.id); err != nil {
				return err
			}
			// The subscription moves with the mailbox and replaces one
			// of the new name.
			if _, err := w.ExecContext(w.ctx, `DELETE FROM subscriptions WHERE account_id = ? AND name = ?
				AND EXISTS (SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?)`, acct, r.new, acct, r.old); err != nil {
				return err
			}
			if _, err := w.ExecContext(w.ctx, `UPDATE subscriptions SET name = ? WHERE account_id = ? AND name = ?`, r.new, acct, r.old); err != nil {
				return err
			}
			w.event(store.Event{Account: acct, Mailbox: r.id, Kind: store.EventMailboxRenamed, Name: r.new, OldName: r.old})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rename mailbox %q to %q: %w", oldName, newName, err)
	}
	return nil
}

// SetSubscribed implements store.Store.
func (s *Store) SetSubscribed(ctx context.Context, acct store.AccountID, name string, on bool) error {
	cname, err := store.CanonicalMailboxName(name)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		q := `INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING`
		if on {
			if err := s.checkSubscriptionLimit(w, acct, cname); err != nil {
				return err
			}
		} else {
			q = `DELETE FROM subscriptions WHERE account_id = ? AND name = ?`
		}
		if _, err := w.ExecContext(w.ctx, q, acct, cname); err != nil {
			return err
		}
		w.event(store.Event{Account: acct, Kind: store.EventSubscription, Name: cname})
		return nil
	})
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", name, err)
	}
	return nil
}

// Subscriptions implements store.Store.
func (s *Store) Subscriptions(ctx context.Context, acct store.AccountID) ([]string, error) {
	rows, err := s.query(ctx, `SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name`, acct)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// SetSpecialUse implements store.Store.
func (s *Store) SetSpecialUse(ctx context.Context, acct store.AccountID, id store.MailboxID, uses []string) error {
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.ExecContext(w.ctx, `UPDATE mailboxes SET special_use = ? WHERE account_id = ? AND id = ?`, strings.Join(uses, " "), acct, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		// RFC 6154 §4: the special-use attributes are the mailbox's
		// /private/specialuse annotation.
		w.event(store.Event{Account: acct, Mailbox: id, Kind: store.EventMetadata, Entries: []string{"/private/specialuse"}})
		return nil
	})
	if err != nil {
		return fmt.Errorf("set special-use of mailbox %d: %w", id, err)
	}
	return nil
}

// Status implements store.Store. The counters are kept in the mailbox row
// by every write, so STATUS costs one row read whatever the mailbox size.
func (s *Store) Status(ctx context.Context, acct store.AccountID, id store.MailboxID) (*store.Status, error) {
	st := store.Status{Mailbox: id}
	err := s.queryRow(ctx, `SELECT msg_count, unseen_count, deleted_count, total_size, deleted_size, uidnext, uidvalidity, highestmodseq, first_recent
		FROM mailboxes WHERE account_id = ? AND id = ?`, acct, id).Scan(
		&st.Messages, &st.Unseen, &st.Deleted, &st.Size, &st.DeletedSize, &st.UIDNext, &st.UIDValidity, &st.HighestModSeq, &st.FirstRecent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("status of mailbox %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("status of mailbox %d: %w", id, err)
	}
	return &st, nil
}

// ClaimRecent implements store.Store.
//
// The claim is not waited for to be durable (writeUndurable): when its
// commit fails or the server crashes, a message may be \Recent once more,
// which RFC 3501 allows (the flag is about sessions), and a session does
// not wait for an fsync each time it learns of new mail.
func (s *Store) ClaimRecent(ctx context.Context, acct store.AccountID, id store.MailboxID, upTo mail.UID) (mail.UID, error) {
	var first mail.UID
	err := s.writeUndurable(ctx, func(w *wtx) error {
		var next mail.UID
		err := w.QueryRowContext(w.ctx, `SELECT first_recent, uidnext FROM mailboxes WHERE account_id = ? AND id = ?`, acct, id).Scan(&first, &next)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		claim := min(upTo, next)
		if err != nil || first >= claim {
			return err
		}
		_, err = w.ExecContext(w.ctx, `UPDATE mailboxes SET first_recent = ? WHERE id = ?`, claim, id)
		return err
	})
	if errors.Is(err, store.ErrDiskFull) {
		// On a full disk a session must still select a mailbox (to delete
		// mail): it sees as recent what is unclaimed, without claiming it.
		s.diskFull()
		if rerr := s.queryRow(ctx, `SELECT first_recent FROM mailboxes WHERE account_id = ? AND id = ?`, acct, id).Scan(&first); rerr == nil {
			return first, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("claim recent in mailbox %d: %w", id, err)
	}
	return first, nil
}

// mailboxRow is the part of a mailbox row writes need.
type mailboxRow struct {
	id            store.MailboxID
	name          string
	noselect      bool
	uidvalidity   uint32
	uidnext       mail.UID
	highestModSeq mail.ModSeq
}

func loadMailboxTx(w *wtx, acct store.AccountID, id store.MailboxID) (*mailboxRow, error) {
	var mb mailboxRow
	err := w.QueryRowContext(w.ctx, `SELECT id, name, noselect, uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE account_id = ? AND id = ?`,
		acct, id).Scan(&mb.id, &mb.name, &mb.noselect, &mb.uidvalidity, &mb.uidnext, &mb.highestModSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &mb, nil
}

// counters are changes to a mailbox's message counters.
type counters struct {
	messages, unseen, deleted int
	size, deletedSize         int64
}

func (c *counters) add(bits uint8, size int64, sign int) {
	c.messages += sign
	if bits&mail.Bit(mail.FlagSeen) == 0 {
		c.unseen += sign
	}
	if bits&mail.Bit(mail.FlagDeleted) != 0 {
		c.deleted += sign
		c.deletedSize += int64(sign) * size
	}
	c.size += int64(sign) * size
}

// bumpMailbox records a write: new UIDNEXT and MODSEQ and counter deltas,
// and the change of the account's usage (quota.go) with them.
func bumpMailbox(w *wtx, id store.MailboxID, uidnext mail.UID, modseq mail.ModSeq, c counters) error {
	_, err := w.ExecContext(w.ctx, `UPDATE mailboxes SET uidnext = ?, highestmodseq = ?,
		msg_count = msg_count + ?, unseen_count = unseen_count + ?, deleted_count = deleted_count + ?, total_size = total_size + ?,
		deleted_size = deleted_size + ?
		WHERE id = ?`, uidnext, modseq, c.messages, c.unseen, c.deleted, c.size, c.deletedSize, id)
	if err != nil {
		return err
	}
	return addUsage(w, id, c)
}

func unixTZ(t time.Time) (int64, int) {
	_, off := t.Zone()
	return t.Unix(), off
}

// zoneCache holds the fixed zones of the offsets seen, so reading a
// message's date does not allocate a zone per row.
type zoneCache struct {
	m sync.Map // int -> *time.Location
}

func (zc *zoneCache) at(sec int64, off int) time.Time {
	if off == 0 {
		return time.Unix(sec, 0).UTC()
	}
	z, ok := zc.m.Load(off)
	if !ok {
		z, _ = zc.m.LoadOrStore(off, time.FixedZone("", off))
	}
	return time.Unix(sec, 0).In(z.(*time.Location))
}
