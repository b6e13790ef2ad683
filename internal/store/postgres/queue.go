package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/postfach/postfach/internal/store"
)

var _ store.Queue = (*Store)(nil)

// The outbound queue (store.Queue, issue 15) is a row in queue per message
// and a row in queue_rcpts per recipient (schema.go). The body is a blobs
// row like a message's; the sweep keeps it while an entry refers to it.
// Times are unix milliseconds, so that a due time a moment away is not
// rounded to now.

const queueCols = `id, account_id, sender, smtputf8, eightbit, blob_id, size, created, next_attempt, attempts, last_error, delay_notified`

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

type queueScanner interface{ Scan(dest ...any) error }

func scanQueueEntry(r queueScanner) (*store.QueueEntry, error) {
	var e store.QueueEntry
	var blob, created, next int64
	if err := r.Scan(&e.ID, &e.Account, &e.From, &e.SMTPUTF8, &e.EightBit, &blob, &e.Size, &created, &next,
		&e.Attempts, &e.LastError, &e.DelayNotified); err != nil {
		return nil, err
	}
	e.BlobID = strconv.FormatInt(blob, 10)
	e.Created, e.NextAttempt = fromMS(created), fromMS(next)
	return &e, nil
}

// queueRecipients fills the recipients of entries from rows of
// queue_rcpts ordered by queue_id, idx.
func queueRecipients(rows *sql.Rows, byID map[int64]*store.QueueEntry) error {
	defer rows.Close()
	for rows.Next() {
		var id, updated int64
		var r store.QueueRecipient
		if err := rows.Scan(&id, &r.Address, &r.State, &r.Status, &r.Diagnostic, &r.Remote, &r.DSNDone, &updated); err != nil {
			return err
		}
		r.Updated = fromMS(updated)
		if e := byID[id]; e != nil {
			e.Recipients = append(e.Recipients, r)
		}
	}
	return rows.Err()
}

const rcptQuery = `SELECT queue_id, address, state, status, diagnostic, remote, dsn_done, updated FROM queue_rcpts`

// Enqueue implements store.Queue.
func (s *Store) Enqueue(ctx context.Context, e *store.QueueEntry, body store.Staged) (int64, error) {
	b, err := s.asStaged(body)
	if err != nil {
		return 0, err
	}
	if len(e.Recipients) == 0 {
		return 0, errors.New("enqueue: no recipients")
	}
	created := e.Created
	if created.IsZero() {
		created = time.Now()
	}
	var id int64
	err = s.writeGrow(ctx, func(w *wtx) error {
		blobID, err := insertBlobTx(w, b, time.Now().Unix())
		if err != nil {
			return err
		}
		if id, err = insertID(w, `INSERT INTO queue (account_id, sender, smtputf8, eightbit, blob_id, size, created, next_attempt)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.Account, e.From, e.SMTPUTF8, e.EightBit, blobID, b.size, ms(created), ms(e.NextAttempt)); err != nil {
			return err
		}
		for i, r := range e.Recipients {
			if _, err := w.ExecContext(w.ctx, `INSERT INTO queue_rcpts (queue_id, idx, address, updated) VALUES (?, ?, ?, ?)`,
				id, i, r.Address, ms(created)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	return id, nil
}

// QueueEntry implements store.Queue.
func (s *Store) QueueEntry(ctx context.Context, id int64) (*store.QueueEntry, error) {
	e, err := scanQueueEntry(s.queryRow(ctx, `SELECT `+queueCols+` FROM queue WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("queue entry %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue entry %d: %w", id, err)
	}
	rows, err := s.query(ctx, rcptQuery+` WHERE queue_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("queue entry %d: %w", id, err)
	}
	if err := queueRecipients(rows, map[int64]*store.QueueEntry{id: e}); err != nil {
		return nil, fmt.Errorf("queue entry %d: %w", id, err)
	}
	return e, nil
}

// QueueEntries implements store.Queue.
func (s *Store) QueueEntries(ctx context.Context) ([]store.QueueEntry, error) {
	rows, err := s.query(ctx, `SELECT `+queueCols+` FROM queue ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	var list []*store.QueueEntry
	byID := map[int64]*store.QueueEntry{}
	for rows.Next() {
		e, err := scanQueueEntry(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list queue: %w", err)
		}
		list = append(list, e)
		byID[e.ID] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	rows, err = s.query(ctx, rcptQuery+` ORDER BY queue_id, idx`)
	if err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	if err := queueRecipients(rows, byID); err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	out := make([]store.QueueEntry, len(list))
	for i, e := range list {
		out[i] = *e
	}
	return out, nil
}

// ClaimQueue implements store.Queue.
func (s *Store) ClaimQueue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.QueueEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []store.QueueEntry
	err := s.write(ctx, func(w *wtx) error {
		out = out[:0]
		rows, err := w.QueryContext(w.ctx, `SELECT `+queueCols+` FROM queue WHERE next_attempt <= ? AND leased_until <= ?
			ORDER BY next_attempt, id LIMIT ?`, ms(now), ms(now), limit)
		if err != nil {
			return err
		}
		byID := map[int64]*store.QueueEntry{}
		var list []*store.QueueEntry
		for rows.Next() {
			e, err := scanQueueEntry(rows)
			if err != nil {
				rows.Close()
				return err
			}
			list = append(list, e)
			byID[e.ID] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range list {
			if _, err := w.ExecContext(w.ctx, `UPDATE queue SET leased_until = ? WHERE id = ?`, ms(now.Add(lease)), e.ID); err != nil {
				return err
			}
			rows, err := w.QueryContext(w.ctx, rcptQuery+` WHERE queue_id = ? ORDER BY idx`, e.ID)
			if err != nil {
				return err
			}
			if err := queueRecipients(rows, byID); err != nil {
				return err
			}
			out = append(out, *e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim queue: %w", err)
	}
	return out, nil
}

// UpdateQueueEntry implements store.Queue.
func (s *Store) UpdateQueueEntry(ctx context.Context, e *store.QueueEntry) error {
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.ExecContext(w.ctx, `UPDATE queue SET next_attempt = ?, attempts = ?, last_error = ?, delay_notified = ?,
			leased_until = 0 WHERE id = ?`, ms(e.NextAttempt), e.Attempts, e.LastError, e.DelayNotified, e.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		for i, r := range e.Recipients {
			if _, err := w.ExecContext(w.ctx, `UPDATE queue_rcpts SET state = ?, status = ?, diagnostic = ?, remote = ?,
				dsn_done = ?, updated = ? WHERE queue_id = ? AND idx = ?`,
				r.State, r.Status, r.Diagnostic, r.Remote, r.DSNDone, ms(r.Updated), e.ID, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update queue entry %d: %w", e.ID, err)
	}
	return nil
}

// RetryQueue implements store.Queue.
func (s *Store) RetryQueue(ctx context.Context, id int64, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(w *wtx) error {
		q, args := `UPDATE queue SET next_attempt = ?, leased_until = 0`, []any{ms(now)}
		if id != 0 {
			q, args = q+` WHERE id = ?`, append(args, id)
		}
		res, err := w.ExecContext(w.ctx, q, args...)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if id != 0 && n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("retry queue: %w", err)
	}
	return int(n), nil
}

// DeleteQueueEntry implements store.Queue.
func (s *Store) DeleteQueueEntry(ctx context.Context, id int64) error {
	err := s.write(ctx, func(w *wtx) error {
		if _, err := w.ExecContext(w.ctx, `DELETE FROM queue_rcpts WHERE queue_id = ?`, id); err != nil {
			return err
		}
		res, err := w.ExecContext(w.ctx, `DELETE FROM queue WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete queue entry %d: %w", id, err)
	}
	return nil
}

// ReleaseQueueLeases implements store.Queue.
func (s *Store) ReleaseQueueLeases(ctx context.Context) error {
	if err := s.write(ctx, func(w *wtx) error {
		_, err := w.ExecContext(w.ctx, `UPDATE queue SET leased_until = 0 WHERE leased_until != 0`)
		return err
	}); err != nil {
		return fmt.Errorf("release queue leases: %w", err)
	}
	return nil
}
