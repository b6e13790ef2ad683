package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Snapshots for backups (store.Snapshotter): one read-only REPEATABLE
// READ transaction on a connection of its own, held until Close, sees the
// database as of its start while writes go on. Its file bodies are
// immutable and stay in the blob store, protected from this Store's sweep
// until the snapshot is closed. A snapshot's methods run one at a time
// (they share the transaction's connection); OpenBody may be called at any
// time, as it takes its own short transaction on the exported snapshot.

var _ store.Snapshotter = (*Store)(nil)

// Snapshot implements store.Snapshotter.
func (s *Store) Snapshot(ctx context.Context) (store.Snapshot, error) {
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	sn := &snapshot{s: s, conn: conn, tx: tx, db: snapDB{tx}, at: time.Now()}
	if err := tx.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&sn.id); err != nil {
		sn.Close()
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	// Keep the snapshot's file bodies from the sweep (see Sweep: a staged
	// id's file is not deleted).
	rows, err := sn.db.QueryContext(ctx, `SELECT hash FROM blobs WHERE data IS NULL`)
	if err != nil {
		sn.Close()
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			sn.Close()
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		sn.held = append(sn.held, h)
		s.registerStaged(h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		sn.Close()
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return sn, nil
}

// snapDB runs a snapshot's queries, written with "?" placeholders, in
// its transaction.
type snapDB struct{ tx *sql.Tx }

func (d snapDB) QueryContext(ctx context.Context, q string, a ...any) (*sql.Rows, error) {
	return d.tx.QueryContext(ctx, rebind(q), args(a)...)
}

func (d snapDB) QueryRowContext(ctx context.Context, q string, a ...any) *sql.Row {
	return d.tx.QueryRowContext(ctx, rebind(q), args(a)...)
}

// snapshot is a store.Snapshot on one read transaction.
type snapshot struct {
	s    *Store
	conn *sql.Conn
	tx   *sql.Tx
	db   snapDB
	id   string // the exported snapshot (pg_export_snapshot)
	at   time.Time
	held []string // file bodies registered as staged until Close
}

var _ store.Snapshot = (*snapshot)(nil)

func (sn *snapshot) Close() error {
	if sn.tx == nil {
		return nil
	}
	sn.tx.Rollback()
	err := sn.conn.Close()
	sn.tx = nil
	for _, h := range sn.held {
		sn.s.unregisterStaged(h)
	}
	sn.held = nil
	return err
}

func (sn *snapshot) Accounts(ctx context.Context) ([]store.AccountRecord, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT a.id, a.name, a.password_hash, a.settings, a.created, a.quota_bytes, a.quota_messages,
		coalesce((SELECT sc.scram FROM account_scram sc WHERE sc.account_id = a.id AND sc.password_hash = a.password_hash), '')
		FROM accounts a ORDER BY a.name_key`)
	if err != nil {
		return nil, fmt.Errorf("snapshot accounts: %w", err)
	}
	defer rows.Close()
	var out []store.AccountRecord
	for rows.Next() {
		var r store.AccountRecord
		var settings string
		var created int64
		var qb, qm sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Name, &r.PasswordHash, &settings, &created, &qb, &qm, &r.SCRAM); err != nil {
			return nil, fmt.Errorf("snapshot accounts: %w", err)
		}
		a, err := scanAccount(rowOf(func(dest ...any) error {
			*dest[0].(*store.AccountID), *dest[1].(*string), *dest[2].(*string) = r.ID, r.Name, r.PasswordHash
			*dest[3].(*string), *dest[4].(*int64) = settings, created
			return nil
		}))
		if err != nil {
			return nil, fmt.Errorf("snapshot accounts: %w", err)
		}
		r.Account = *a
		r.Quota = store.Quota{Bytes: ownQuota(qb), Messages: ownQuota(qm)}
		out = append(out, r)
	}
	return out, rows.Err()
}

// rowOf lets a scan function read values already read.
type rowOf func(dest ...any) error

func (r rowOf) Scan(dest ...any) error { return r(dest...) }

func (sn *snapshot) Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account_id = ? ORDER BY m.name`, acct)
	if err != nil {
		return nil, fmt.Errorf("snapshot mailboxes: %w", err)
	}
	defer rows.Close()
	var out []store.Mailbox
	for rows.Next() {
		mb, err := scanMailbox(rows)
		if err != nil {
			return nil, fmt.Errorf("snapshot mailboxes: %w", err)
		}
		out = append(out, *mb)
	}
	return out, rows.Err()
}

func (sn *snapshot) Subscriptions(ctx context.Context, acct store.AccountID) ([]string, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name`, acct)
	if err != nil {
		return nil, fmt.Errorf("snapshot subscriptions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("snapshot subscriptions: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func (sn *snapshot) Devices(ctx context.Context, acct store.AccountID) ([]store.Device, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? ORDER BY name`, acct)
	if err != nil {
		return nil, fmt.Errorf("snapshot devices: %w", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("snapshot devices: %w", err)
		}
		out = append(out, *d)
	}
	return out, rows.Err()
}

func (sn *snapshot) POP3Views(ctx context.Context, acct store.AccountID) ([]store.POP3View, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT device, mailbox_id, uidvalidity, hidden, created, last_used
		FROM pop3_views WHERE account_id = ? ORDER BY device, mailbox_id`, acct)
	if err != nil {
		return nil, fmt.Errorf("snapshot pop3 views: %w", err)
	}
	defer rows.Close()
	var out []store.POP3View
	for rows.Next() {
		v, err := scanPOP3View(rows)
		if err != nil {
			return nil, fmt.Errorf("snapshot pop3 views: %w", err)
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

func (sn *snapshot) Metadata(ctx context.Context, acct store.AccountID) ([]store.MetadataEntry, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT mailbox_id, name, value FROM metadata WHERE account_id = ? ORDER BY mailbox_id, name`, acct)
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata: %w", err)
	}
	defer rows.Close()
	var out []store.MetadataEntry
	for rows.Next() {
		var e store.MetadataEntry
		if err := rows.Scan(&e.Mailbox, &e.Name, &e.Value); err != nil {
			return nil, fmt.Errorf("snapshot metadata: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (sn *snapshot) AccessKeys(ctx context.Context, acct store.AccountID) ([]store.AccessKey, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT mailbox_id, key FROM access_keys WHERE account_id = ? ORDER BY mailbox_id`, acct)
	if err != nil {
		return nil, fmt.Errorf("snapshot access keys: %w", err)
	}
	defer rows.Close()
	var out []store.AccessKey
	for rows.Next() {
		var k store.AccessKey
		if err := rows.Scan(&k.Mailbox, &k.Key); err != nil {
			return nil, fmt.Errorf("snapshot access keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// snapshotChunk is how many rows a snapshot reads per query, so that the
// caller never holds rows open while it copies bodies.
const snapshotChunk = 1000

func (sn *snapshot) Messages(ctx context.Context, acct store.AccountID, mailbox store.MailboxID) func(yield func(*store.SnapshotMessage, error) bool) {
	return func(yield func(*store.SnapshotMessage, error) bool) {
		after := mail.UID(0)
		for {
			var batch []*store.SnapshotMessage
			rows, err := sn.db.QueryContext(ctx, `SELECT `+messageCols+`, b.hash FROM messages m JOIN blobs b ON b.id = m.blob_id
				WHERE m.mailbox_id = ? AND m.uid > ? AND EXISTS (SELECT 1 FROM mailboxes WHERE id = m.mailbox_id AND account_id = ?)
				ORDER BY m.uid LIMIT ?`, mailbox, after, acct, snapshotChunk)
			if err == nil {
				for rows.Next() {
					var m store.SnapshotMessage
					if err = sn.scanMessage(rows, &m.Message, &m.Hash); err != nil {
						break
					}
					batch = append(batch, &m)
				}
				rows.Close()
				if err == nil {
					err = rows.Err()
				}
			}
			if err != nil {
				yield(nil, fmt.Errorf("snapshot messages of mailbox %d: %w", mailbox, err))
				return
			}
			for _, m := range batch {
				if !yield(m, nil) {
					return
				}
			}
			if len(batch) < snapshotChunk {
				return
			}
			after = batch[len(batch)-1].UID
		}
	}
}

// scanMessage reads a row of messageCols and one more column into m.
func (sn *snapshot) scanMessage(rows *sql.Rows, m *store.Message, extra ...any) error {
	var bits uint8
	var kw string
	var date, saved, blobID int64
	var tz int
	dest := append([]any{&m.UID, &m.ModSeq, &bits, &kw, &date, &tz, &saved, &m.Size, &blobID, &m.EmailID, &m.POPUID}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	m.BlobID = strconv.FormatInt(blobID, 10)
	m.Flags = mail.FlagsFromBits(bits, parseKeywords(kw))
	m.InternalDate = sn.s.zones.at(date, tz)
	m.SaveDate = time.Unix(saved, 0)
	return nil
}

func (sn *snapshot) Expunged(ctx context.Context, acct store.AccountID) func(yield func(*store.ExpungedMessage, error) bool) {
	return func(yield func(*store.ExpungedMessage, error) bool) {
		type key struct {
			mb  store.MailboxID
			uid mail.UID
		}
		var after key
		for {
			var batch []*store.ExpungedMessage
			rows, err := sn.db.QueryContext(ctx, `SELECT e.uid, e.modseq, e.flags, e.keywords, e.internal_date, e.internal_tz, e.expunged_at,
				e.size, e.blob_id, e.email_id, '', b.hash, e.mailbox_id, e.mailbox_name, e.expunged_at
				FROM expunged e JOIN blobs b ON b.id = e.blob_id
				WHERE e.account_id = ? AND (e.mailbox_id > ? OR e.mailbox_id = ? AND e.uid > ?)
				ORDER BY e.mailbox_id, e.uid LIMIT ?`, acct, after.mb, after.mb, after.uid, snapshotChunk)
			if err == nil {
				for rows.Next() {
					var m store.ExpungedMessage
					var at int64
					if err = sn.scanMessage(rows, &m.Message, &m.Hash, &m.Mailbox, &m.MailboxName, &at); err != nil {
						break
					}
					m.Expunged = time.Unix(at, 0)
					m.SaveDate = time.Time{}
					batch = append(batch, &m)
				}
				rows.Close()
				if err == nil {
					err = rows.Err()
				}
			}
			if err != nil {
				yield(nil, fmt.Errorf("snapshot expunged messages: %w", err))
				return
			}
			for _, m := range batch {
				if !yield(m, nil) {
					return
				}
			}
			if len(batch) < snapshotChunk {
				return
			}
			last := batch[len(batch)-1]
			after = key{last.Mailbox, last.UID}
		}
	}
}

func (sn *snapshot) Aliases(ctx context.Context) ([]store.Alias, error) {
	rows, err := sn.db.QueryContext(ctx, aliasQuery+` ORDER BY a.address_key, ac.name_key`)
	if err != nil {
		return nil, fmt.Errorf("snapshot aliases: %w", err)
	}
	out, err := scanAliases(rows)
	if err != nil {
		return nil, fmt.Errorf("snapshot aliases: %w", err)
	}
	return out, nil
}

func (sn *snapshot) SetupLinks(ctx context.Context) ([]store.SetupLink, error) {
	rows, err := sn.db.QueryContext(ctx, `SELECT `+setupLinkCols+` FROM setup_links
		WHERE sealed IS NOT NULL AND used = 0 AND expires > ? ORDER BY account_id, device`, sn.at.Unix())
	if err != nil {
		return nil, fmt.Errorf("snapshot setup links: %w", err)
	}
	defer rows.Close()
	var out []store.SetupLink
	for rows.Next() {
		l, err := scanSetupLink(rows)
		if err != nil {
			return nil, fmt.Errorf("snapshot setup links: %w", err)
		}
		out = append(out, *l)
	}
	return out, rows.Err()
}

func (sn *snapshot) OpenBody(ctx context.Context, blobID string) (store.Body, error) {
	id, err := strconv.ParseInt(blobID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("open body %q: %w", blobID, store.ErrNotFound)
	}
	var data []byte
	var size int64
	var hash string
	err = sn.bodyRow(ctx, id, &size, &data, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("open body %s: %w", blobID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open body %s: %w", blobID, err)
	}
	if data != nil || size == 0 {
		return memBody{bytes.NewReader(data), data}, nil
	}
	r, err := sn.s.blobs.Open(ctx, hash)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("open body %s: %w: its file %s is missing", blobID, store.ErrDamaged, hash)
	}
	if err != nil {
		return nil, fmt.Errorf("open body %s: %w", blobID, err)
	}
	if r.Size() != size {
		r.Close()
		return nil, fmt.Errorf("open body %s: %w: its file has %d bytes, the store recorded %d", blobID, store.ErrDamaged, r.Size(), size)
	}
	return r, nil
}

// bodyRow reads a body's row as of the snapshot, in a transaction of its
// own on the exported snapshot, so that it may run beside the snapshot's
// other reads.
func (sn *snapshot) bodyRow(ctx context.Context, id int64, size *int64, data *[]byte, hash *string) error {
	tx, err := sn.s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET TRANSACTION SNAPSHOT '`+sn.id+`'`); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx, `SELECT size, data, hash FROM blobs WHERE id = $1`, id).Scan(size, data, hash)
}
