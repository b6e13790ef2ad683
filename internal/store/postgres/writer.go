package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// wtx is what a write request sees: the batch's transaction (inside the
// request's own savepoint) and the events to publish if it commits.
type wtx struct {
	*sql.Tx
	ctx    context.Context
	events []store.Event
	after  []func()
	origin uint64
}

// afterCommit runs fn once the request's changes are committed.
func (w *wtx) afterCommit(fn func()) { w.after = append(w.after, fn) }

// savepoint runs fn in a nested savepoint: if fn fails, its changes, events
// and after-commit functions are undone and the error returned, while the
// rest of the request goes on.
func (w *wtx) savepoint(fn func() error) error {
	nev, naf := len(w.events), len(w.after)
	if _, err := w.ExecContext(w.ctx, "SAVEPOINT nested"); err != nil {
		return err
	}
	ferr := fn()
	if ferr != nil {
		w.events, w.after = w.events[:nev], w.after[:naf]
		if _, err := w.ExecContext(w.ctx, "ROLLBACK TO nested"); err != nil {
			return err
		}
	}
	if _, err := w.ExecContext(w.ctx, "RELEASE nested"); err != nil {
		return err
	}
	return ferr
}

// event queues an event for publication after commit.
func (w *wtx) event(ev store.Event) {
	ev.Origin = w.origin
	w.events = append(w.events, ev)
}

type writeReq struct {
	ctx    context.Context
	fn     func(w *wtx) error
	err    error
	events []store.Event
	after  []func()
	done   chan struct{}
	// ran, when not nil, is closed as soon as fn has run in the batch,
	// with fn's own error in ranErr (see writeUndurable).
	ran    chan struct{}
	ranErr error
}

// write runs fn in the writer goroutine and returns once its changes are
// durable (or failed). fn must only touch the database through w, keep no
// state outside it that a rollback would make stale, and not block.
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case s.writeC <- req:
	case <-s.closing:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the request may commit; wait for the outcome even if ctx
	// ends, so a caller never reports failure for a write that happened.
	<-req.done
	return req.err
}

// writeUndurable runs fn in the writer goroutine like write, but returns
// as soon as fn has run in its batch, without waiting for the commit: the
// change is visible to later writes at once and becomes durable with the
// batch, or is lost if the batch fails (a failed commit or fsync, a crash)
// although the caller was told it succeeded. Only for state whose loss
// does no harm, such as which session saw a message first (\Recent).
func (s *Store) writeUndurable(ctx context.Context, fn func(w *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{}), ran: make(chan struct{})}
	select {
	case s.writeC <- req:
	case <-s.closing:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.ran:
		return req.ranErr
	case <-req.done:
		// The batch failed before the request ran.
		return req.err
	}
}

// writer is the single writer goroutine (see the package doc).
func (s *Store) writer() {
	defer s.wg.Done()
	batch := make([]*writeReq, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case req := <-s.writeC:
			batch = append(batch, req)
		case <-s.closing:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case req := <-s.writeC:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		s.runBatch(batch)
	}
}

func (s *Store) runBatch(batch []*writeReq) {
	start := time.Now()
	bg := context.Background()
	tx, err := s.wdb.BeginTx(bg, nil)
	if err != nil {
		s.finish(batch, fmt.Errorf("begin transaction: %w", mapErr(err)))
		return
	}
	ok := 0
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.err = err
			continue
		}
		if err := s.execTx(tx, "SAVEPOINT req"); err != nil {
			req.err = fmt.Errorf("savepoint: %w", mapErr(err))
			continue
		}
		// The request's own context must not interrupt the shared
		// connection mid-batch: run it without cancellation.
		w := &wtx{Tx: tx, ctx: context.WithoutCancel(req.ctx), origin: store.Origin(req.ctx)}
		if err := req.fn(w); err != nil {
			req.err = mapErr(err)
			req.ranErr = req.err
			if rerr := s.execTx(tx, "ROLLBACK TO req"); rerr != nil {
				// The transaction is unusable: fail the whole batch.
				tx.Rollback()
				s.finish(batch, fmt.Errorf("rollback to savepoint: %w", rerr))
				return
			}
		} else {
			req.events, req.after = w.events, w.after
			ok++
		}
		if req.ran != nil {
			// Answered now that it has run (writeUndurable).
			close(req.ran)
		}
		if err := s.execTx(tx, "RELEASE req"); err != nil {
			tx.Rollback()
			s.finish(batch, fmt.Errorf("release savepoint: %w", mapErr(err)))
			return
		}
	}
	err = tx.Commit()
	if s.onCommit != nil {
		s.onCommit(time.Since(start), len(batch), err)
	}
	if err != nil {
		// A failed commit (including a failed fsync) fails every request of
		// the batch; nothing is retried as if it had worked.
		s.log.Error("store commit failed", "err", err, "batch", len(batch))
		s.finish(batch, fmt.Errorf("commit: %w", mapErr(err)))
		return
	}
	for _, req := range batch {
		if req.err == nil {
			for _, fn := range req.after {
				fn()
			}
			s.hub.Publish(req.events...)
		}
		close(req.done)
	}
}

// execTx runs one of the writer's own statements (savepoints) in the
// batch's transaction.
func (s *Store) execTx(tx *sql.Tx, q string) error {
	_, err := tx.ExecContext(context.Background(), q)
	return err
}

// finish fails every request of the batch that has not failed already.
func (s *Store) finish(batch []*writeReq, err error) {
	for _, req := range batch {
		if req.err == nil {
			req.err = err
		}
		req.events, req.after = nil, nil
		close(req.done)
	}
}

// writeGrow is write for a change that adds data. The SQLite backend
// keeps a disk reserve for writes that do not; PostgreSQL manages its own
// space, so both are the same here.
func (s *Store) writeGrow(ctx context.Context, fn func(w *wtx) error) error {
	return s.write(ctx, fn)
}
