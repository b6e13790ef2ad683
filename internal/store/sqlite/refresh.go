package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// Summaries are computed once, when a body is stored, and kept in
// blobs.summary. When a newer postfach parses messages differently
// (message.SummaryVersion, the first byte of the encoding), the bodies
// stored before are parsed again in the background after Open, a batch
// at a time through the writer, so FETCH ENVELOPE, SEARCH and SORT treat
// old and new mail alike. meta.summary_version records that no older
// summary is left, so later starts skip the scan. A summary that changes
// raises no event and no MODSEQ: the message is the same, only what
// postfach makes of it is better.

// refreshBatch is how many bodies one refresh transaction parses again.
const refreshBatch = 64

// needsRefresh reports whether some stored summary is older than
// message.SummaryVersion. When none is, it records that in meta. It runs
// in Open before the writer starts.
func (s *Store) needsRefresh(ctx context.Context) (bool, error) {
	var v string
	err := s.wdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'summary_version'`).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("read summary version: %w", err)
	}
	if n, _ := strconv.Atoi(v); n >= message.SummaryVersion {
		return false, nil
	}
	var stale int
	if err := s.wdb.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM blobs WHERE substr(summary, 1, 1) < ? LIMIT 1)`,
		[]byte{message.SummaryVersion}).Scan(&stale); err != nil {
		return false, fmt.Errorf("look for old summaries: %w", err)
	}
	if stale > 0 {
		return true, nil
	}
	if err := setSummaryVersion(ctx, s.wdb); err != nil {
		return false, err
	}
	return false, nil
}

// setSummaryVersion records that every stored summary is current.
func setSummaryVersion(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('summary_version', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(message.SummaryVersion)); err != nil {
		return fmt.Errorf("record summary version: %w", err)
	}
	return nil
}

var _ store.SummaryRefresher = (*Store)(nil)

// SummariesCurrent implements store.SummaryRefresher: false while the
// summaries are being parsed again (and after a failure stopped that,
// until the next start).
func (s *Store) SummariesCurrent() bool { return !s.oldSummaries.Load() }

// refreshSummaries parses again the bodies whose summary is older than
// message.SummaryVersion, in id order, until none is left or the store
// closes. A body that cannot be read keeps its summary (and is logged);
// a failure stops the refresh until the next start.
func (s *Store) refreshSummaries() {
	defer s.wg.Done()
	ctx := context.Background()
	var after int64
	done, skipped := 0, 0
	for {
		select {
		case <-s.closing:
			return
		default:
		}
		ids, sums, last, n, err := s.refreshRead(ctx, after)
		if err != nil {
			s.log.Error("parsing stored messages again stopped", "err", err)
			return
		}
		if n == 0 {
			break
		}
		after = last
		skipped += n - len(ids)
		if len(ids) == 0 {
			continue
		}
		err = s.write(ctx, func(w *wtx) error {
			for i, id := range ids {
				if _, err := w.ExecContext(w.ctx, `UPDATE blobs SET summary = ? WHERE id = ? AND substr(summary, 1, 1) < ?`,
					sums[i], id, []byte{message.SummaryVersion}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				s.log.Error("parsing stored messages again stopped", "err", err)
			}
			return
		}
		done += len(ids)
	}
	// Every body that can be read has its new summary; the others keep
	// theirs until a later start tries again.
	s.oldSummaries.Store(false)
	if skipped == 0 {
		if err := s.write(ctx, func(w *wtx) error { return setSummaryVersion(w.ctx, w) }); err != nil {
			if !errors.Is(err, store.ErrClosed) {
				s.log.Error("parsing stored messages again stopped", "err", err)
			}
			return
		}
	}
	s.log.Info("parsed stored messages again for the new parse results", "bodies", done, "unreadable", skipped,
		"version", message.SummaryVersion)
}

// refreshRead reads the next batch of bodies with an old summary after
// id after and parses them. It returns the ids and new summaries of the
// bodies it could read, the last id it looked at and how many it looked
// at.
func (s *Store) refreshRead(ctx context.Context, after int64) (ids []int64, sums [][]byte, last int64, n int, err error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, hash, size, data FROM blobs WHERE id > ? AND substr(summary, 1, 1) < ?
		ORDER BY id LIMIT ?`, after, []byte{message.SummaryVersion}, refreshBatch)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("read old summaries: %w", err)
	}
	type body struct {
		id   int64
		hash string
		size int64
		data []byte
	}
	var bodies []body
	for rows.Next() {
		var b body
		if err := rows.Scan(&b.id, &b.hash, &b.size, &b.data); err != nil {
			rows.Close()
			return nil, nil, 0, 0, fmt.Errorf("read old summaries: %w", err)
		}
		bodies = append(bodies, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, 0, 0, fmt.Errorf("read old summaries: %w", err)
	}
	for _, b := range bodies {
		last = b.id
		enc, err := s.parseAgain(ctx, b.hash, b.size, b.data)
		if err != nil {
			s.log.Warn("cannot parse a stored message again", "blob", b.id, "err", err)
			continue
		}
		ids, sums = append(ids, b.id), append(sums, enc)
	}
	return ids, sums, last, len(bodies), nil
}

// parseAgain parses a stored body (inline data, or the file named hash)
// and returns its encoded summary.
func (s *Store) parseAgain(ctx context.Context, hash string, size int64, data []byte) ([]byte, error) {
	var r io.Reader = bytes.NewReader(data)
	if data == nil && size > 0 {
		f, err := s.blobs.Open(ctx, hash)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = io.NewSectionReader(f, 0, f.Size())
	}
	sum, err := message.Parse(r)
	if err != nil {
		return nil, err
	}
	return sum.MarshalBinary()
}
