package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// UIDs implements store.Store.
func (s *Store) UIDs(ctx context.Context, acct store.AccountID, id store.MailboxID) (mail.UIDSet, mail.ModSeq, error) {
	var set mail.UIDSet
	var modseq mail.ModSeq
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if err := s.txQueryRow(ctx, tx, `SELECT highestmodseq FROM mailboxes WHERE account_id = ? AND id = ?`, acct, id).Scan(&modseq); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				err = store.ErrNotFound
			}
			return err
		}
		rows, err := s.txQuery(ctx, tx, `SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u mail.UID
			if err := rows.Scan(&u); err != nil {
				return err
			}
			set = set.Append(u)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read uids of mailbox %d: %w", id, err)
	}
	return set, modseq, nil
}

const messageCols = `m.uid, m.modseq, m.flags, m.keywords, m.internal_date, m.internal_tz, m.save_date, m.size, m.blob_id, m.email_id, m.pop_uid`

func (s *Store) scanMessage(rows *sql.Rows, withSummary bool) (*store.Message, error) {
	var m store.Message
	var bits uint8
	var kw string
	var date, saved int64
	var tz int
	// RawBytes: the summary is decoded (and copied) before the next row,
	// so database/sql need not copy it first.
	var sum sql.RawBytes
	var blobID int64
	dest := []any{&m.UID, &m.ModSeq, &bits, &kw, &date, &tz, &saved, &m.Size, &blobID, &m.EmailID, &m.POPUID}
	if withSummary {
		dest = append(dest, &sum)
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	m.BlobID = strconv.FormatInt(blobID, 10)
	m.Flags = mail.FlagsFromBits(bits, parseKeywords(kw))
	m.InternalDate = s.zones.at(date, tz)
	m.SaveDate = time.Unix(saved, 0)
	if withSummary {
		m.Summary = new(message.Summary)
		if err := m.Summary.UnmarshalBinary(sum); err != nil {
			return nil, fmt.Errorf("message %d: bad summary: %w", m.UID, err)
		}
	}
	return &m, nil
}

// Messages implements store.Store. It reads chunks of at most 500 rows, each
// in its own short read, so a slow consumer never pins a database snapshot.
func (s *Store) Messages(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool) {
	return func(yield func(*store.Message, error) bool) {
		const chunk = 500
		q := `SELECT ` + messageCols
		if opt.Summary {
			q += `, b.summary FROM messages m JOIN blobs b ON b.id = m.blob_id`
		} else {
			q += ` FROM messages m`
		}
		// The account check is part of the query (a constant subquery,
		// evaluated once); only an empty result needs a separate look to
		// tell "no such mailbox" from "no such messages".
		q += ` WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? AND m.modseq > ?
			AND EXISTS (SELECT 1 FROM mailboxes WHERE id = m.mailbox_id AND account_id = ?) ORDER BY m.uid LIMIT ?`
		any := false
		for _, win := range windows(uids) {
			lo := win.Lo
			for lo <= win.Hi {
				batch, n, last, err := s.readChunk(ctx, q, acct, id, lo, win.Hi, opt, chunk, uids)
				if err != nil {
					yield(nil, fmt.Errorf("list messages of mailbox %d: %w", id, err))
					return
				}
				any = any || n > 0
				for _, m := range batch {
					if !yield(m, nil) {
						return
					}
				}
				if n < chunk || last == mail.MaxUID {
					break
				}
				lo = last + 1
			}
		}
		if !any {
			var owner int
			err := s.queryRow(ctx, `SELECT count(*) FROM mailboxes WHERE account_id = ? AND id = ?`, acct, id).Scan(&owner)
			if err == nil && owner == 0 {
				err = store.ErrNotFound
			}
			if err != nil {
				yield(nil, fmt.Errorf("list messages of mailbox %d: %w", id, err))
			}
		}
	}
}

func (s *Store) readChunk(ctx context.Context, q string, acct store.AccountID, id store.MailboxID, lo, hi mail.UID, opt store.ListOptions, chunk int, uids mail.UIDSet) ([]*store.Message, int, mail.UID, error) {
	rows, err := s.query(ctx, q, id, lo, hi, opt.ChangedSince, acct, chunk)
	if err != nil {
		return nil, 0, 0, err
	}
	defer rows.Close()
	var out []*store.Message
	n, last := 0, mail.UID(0)
	for rows.Next() {
		m, err := s.scanMessage(rows, opt.Summary)
		if err != nil {
			return nil, 0, 0, err
		}
		n++
		last = m.UID
		if uids.Contains(m.UID) {
			out = append(out, m)
		}
	}
	return out, n, last, rows.Err()
}

// Changes implements store.Store, in one read snapshot.
func (s *Store) Changes(ctx context.Context, acct store.AccountID, id store.MailboxID, since mail.ModSeq) (*store.ChangeSet, error) {
	cs := &store.ChangeSet{}
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var floor mail.ModSeq
		err := s.txQueryRow(ctx, tx, `SELECT highestmodseq, uidnext, vanished_floor FROM mailboxes WHERE account_id = ? AND id = ?`, acct, id).Scan(
			&cs.HighestModSeq, &cs.UIDNext, &floor)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		cs.VanishedComplete = since >= floor
		if since >= cs.HighestModSeq {
			return nil
		}
		rows, err := s.txQuery(ctx, tx, `SELECT `+messageCols+` FROM messages m WHERE m.mailbox_id = ? AND m.modseq > ? ORDER BY m.uid`, id, since)
		if err != nil {
			return err
		}
		for rows.Next() {
			m, err := s.scanMessage(rows, false)
			if err != nil {
				rows.Close()
				return err
			}
			cs.Changed = append(cs.Changed, *m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = s.txQuery(ctx, tx, `SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`, id, since)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u mail.UID
			if err := rows.Scan(&u); err != nil {
				return err
			}
			cs.Vanished = cs.Vanished.Append(u)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("changes of mailbox %d: %w", id, err)
	}
	return cs, nil
}

// memBody is a body read from the database; it implements store.BodyBytes.
type memBody struct {
	*bytes.Reader
	data []byte
}

var _ store.BodyBytes = memBody{}

func (b memBody) Bytes() []byte { return b.data }

func (memBody) Close() error { return nil }

// OpenBody implements store.Store. blobID is a Message.BlobID: the row id
// of the body in the blobs table.
func (s *Store) OpenBody(ctx context.Context, blobID string) (store.Body, error) {
	id, err := strconv.ParseInt(blobID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("open body %q: %w", blobID, store.ErrNotFound)
	}
	data, size, hash, dots, err := s.bodyRow(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("open body %s: %w", blobID, err)
	}
	if err := s.knownDamaged(id); err != nil {
		// Found damaged by the scrub or a check (damage.go).
		return nil, err
	}
	if data != nil || size == 0 {
		return memBody{bytes.NewReader(data), data}, nil
	}
	r, err := s.blobs.Open(ctx, hash)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, s.markDamaged(ctx, id, hash, "its file is missing")
	}
	if err != nil {
		return nil, fmt.Errorf("open body %s: %w", blobID, err)
	}
	if r.Size() != size {
		// Damaged on disk: refuse it rather than let a protocol send a
		// shorter or longer message than it announced.
		r.Close()
		return nil, s.markDamaged(ctx, id, hash, fmt.Sprintf("its file has %d bytes, the store recorded %d", r.Size(), size))
	}
	fr, ok := r.(interface{ File() *os.File })
	if !ok {
		return r, nil
	}
	fb := &fileBody{Reader: r, f: fr.File()}
	if dots != nil {
		offsets, endsLF, nul, nulKnown, err := store.DecodeScan(dots)
		if err == nil && len(offsets) > 0 && offsets[len(offsets)-1] >= size {
			err = fmt.Errorf("dot line at %d past the end", offsets[len(offsets)-1])
		}
		if err == nil {
			fb.dots, fb.endsLF, fb.known = offsets, endsLF, true
			fb.nul, fb.nulKnown = nul, nulKnown
		} else {
			// Callers scan the body instead; postfach check reports it.
			s.log.Warn("ignoring a damaged record of a body's dot lines", "blob", blobID, "err", err)
		}
	}
	return fb, nil
}

// bodyRow reads a body's row. The data is scanned into a []byte of its
// own: the driver reuses its buffers for the next row, so sql.RawBytes
// would not stay intact.
func (s *Store) bodyRow(ctx context.Context, id int64) (data []byte, size int64, hash string, dots []byte, err error) {
	rows, err := s.query(ctx, `SELECT size, data, hash, dots FROM blobs WHERE id = ?`, id)
	if err != nil {
		return nil, 0, "", nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, 0, "", nil, err
		}
		return nil, 0, "", nil, store.ErrNotFound
	}
	if err := rows.Scan(&size, &data, &hash, &dots); err != nil {
		return nil, 0, "", nil, err
	}
	if data == nil && size == 0 {
		data = []byte{}
	}
	return data, size, hash, dots, rows.Close()
}

// fileBody is a body in a local file; it implements store.BodyFile and
// store.BodyNUL. Its dot lines and whether it holds NUL are known when
// its record says so (see store.DecodeScan).
type fileBody struct {
	blob.Reader
	f        *os.File
	dots     []int64
	endsLF   bool
	known    bool
	nul      bool
	nulKnown bool
}

var (
	_ store.BodyFile = (*fileBody)(nil)
	_ store.BodyNUL  = (*fileBody)(nil)
)

func (b *fileBody) HasNUL() (has, known bool) { return b.nul, b.nulKnown }

func (b *fileBody) File() *os.File { return b.f }

func (b *fileBody) DotLines() ([]int64, bool, bool) { return b.dots, b.endsLF, b.known }

var _ store.MailboxKeywords = (*Store)(nil)

// MailboxKeywords implements store.MailboxKeywords. It reads the
// mailbox's rows, as UIDs does; the distinct keyword strings are few.
func (s *Store) MailboxKeywords(ctx context.Context, acct store.AccountID, id store.MailboxID) ([]string, error) {
	var kws mail.Flags
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := s.txQueryRow(ctx, tx, `SELECT 1 FROM mailboxes WHERE account_id = ? AND id = ?`, acct, id).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				err = store.ErrNotFound
			}
			return err
		}
		rows, err := s.txQuery(ctx, tx, `SELECT DISTINCT keywords FROM messages WHERE mailbox_id = ? AND keywords <> ''`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kw string
			if err := rows.Scan(&kw); err != nil {
				return err
			}
			for _, k := range parseKeywords(kw) {
				kws = kws.With(k)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read keywords of mailbox %d: %w", id, err)
	}
	return kws, nil
}
