package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/postfach/postfach/internal/blob"
)

// blobGrace protects bodies that were just stored from the sweep.
const blobGrace = time.Hour

// startupSweep removes what an interrupted write left: temporary files
// (blob.NewFileStore already did) and body files without a row. It runs
// before the writer starts, when no Stage can be in flight.
func (s *Store) startupSweep(ctx context.Context) error {
	known := map[string]bool{}
	rows, err := s.wdb.QueryContext(ctx, `SELECT hash FROM blobs WHERE data IS NULL`)
	if err != nil {
		return fmt.Errorf("startup sweep: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("startup sweep: %w", err)
		}
		known[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("startup sweep: %w", err)
	}
	var orphans []string
	if err := s.blobs.Walk(ctx, func(id string) error {
		if !known[id] {
			orphans = append(orphans, id)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("startup sweep: %w", err)
	}
	for _, id := range orphans {
		if err := s.blobs.Delete(ctx, id); err != nil {
			return fmt.Errorf("startup sweep: %w", err)
		}
	}
	if len(orphans) > 0 {
		s.log.Info("removed unreferenced message bodies left by an interrupted write", "count", len(orphans))
	}
	return nil
}

func (s *Store) sweeper(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			if err := s.Sweep(context.Background(), time.Now()); err != nil {
				s.log.Error("sweep failed", "err", err)
			}
		}
	}
}

// Sweep removes expunged messages older than the retention window (raising
// each mailbox's tombstone floor), bodies no message or queue entry
// references any more,
// and the sealed passwords of expired setup links (ExpireSetupLinks).
func (s *Store) Sweep(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-s.retention).Unix()
	var expired int64
	err := s.write(ctx, func(w *wtx) error {
		if _, err := w.ExecContext(w.ctx, `UPDATE mailboxes SET vanished_floor = max(vanished_floor,
			(SELECT max(e.modseq) FROM expunged e WHERE e.mailbox_id = mailboxes.id AND e.expunged_at < ?))
			WHERE EXISTS (SELECT 1 FROM expunged e WHERE e.mailbox_id = mailboxes.id AND e.expunged_at < ?)`, cutoff, cutoff); err != nil {
			return err
		}
		res, err := w.ExecContext(w.ctx, `DELETE FROM expunged WHERE expunged_at < ?`, cutoff)
		if err != nil {
			return err
		}
		expired, _ = res.RowsAffected()
		// Setup links: their sealed passwords go when they expire.
		return expireSetupLinks(w, now)
	})
	if err != nil {
		return fmt.Errorf("sweep expired mail: %w", err)
	}
	var files []string
	var bodies int64
	err = s.write(ctx, func(w *wtx) error {
		files = files[:0]
		grace := now.Add(-blobGrace).Unix()
		orphan := `FROM blobs b WHERE b.created < ?
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)
			AND NOT EXISTS (SELECT 1 FROM expunged e WHERE e.blob_id = b.id)
			AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob_id = b.id)`
		rows, err := w.QueryContext(w.ctx, `SELECT b.hash `+orphan+` AND b.data IS NULL`, grace)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			files = append(files, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		res, err := w.ExecContext(w.ctx, `DELETE FROM blobs WHERE id IN (SELECT b.id `+orphan+`)`, grace)
		if err != nil {
			return err
		}
		bodies, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweep bodies: %w", err)
	}
	// The rows are gone; remove the files unless a Stage of the same
	// content is in flight (it re-created or will re-create the file and
	// will insert a new row).
	for _, id := range files {
		s.stagedMu.Lock()
		var err error
		if s.staged[id] == 0 {
			err = s.blobs.Delete(ctx, id)
		}
		s.stagedMu.Unlock()
		if err != nil {
			return fmt.Errorf("sweep bodies: %w", err)
		}
	}
	if expired > 0 || bodies > 0 {
		s.log.Info("swept expired mail", "expunged_messages", expired, "bodies", bodies)
	}
	// What interrupted writes left in a blob store that Walk does not
	// see (the s3 driver's unfinished uploads).
	if ts, ok := s.blobs.(blob.TempSweeper); ok {
		if err := ts.SweepTemp(ctx, now); err != nil {
			return fmt.Errorf("sweep bodies: %w", err)
		}
	}
	return nil
}
