package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// newEmailID returns a fresh RFC 8474 EMAILID: "M" and 20 base32 characters
// of randomness (objectid = 1*255 of ALPHA / DIGIT / "_" / "-").
func newEmailID() string {
	var b [12]byte
	rand.Read(b[:])
	return "M" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func keywordsString(kw []string) string { return strings.Join(kw, " ") }

func parseKeywords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// validFlags rejects flags a message cannot carry.
func validFlags(fl mail.Flags) error {
	for _, f := range fl {
		if strings.HasPrefix(f, `\`) {
			if !mail.IsSystemFlag(f) {
				return fmt.Errorf("cannot store flag %q", f)
			}
			continue
		}
		if !mail.ValidKeyword(f) {
			return fmt.Errorf("invalid keyword %q", f)
		}
	}
	return nil
}

type appendItem struct {
	body    *staged
	blobRow int64 // the body's blobs row when already inserted, else 0
	flags   mail.Flags
	date    time.Time
	popUID  string
}

// appendTx appends messages to one mailbox with one MODSEQ.
func appendTx(w *wtx, acct store.AccountID, id store.MailboxID, items []appendItem) (*store.AppendResult, error) {
	mb, err := loadMailboxTx(w, acct, id)
	if err != nil {
		return nil, err
	}
	return appendToTx(w, acct, mb, items)
}

// appendToTx is appendTx for a mailbox row read in this transaction.
func appendToTx(w *wtx, acct store.AccountID, mb *mailboxRow, items []appendItem) (*store.AppendResult, error) {
	id := mb.id
	if mb.noselect {
		return nil, store.ErrNoSelect
	}
	if uint64(mb.uidnext)+uint64(len(items)) > uint64(mail.MaxUID) {
		return nil, errors.New("mailbox UID space exhausted")
	}
	modseq := mb.highestModSeq + 1
	now := time.Now()
	res := &store.AppendResult{Mailbox: id, UIDValidity: mb.uidvalidity, ModSeq: modseq}
	var c counters
	uid := mb.uidnext
	for _, it := range items {
		blobRow := it.blobRow
		if blobRow == 0 {
			var err error
			if blobRow, err = insertBlobTx(w, it.body, now.Unix()); err != nil {
				return nil, err
			}
		}
		bits, kw := it.flags.Bits()
		date := it.date
		if date.IsZero() {
			date = now
		}
		ds, dz := unixTZ(date)
		if _, err := w.ExecContext(w.ctx, `INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, internal_tz,
			save_date, size, blob_id, email_id, pop_uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, uid, modseq, bits, keywordsString(kw), ds, dz, now.Unix(), it.body.size, blobRow, newEmailID(), it.popUID); err != nil {
			return nil, err
		}
		c.add(bits, it.body.size, 1)
		res.UIDs = append(res.UIDs, uid)
		uid++
	}
	if err := bumpMailbox(w, id, uid, modseq, c); err != nil {
		return nil, err
	}
	w.event(store.Event{Account: acct, Mailbox: id, Kind: store.EventMessages, ModSeq: modseq})
	return res, nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, acct store.AccountID, id store.MailboxID, msgs []store.NewMessage) (*store.AppendResult, error) {
	if len(msgs) == 0 {
		return nil, errors.New("append: no messages")
	}
	items := make([]appendItem, len(msgs))
	for i, m := range msgs {
		b, err := s.asStaged(m.Body)
		if err != nil {
			return nil, err
		}
		fl := mail.NewFlags(m.Flags...)
		if err := validFlags(fl); err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		items[i] = appendItem{body: b, flags: fl, date: m.InternalDate, popUID: m.POPUID}
	}
	var res *store.AppendResult
	err := s.writeGrow(ctx, func(w *wtx) (err error) {
		if res, err = appendTx(w, acct, id, items); err == nil {
			err = s.checkQuota(w, acct)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append to mailbox %d: %w", id, err)
	}
	return res, nil
}

// Deliver implements store.Store. The whole delivery is one write request
// (so concurrent deliveries share commits) that stores the body once; each
// target runs in a savepoint of its own, so it succeeds or fails alone.
func (s *Store) Deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error) {
	return s.deliver(ctx, body, targets, false)
}

// DeliverAll implements store.Store: Deliver, but when a target fails the
// whole write request is rolled back.
func (s *Store) DeliverAll(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error) {
	return s.deliver(ctx, body, targets, true)
}

func (s *Store) deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget, all bool) ([]store.DeliveryResult, error) {
	b, err := s.asStaged(body)
	if err != nil {
		return nil, err
	}
	results := make([]store.DeliveryResult, len(targets))
	flags := make([]mail.Flags, len(targets))
	for i, t := range targets {
		flags[i] = mail.NewFlags(t.Flags...)
		if err := validFlags(flags[i]); err != nil {
			results[i].Err = err
		}
	}
	errNone := errors.New("no target accepted the message")
	failed := slices.ContainsFunc(results, func(r store.DeliveryResult) bool { return r.Err != nil })
	if all && failed {
		return notDelivered(results), nil
	}
	err = s.writeGrow(ctx, func(w *wtx) error {
		blobRow, err := insertBlobTx(w, b, time.Now().Unix())
		if err != nil {
			return err
		}
		// A target that fails must leave no trace. When its failure fails
		// the whole request anyway (DeliverAll, or a single target), the
		// request's own savepoint sees to that; otherwise each target gets
		// a savepoint of its own.
		nested := !all && len(targets) > 1
		ok := false
		for i, t := range targets {
			if results[i].Err != nil {
				continue
			}
			one := func() error {
				mb, err := deliveryMailbox(w, t)
				if err != nil {
					return err
				}
				res, err := appendToTx(w, t.Account, mb, []appendItem{{body: b, blobRow: blobRow, flags: flags[i]}})
				if err != nil {
					return err
				}
				results[i].AppendResult = *res
				return nil
			}
			var err error
			if nested {
				err = w.savepoint(one)
			} else {
				err = one()
			}
			if err != nil {
				results[i].Err = fmt.Errorf("deliver to account %d: %w", t.Account, mapErr(err))
				if all {
					return errNone
				}
				continue
			}
			ok = true
		}
		if !ok {
			return errNone
		}
		return nil
	})
	if all && errors.Is(err, errNone) {
		return notDelivered(results), nil
	}
	if err != nil && !errors.Is(err, errNone) {
		for i := range results {
			if results[i].Err == nil {
				results[i] = store.DeliveryResult{Err: fmt.Errorf("deliver to account %d: %w", targets[i].Account, err)}
			}
		}
	}
	return results, nil
}

// notDelivered gives every result without an error store.ErrNotDelivered,
// for a DeliverAll that stored nothing.
func notDelivered(results []store.DeliveryResult) []store.DeliveryResult {
	for i := range results {
		if results[i].Err == nil {
			results[i] = store.DeliveryResult{Err: store.ErrNotDelivered}
		}
	}
	return results
}

// deliveryMailbox resolves a delivery target's mailbox, falling back to
// INBOX when the named one is missing or cannot hold messages, and reads
// its row.
func deliveryMailbox(w *wtx, t store.DeliveryTarget) (*mailboxRow, error) {
	name := "INBOX"
	if t.Mailbox != "" {
		if n, err := store.CanonicalMailboxName(t.Mailbox); err == nil {
			name = n
		}
	}
	const q = `SELECT id, name, noselect, uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE account_id = ? AND name = ?`
	var mb mailboxRow
	scan := func(name string) error {
		return w.QueryRowContext(w.ctx, q, t.Account, name).Scan(&mb.id, &mb.name, &mb.noselect, &mb.uidvalidity, &mb.uidnext, &mb.highestModSeq)
	}
	err := scan(name)
	if err == nil && (!mb.noselect || name == "INBOX") {
		return &mb, nil // appendToTx refuses a \Noselect INBOX
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if name == "INBOX" {
		return nil, store.ErrNotFound
	}
	if err := scan("INBOX"); errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	return &mb, nil
}

// msgRow is a message row as write paths read it.
type msgRow struct {
	uid      mail.UID
	modseq   mail.ModSeq
	bits     uint8
	keywords string
	date     int64
	tz       int
	size     int64
	blobID   int64
	emailID  string
	popUID   string
}

// eachRow calls fn for each message of mailbox id with a UID in uids (all
// when uids is nil) and below limit, in UID order. It reads in windows so a
// sparse set does not scan the whole mailbox, and collects each chunk of
// rows before fn runs, so fn may write to the same table.
func eachRow(w *wtx, id store.MailboxID, uids mail.UIDSet, limit mail.UID, fn func(r *msgRow) error) error {
	const chunk = 1000
	if uids == nil {
		uids = mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}
	}
	for _, win := range windows(uids) {
		lo, hi := win.Lo, win.Hi
		if limit == 0 {
			return nil
		}
		hi = min(hi, limit-1)
		for lo <= hi {
			rows, err := w.QueryContext(w.ctx, `SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob_id, email_id, pop_uid
				FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid LIMIT ?`, id, lo, hi, chunk)
			if err != nil {
				return err
			}
			var batch []msgRow
			n, last := 0, mail.UID(0)
			for rows.Next() {
				var r msgRow
				if err := rows.Scan(&r.uid, &r.modseq, &r.bits, &r.keywords, &r.date, &r.tz, &r.size, &r.blobID, &r.emailID, &r.popUID); err != nil {
					rows.Close()
					return err
				}
				n++
				last = r.uid
				if uids.Contains(r.uid) {
					batch = append(batch, r)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for i := range batch {
				if err := fn(&batch[i]); err != nil {
					return err
				}
			}
			if n < chunk || last == mail.MaxUID {
				break
			}
			lo = last + 1
		}
	}
	return nil
}

// windows groups the ranges of a set into query windows: ranges closer
// than windowGap are read with one query and filtered in Go.
func windows(set mail.UIDSet) mail.UIDSet {
	const windowGap = 64
	var out mail.UIDSet
	for _, r := range set {
		if n := len(out); n > 0 && uint64(r.Lo) <= uint64(out[n-1].Hi)+windowGap {
			out[n-1].Hi = r.Hi
			continue
		}
		out = append(out, r)
	}
	return out
}

// StoreFlags implements store.Store.
func (s *Store) StoreFlags(ctx context.Context, acct store.AccountID, id store.MailboxID, req store.StoreFlagsRequest) (*store.StoreFlagsResult, error) {
	flags := mail.NewFlags(req.Flags...)
	if err := validFlags(flags); err != nil {
		return nil, fmt.Errorf("store flags: %w", err)
	}
	var res *store.StoreFlagsResult
	err := s.write(ctx, func(w *wtx) error {
		mb, err := loadMailboxTx(w, acct, id)
		if err != nil {
			return err
		}
		res = &store.StoreFlagsResult{}
		modseq := mb.highestModSeq + 1
		var c counters
		err = eachRow(w, id, req.UIDs, mb.uidnext, func(r *msgRow) error {
			if req.UnchangedSince != 0 && r.modseq > req.UnchangedSince {
				res.Modified = res.Modified.Append(r.uid)
				return nil
			}
			old := mail.FlagsFromBits(r.bits, parseKeywords(r.keywords))
			var nf mail.Flags
			switch req.Op {
			case store.FlagsAdd:
				nf = old.Union(flags)
			case store.FlagsRemove:
				nf = old.Minus(flags)
			default:
				nf = flags
			}
			if nf.Equal(old) {
				res.Updated = append(res.Updated, store.FlagUpdate{UID: r.uid, ModSeq: r.modseq, Flags: old})
				return nil
			}
			bits, kw := nf.Bits()
			if _, err := w.ExecContext(w.ctx, `UPDATE messages SET modseq = ?, flags = ?, keywords = ? WHERE mailbox_id = ? AND uid = ?`,
				modseq, bits, keywordsString(kw), id, r.uid); err != nil {
				return err
			}
			c.add(r.bits, r.size, -1)
			c.add(bits, r.size, 1)
			res.Updated = append(res.Updated, store.FlagUpdate{UID: r.uid, ModSeq: modseq, Flags: nf})
			res.Changed = res.Changed.Append(r.uid)
			return nil
		})
		if err != nil {
			return err
		}
		if res.Changed.IsEmpty() {
			return nil
		}
		res.ModSeq = modseq
		if err := bumpMailbox(w, id, mb.uidnext, modseq, c); err != nil {
			return err
		}
		w.event(store.Event{Account: acct, Mailbox: id, Kind: store.EventMessages, ModSeq: modseq})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store flags in mailbox %d: %w", id, err)
	}
	return res, nil
}

// expungeTx expunges messages of a mailbox into tombstones.
func expungeTx(w *wtx, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, onlyDeleted bool) (*store.ExpungeResult, error) {
	mb, err := loadMailboxTx(w, acct, id)
	if err != nil {
		return nil, err
	}
	modseq := mb.highestModSeq + 1
	now := time.Now().Unix()
	res := &store.ExpungeResult{}
	var c counters
	err = eachRow(w, id, uids, mb.uidnext, func(r *msgRow) error {
		if onlyDeleted && r.bits&mail.Bit(mail.FlagDeleted) == 0 {
			return nil
		}
		if _, err := w.ExecContext(w.ctx, `INSERT INTO expunged (mailbox_id, uid, modseq, expunged_at, account_id, mailbox_name,
			flags, keywords, internal_date, internal_tz, size, blob_id, email_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, r.uid, modseq, now, acct, mb.name, r.bits, r.keywords, r.date, r.tz, r.size, r.blobID, r.emailID); err != nil {
			return err
		}
		if _, err := w.ExecContext(w.ctx, `DELETE FROM messages WHERE mailbox_id = ? AND uid = ?`, id, r.uid); err != nil {
			return err
		}
		c.add(r.bits, r.size, -1)
		res.UIDs = res.UIDs.Append(r.uid)
		return nil
	})
	if err != nil || res.UIDs.IsEmpty() {
		return res, err
	}
	res.ModSeq = modseq
	if err := bumpMailbox(w, id, mb.uidnext, modseq, c); err != nil {
		return nil, err
	}
	w.event(store.Event{Account: acct, Mailbox: id, Kind: store.EventMessages, ModSeq: modseq})
	return res, nil
}

// Expunge implements store.Store.
func (s *Store) Expunge(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, onlyDeleted bool) (*store.ExpungeResult, error) {
	var res *store.ExpungeResult
	err := s.write(ctx, func(w *wtx) (err error) {
		res, err = expungeTx(w, acct, id, uids, onlyDeleted)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expunge in mailbox %d: %w", id, err)
	}
	return res, nil
}

// copyTx copies (and with move, then expunges) messages between mailboxes
// of one account.
func copyTx(w *wtx, acct store.AccountID, src store.MailboxID, uids mail.UIDSet, dst store.MailboxID, move bool) (*store.CopyResult, error) {
	smb, err := loadMailboxTx(w, acct, src)
	if err != nil {
		return nil, err
	}
	dmb, err := loadMailboxTx(w, acct, dst)
	if err != nil {
		return nil, err
	}
	if dmb.noselect {
		return nil, store.ErrNoSelect
	}
	var rows []msgRow
	if err := eachRow(w, src, uids, smb.uidnext, func(r *msgRow) error {
		rows = append(rows, *r)
		return nil
	}); err != nil {
		return nil, err
	}
	res := &store.CopyResult{UIDValidity: dmb.uidvalidity}
	if len(rows) == 0 {
		return res, nil
	}
	if uint64(dmb.uidnext)+uint64(len(rows)) > uint64(mail.MaxUID) {
		return nil, errors.New("mailbox UID space exhausted")
	}
	// A copy into the source mailbox itself sees the source's new MODSEQ.
	modseq := dmb.highestModSeq + 1
	now := time.Now().Unix()
	uid := dmb.uidnext
	var c counters
	for _, r := range rows {
		if _, err := w.ExecContext(w.ctx, `INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, internal_tz,
			save_date, size, blob_id, email_id, pop_uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
			dst, uid, modseq, r.bits, r.keywords, r.date, r.tz, now, r.size, r.blobID, r.emailID); err != nil {
			return nil, err
		}
		c.add(r.bits, r.size, 1)
		res.Source = append(res.Source, r.uid)
		res.Dest = append(res.Dest, uid)
		uid++
	}
	if err := bumpMailbox(w, dst, uid, modseq, c); err != nil {
		return nil, err
	}
	res.DestModSeq = modseq
	w.event(store.Event{Account: acct, Mailbox: dst, Kind: store.EventMessages, ModSeq: modseq})
	if move {
		ex, err := expungeTx(w, acct, src, mail.NewUIDSet(res.Source...), false)
		if err != nil {
			return nil, err
		}
		res.ExpungeModSeq = ex.ModSeq
	}
	return res, nil
}

// Copy implements store.Store.
func (s *Store) Copy(ctx context.Context, acct store.AccountID, src store.MailboxID, uids mail.UIDSet, dst store.MailboxID) (*store.CopyResult, error) {
	var res *store.CopyResult
	err := s.writeGrow(ctx, func(w *wtx) (err error) {
		if res, err = copyTx(w, acct, src, uids, dst, false); err == nil && len(res.Dest) > 0 {
			err = s.checkQuota(w, acct)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("copy from mailbox %d to %d: %w", src, dst, err)
	}
	return res, nil
}

// Move implements store.Store.
func (s *Store) Move(ctx context.Context, acct store.AccountID, src store.MailboxID, uids mail.UIDSet, dst store.MailboxID) (*store.CopyResult, error) {
	var res *store.CopyResult
	err := s.write(ctx, func(w *wtx) (err error) {
		res, err = copyTx(w, acct, src, uids, dst, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("move from mailbox %d to %d: %w", src, dst, err)
	}
	return res, nil
}
