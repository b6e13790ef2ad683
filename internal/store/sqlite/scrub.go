package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/store"
)

// The scrub reads every stored body at a bounded rate and compares it
// with its SHA-256 (bodies are named by it), so that damage that keeps a
// file's size (a bad sector, a stray write) is found before a client is
// sent altered mail. A damaged body is recorded and logged (damage.go); one
// that verifies again is cleared. A pass walks the bodies in row order, a
// page at a time, holding no database connection while it reads or
// waits; the next pass starts ScrubInterval after one ends.

// firstScrubDelay is the longest wait before the first pass, so that a
// server restarted more often than ScrubInterval is still scrubbed.
const firstScrubDelay = 10 * time.Minute

// scrubPage is how many bodies a pass reads from the database at once.
const scrubPage = 100

// scrubChunk is the unit in which bodies are read and paced.
const scrubChunk = 64 << 10

// bodyRow is one row of the blobs table, as the scrub and Check see it.
type bodyRow struct {
	id     int64
	hash   string
	size   int64
	inline bool
	dots   []byte // the recorded dot lines (file bodies); nil when unknown
}

// pacer keeps reading at most rate bytes per second on average.
type pacer struct {
	rate  int64 // bytes per second; 0 means no pacing
	start time.Time
	done  int64
}

// wait accounts for n bytes about to be read and sleeps until reading
// them keeps the average rate.
func (p *pacer) wait(ctx context.Context, n int64) error {
	if p == nil || p.rate <= 0 {
		return ctx.Err()
	}
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.done += n
	due := p.start.Add(time.Duration(float64(p.done) / float64(p.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// verifyBody reads a body and reports what is wrong with it ("" when it
// matches its hash and size), and, for a file body, the encoding of its
// dot lines. err is for failures that say nothing about the body (the
// context ended, the database failed).
func (s *Store) verifyBody(ctx context.Context, b bodyRow, p *pacer) (reason string, dots []byte, err error) {
	h := sha256.New()
	var n int64
	if b.inline {
		var data []byte
		if err := s.queryRow(ctx, `SELECT data FROM blobs WHERE id = ?`, b.id).Scan(&data); err != nil {
			return "", nil, err
		}
		if err := p.wait(ctx, int64(len(data))); err != nil {
			return "", nil, err
		}
		h.Write(data)
		n = int64(len(data))
	} else {
		r, err := s.blobs.Open(ctx, b.hash)
		if errors.Is(err, blob.ErrNotFound) {
			return "its file is missing", nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		defer r.Close()
		if r.Size() != b.size {
			return fmt.Sprintf("its file has %d bytes, the store recorded %d", r.Size(), b.size), nil, nil
		}
		var ds store.DotScanner
		buf := make([]byte, scrubChunk)
		for n < b.size {
			if err := p.wait(ctx, int64(min(len(buf), int(b.size-n)))); err != nil {
				return "", nil, err
			}
			m, rerr := r.ReadAt(buf[:min(int64(len(buf)), b.size-n)], n)
			h.Write(buf[:m])
			ds.Write(buf[:m])
			n += int64(m)
			if errors.Is(rerr, blob.ErrUnavailable) {
				return "", nil, rerr // the storage failed, not the body
			}
			if rerr != nil && !(rerr == io.EOF && n == b.size) {
				return fmt.Sprintf("its file cannot be read: %v", rerr), nil, nil
			}
		}
		dots = ds.Encode()
	}
	s.ops.scrubbed.Add(n)
	switch {
	case n != b.size:
		return fmt.Sprintf("it has %d bytes, the store recorded %d", n, b.size), dots, nil
	case hex.EncodeToString(h.Sum(nil)) != b.hash:
		return "its content does not match its SHA-256 (" + b.hash + ")", dots, nil
	}
	return "", dots, nil
}

// bodyExists reports whether the blobs row is still there (the sweep may
// have removed it, and its file, since the page was read).
func (s *Store) bodyExists(ctx context.Context, id int64) (bool, error) {
	var n int
	err := s.queryRow(ctx, `SELECT count(*) FROM blobs WHERE id = ?`, id).Scan(&n)
	return n > 0, err
}

// bodyPage reads up to scrubPage rows of the blobs table after id.
func (s *Store) bodyPage(ctx context.Context, after int64) ([]bodyRow, error) {
	rows, err := s.query(ctx, `SELECT id, hash, size, data IS NOT NULL, dots FROM blobs WHERE id > ? ORDER BY id LIMIT ?`, after, scrubPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []bodyRow
	for rows.Next() {
		var b bodyRow
		if err := rows.Scan(&b.id, &b.hash, &b.size, &b.inline, &b.dots); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// checkBody verifies one body and records the outcome: damaged (logged
// once) or verified. It returns the reason it is damaged, "" if not.
func (s *Store) checkBody(ctx context.Context, b bodyRow, p *pacer) (reason string, dots []byte, err error) {
	reason, dots, err = s.verifyBody(ctx, b, p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, nil // removed by the sweep meanwhile
	}
	if err != nil {
		return "", nil, err
	}
	if reason == "" {
		s.clearDamaged(b.id, b.hash)
		return "", dots, nil
	}
	if ok, err := s.bodyExists(ctx, b.id); err != nil || !ok {
		return "", nil, err
	}
	s.markDamaged(ctx, b.id, b.hash, reason)
	return reason, dots, nil
}

// scrubPass verifies every body once, at most rate bytes per second.
func (s *Store) scrubPass(ctx context.Context, rate int64) (bodies, damaged int, err error) {
	p := &pacer{rate: rate}
	var after int64
	for {
		page, err := s.bodyPage(ctx, after)
		if err != nil {
			return bodies, damaged, fmt.Errorf("scrub: %w", err)
		}
		if len(page) == 0 {
			return bodies, damaged, s.forgetGoneDamaged(ctx)
		}
		for _, b := range page {
			after = b.id
			reason, _, err := s.checkBody(ctx, b, p)
			if err != nil {
				return bodies, damaged, fmt.Errorf("scrub body %d: %w", b.id, err)
			}
			bodies++
			if reason != "" {
				damaged++
			}
		}
	}
}

// forgetGoneDamaged drops the records of damaged bodies that no longer
// exist (their messages were deleted and swept), so the gauge of damaged
// bodies goes back down.
func (s *Store) forgetGoneDamaged(ctx context.Context) error {
	s.ops.mu.Lock()
	ids := make([]int64, 0, len(s.ops.damaged))
	for id := range s.ops.damaged {
		ids = append(ids, id)
	}
	s.ops.mu.Unlock()
	for _, id := range ids {
		ok, err := s.bodyExists(ctx, id)
		if err != nil {
			return fmt.Errorf("scrub: %w", err)
		}
		if !ok {
			s.ops.mu.Lock()
			delete(s.ops.damaged, id)
			s.ops.mu.Unlock()
		}
	}
	return nil
}

// scrubber runs scrub passes until the store closes.
func (s *Store) scrubber(rate int64, interval time.Duration) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait := min(interval, firstScrubDelay)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		start := time.Now()
		bodies, damaged, err := s.scrubPass(ctx, rate)
		if ctx.Err() != nil {
			return
		}
		s.ops.scrubPasses.Add(1)
		if err != nil {
			s.log.Error("scrub failed", "err", err)
		} else {
			s.log.Info("scrub pass done", "bodies", bodies, "damaged", damaged, "took", time.Since(start).Round(time.Second))
		}
		wait = interval
	}
}

// ScrubbedBytes counts the bytes of bodies the scrub and Check have read
// and compared with their hashes.
func (s *Store) ScrubbedBytes() int64 { return s.ops.scrubbed.Load() }

// ScrubPasses counts the scrub passes completed.
func (s *Store) ScrubPasses() int64 { return s.ops.scrubPasses.Load() }
