package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

var _ store.Undeleter = (*Store)(nil)

// undeleteChunk bounds the rows Deleted reads in one read transaction.
const undeleteChunk = 200

// liveEmailIDs returns the EMAILIDs of the account's messages: a retained
// message whose EMAILID is among them is not lost (moved, copied, or
// undeleted already). One pass over the account's messages: EMAILIDs
// have no index, and an undelete is rare.
func liveEmailIDs(ctx context.Context, q func(ctx context.Context, q string, args ...any) (*sql.Rows, error), acct store.AccountID) (map[string]bool, error) {
	rows, err := q(ctx, `SELECT m.email_id FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.account_id = ?`, acct)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	live := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		live[id] = true
	}
	return live, rows.Err()
}

// Deleted implements store.Undeleter. Each chunk is read in a read
// transaction of its own, so a slow consumer pins no snapshot.
func (s *Store) Deleted(ctx context.Context, acct store.AccountID, since time.Time) func(yield func(*store.ExpungedMessage, error) bool) {
	return func(yield func(*store.ExpungedMessage, error) bool) {
		fail := func(err error) { yield(nil, fmt.Errorf("list deleted messages: %w", err)) }
		if _, err := s.AccountByID(ctx, acct); err != nil {
			fail(err)
			return
		}
		var live map[string]bool
		err := s.readTx(ctx, func(tx *sql.Tx) (err error) {
			live, err = liveEmailIDs(ctx, func(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
				return s.txQuery(ctx, tx, q, args...)
			}, acct)
			return err
		})
		if err != nil {
			fail(err)
			return
		}
		var from int64
		if !since.IsZero() {
			from = since.Unix()
		}
		var afterMB store.MailboxID
		var afterUID mail.UID
		for {
			var batch []*store.ExpungedMessage
			n := 0
			err := s.readTx(ctx, func(tx *sql.Tx) error {
				rows, err := s.txQuery(ctx, tx, `SELECT e.mailbox_id, e.uid, e.modseq, e.expunged_at, e.mailbox_name, e.flags, e.keywords,
					e.internal_date, e.internal_tz, e.size, e.blob_id, e.email_id, b.hash, b.summary
					FROM expunged e JOIN blobs b ON b.id = e.blob_id
					WHERE e.account_id = ? AND e.expunged_at >= ? AND (e.mailbox_id > ? OR e.mailbox_id = ? AND e.uid > ?)
					ORDER BY e.mailbox_id, e.uid LIMIT ?`, acct, from, afterMB, afterMB, afterUID, undeleteChunk)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var m store.ExpungedMessage
					var at, date, blobID int64
					var tz int
					var bits uint8
					var kw string
					// RawBytes: the summary is decoded (and copied)
					// before the next row.
					var sum sql.RawBytes
					if err := rows.Scan(&m.Mailbox, &m.UID, &m.ModSeq, &at, &m.MailboxName, &bits, &kw, &date, &tz, &m.Size, &blobID,
						&m.EmailID, &m.Hash, &sum); err != nil {
						return err
					}
					afterMB, afterUID = m.Mailbox, m.UID
					n++
					if live[m.EmailID] {
						continue
					}
					m.Expunged = time.Unix(at, 0)
					m.Flags = mail.FlagsFromBits(bits, parseKeywords(kw))
					m.InternalDate = s.zones.at(date, tz)
					m.BlobID = strconv.FormatInt(blobID, 10)
					m.Summary = new(message.Summary)
					if err := m.Summary.UnmarshalBinary(sum); err != nil {
						return fmt.Errorf("expunged message %d of mailbox %d: bad summary: %w", m.UID, m.Mailbox, err)
					}
					batch = append(batch, &m)
				}
				return rows.Err()
			})
			if err != nil {
				fail(err)
				return
			}
			for _, m := range batch {
				if !yield(m, nil) {
					return
				}
			}
			if n < undeleteChunk {
				return
			}
		}
	}
}

// Undelete implements store.Undeleter: one write request through the
// single writer, so the new UIDs and the MODSEQ are allocated as an
// Append's are, and a refused quota rolls the request's savepoint back.
func (s *Store) Undelete(ctx context.Context, acct store.AccountID, dest store.MailboxID, refs []store.DeletedRef) (*store.UndeleteResult, error) {
	var res *store.UndeleteResult
	err := s.writeGrow(ctx, func(w *wtx) error {
		mb, err := loadMailboxTx(w, acct, dest)
		if err != nil {
			return err
		}
		if mb.noselect {
			return store.ErrNoSelect
		}
		live, err := liveEmailIDs(w.ctx, w.QueryContext, acct)
		if err != nil {
			return err
		}
		res = &store.UndeleteResult{AppendResult: store.AppendResult{Mailbox: dest, UIDValidity: mb.uidvalidity}}
		modseq := mb.highestModSeq + 1
		uid := mb.uidnext
		now := time.Now().Unix()
		var c counters
		for _, r := range refs {
			var bits uint8
			var kw, emailID string
			var date, size, blobID int64
			var tz int
			err := w.QueryRowContext(w.ctx, `SELECT flags, keywords, internal_date, internal_tz, size, blob_id, email_id FROM expunged
				WHERE mailbox_id = ? AND uid = ? AND account_id = ?`, r.Mailbox, r.UID, acct).Scan(&bits, &kw, &date, &tz, &size, &blobID, &emailID)
			if errors.Is(err, sql.ErrNoRows) || err == nil && live[emailID] {
				continue
			}
			if err != nil {
				return err
			}
			if uid == mail.MaxUID {
				return errors.New("mailbox UID space exhausted")
			}
			// A message expunged with EXPUNGE carries \Deleted: with it, it
			// would be gone again at the next one.
			bits &^= mail.Bit(mail.FlagDeleted)
			if _, err := w.ExecContext(w.ctx, `INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, internal_tz,
				save_date, size, blob_id, email_id, pop_uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
				dest, uid, modseq, bits, kw, date, tz, now, size, blobID, emailID); err != nil {
				return err
			}
			live[emailID] = true
			c.add(bits, size, 1)
			res.UIDs = append(res.UIDs, uid)
			res.Refs = append(res.Refs, r)
			uid++
		}
		if len(res.UIDs) == 0 {
			return nil
		}
		res.ModSeq = modseq
		if err := bumpMailbox(w, dest, uid, modseq, c); err != nil {
			return err
		}
		w.event(store.Event{Account: acct, Mailbox: dest, Kind: store.EventMessages, ModSeq: modseq})
		return s.checkQuota(w, acct)
	})
	if err != nil {
		return nil, fmt.Errorf("undelete into mailbox %d: %w", dest, err)
	}
	return res, nil
}
