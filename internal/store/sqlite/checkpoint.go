package sqlite

import (
	"context"
	"os"
	"sync"
	"time"
)

// Checkpoints. SQLite's automatic checkpoint runs inside the commit that
// crosses its threshold, on the writer's connection, so every thousandth
// page or so a delivery would wait for pages to be copied into the database
// file and fsynced. The writer's connection has it off
// (wal_autocheckpoint=0); instead this goroutine runs PASSIVE checkpoints
// on a connection of its own. A PASSIVE checkpoint never blocks the writer
// or readers (WAL allows a checkpoint concurrent with both), so that work
// moves off the writer's serial path onto another core.
//
// A PASSIVE checkpoint cannot copy the frames that a reader's snapshot
// still needs, and the log is rewound to its start only when a write
// begins with every frame copied and no reader on the log. Under
// sustained writes with a read transaction open at almost every moment
// neither happens, and the log grew without bound (issue 11: 909 MB next
// to a 5 MB database). So when the log holds more than walLimit, the
// writer, right after its batch, runs a RESTART checkpoint: it copies what
// is left, waits (at most walTruncateWait) for the readers of old
// snapshots to finish, and so makes the next batch write the log from its
// start. Only then does the next batch begin, so the checkpoint never has
// to fight the writer for its lock. RESTART rather than TRUNCATE: the
// next commits overwrite blocks the file already has instead of growing a
// file cut to nothing, and an fsync after an overwrite has no allocation
// to write (measured: about a third less per write and fsync here).
// New reads wait at the read gate meanwhile: SQLite lets a new reader
// share the lock of an older one, so readers that overlap without a gap
// would otherwise starve the checkpoint (seen in the test: four readers
// held it off for good). The writer's journal_size_limit trims the file
// to walLimit when the first commit after the rewind is written, so the
// file stays at walLimit while the log is smaller.

// checkpointEvery is the pause between checkpoints while writes happen.
const checkpointEvery = 250 * time.Millisecond

// walLimit is the size of the log past which the writer empties it.
const walLimit = 16 << 20

// walTruncateWait bounds how long a RESTART checkpoint waits for readers
// (SQLite's busy handler). Writes wait as long, so it stays short; a
// checkpoint that runs out of it is retried after walTruncateRetry.
const (
	walTruncateWait  = time.Second
	walTruncateRetry = time.Second
)

// wrote tells the checkpointer that a commit happened (never blocks).
func (s *Store) wrote() {
	select {
	case s.wroteC <- struct{}{}:
	default:
	}
}

// checkpointSoon is the pause instead of checkpointEvery while the log is
// large at a checkpoint (more than walLimit/4): writes come fast then, and
// what this checkpointer leaves uncopied when the log passes walLimit, the
// writer's RESTART checkpoint copies, on the writes' path.
const checkpointSoon = 20 * time.Millisecond

func (s *Store) checkpointer() {
	defer s.wg.Done()
	ctx := context.Background()
	pageSize := int64(4096)
	if err := s.cdb.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil || pageSize <= 0 {
		pageSize = 4096
	}
	for {
		select {
		case <-s.closing:
			return
		case <-s.wroteC:
		}
		var busy, frames, copied int64
		s.ckptMu.Lock()
		err := s.cdb.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
		s.ckptMu.Unlock()
		if err != nil {
			s.log.Warn("checkpoint failed", "err", err)
		}
		pause := checkpointEvery
		if err == nil && frames*pageSize > walLimit/4 {
			pause = checkpointSoon
		}
		select {
		case <-s.closing:
			return
		case <-time.After(pause):
		}
	}
}

// truncateWAL runs in the writer goroutine after each batch; it rewinds
// the log when it holds more than walLimit (see above). The file is
// larger than walLimit only while the log is: journal_size_limit trims it
// to walLimit whenever the log is rewound.
func (s *Store) truncateWAL(ctx context.Context) {
	if s.WALSize() <= walLimit || time.Now().Before(s.walRetry) {
		return
	}
	// Until it has worked, wait walTruncateRetry before the next try.
	s.walRetry = time.Now().Add(walTruncateRetry)
	// One checkpoint at a time: a PASSIVE one in progress would hold
	// SQLite's checkpoint lock that this one needs.
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	reopen := s.gate.shut()
	defer reopen()
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		s.log.Warn("checkpoint failed", "mode", "restart", "err", err)
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = `+itoa(walTruncateWait.Milliseconds())); err != nil {
		s.log.Warn("checkpoint failed", "mode", "restart", "err", err)
		return
	}
	defer conn.ExecContext(ctx, `PRAGMA busy_timeout = `+itoa(writerBusyTimeout.Milliseconds()))
	var busy, frames, copied int64
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
	switch {
	case err != nil:
		s.log.Warn("checkpoint failed", "mode", "restart", "err", err)
	case busy != 0:
		// Readers kept old snapshots past walTruncateWait; try again
		// after walTruncateRetry.
		s.log.Debug("checkpoint could not empty the log: readers busy", "wal_bytes", s.WALSize())
	default:
		s.walRetry = time.Time{}
	}
}

// WALSize returns the size in bytes of the database's write-ahead log
// file (0 when there is none).
func (s *Store) WALSize() int64 { return fileSize(s.path + "-wal") }

// DatabaseSize returns the size in bytes of the database file.
func (s *Store) DatabaseSize() int64 { return fileSize(s.path) }

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readGate holds new reads back while the writer empties the log. A read
// waits at it before it takes a connection of the pool, never while it
// holds one (see readerStmts), so the checkpoint's own wait for the reads
// in progress always ends.
type readGate struct {
	mu sync.Mutex
	ch chan struct{} // closed when the gate opens again; nil while open; guarded by mu
}

// wait returns once the gate is open, or with ctx's error.
func (g *readGate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shut closes the gate until the returned function is called.
func (g *readGate) shut() func() {
	ch := make(chan struct{})
	g.mu.Lock()
	g.ch = ch
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.ch = nil
		g.mu.Unlock()
		close(ch)
	}
}
