package sqlite

import (
	"context"
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
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
// (SQLite's busy handler), with new reads held at the read gate and the
// writer waiting too, so it stays short. A checkpoint that runs out of it
// is retried after walTruncateRetry, and only once the readers it waited
// for are gone (walState).
const (
	walTruncateWait  = 500 * time.Millisecond
	walTruncateRetry = time.Second
)

// walState is what the writer keeps between rewinds of the log.
//
// A long read (postfach check, a large SEARCH, a slow FETCH of a big
// mailbox) holds its snapshot, and with it the frames of the log after
// the snapshot, for as long as it runs: no checkpoint can copy them, and
// no RESTART can rewind the log before it ends. Trying anyway shuts the
// read gate and stalls the writer for walTruncateWait at each try, so a
// minute-long read would make every other reader wait half the time. So
// after a RESTART that readers held off, the next try first runs a
// PASSIVE checkpoint (which waits for nobody) and compares what is
// copied: while that has not moved in the same log, the reader that
// stopped the last try still holds its snapshot, and the try ends there,
// without shutting the gate, to be made again after walTruncateRetry.
// Meanwhile the log grows (nothing can rewind it while the snapshot is
// held) and PASSIVE checkpoints keep copying what they can.
//
// The writer's RESTART is not the only rewind: once the checkpointer has
// copied every frame and no reader is on the log, SQLite starts the log
// again by itself at the next write, and journal_size_limit trims the
// file back to walLimit. So what was pinned belongs to one log (walLog),
// and a rewound log starts unpinned.
type walState struct {
	// pinned: the last RESTART was held off by readers; pinnedLog is the
	// log it could not rewind (walLog) and pinnedAt the number of its
	// frames checkpointed then.
	pinned    bool
	pinnedLog uint64
	pinnedAt  int64
	// retryEvery is walTruncateRetry; tests make it shorter.
	retryEvery time.Duration
	// gateShuts counts the times the read gate was shut, for tests.
	gateShuts atomic.Int64
}

// walLog identifies the log since its last rewind: the salts of the WAL
// header, which SQLite changes at every rewind (whoever makes it) and
// writes with the first commit after it. 0 when there is no header.
func (s *Store) walLog() uint64 {
	f, err := os.Open(s.path + "-wal")
	if err != nil {
		return 0
	}
	defer f.Close()
	// The header: magic, version, page size, checkpoint sequence, salt-1,
	// salt-2 (big-endian 32-bit words), then two checksums.
	var h [24]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(h[16:24])
}

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
// the log when it holds more than walLimit (see above), unless a reader
// still holds the snapshot that held off the last try (walState). The
// file is larger than walLimit only while the log is: journal_size_limit
// trims it to walLimit whenever the log is rewound.
func (s *Store) truncateWAL(ctx context.Context) {
	if s.WALSize() <= walLimit || time.Now().Before(s.walRetry) {
		return
	}
	// Until it has worked, wait before the next try.
	retry := s.wal.retryEvery
	if retry == 0 {
		retry = walTruncateRetry
	}
	s.walRetry = time.Now().Add(retry)
	// One checkpoint at a time: a PASSIVE one in progress would hold
	// SQLite's checkpoint lock that this one needs.
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		s.log.Warn("checkpoint failed", "mode", "restart", "err", err)
		return
	}
	defer conn.Close()
	var busy, frames, copied int64
	if s.wal.pinned && s.walLog() != s.wal.pinnedLog {
		// Rewound since (see walState): what held the old log back
		// says nothing about this one.
		s.wal.pinned = false
	}
	if s.wal.pinned {
		// A PASSIVE checkpoint never waits: it copies up to the oldest
		// snapshot in use.
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
			s.log.Warn("checkpoint failed", "mode", "passive", "err", err)
			return
		}
		if copied == s.wal.pinnedAt && copied < frames {
			// The snapshot that held off the last try is still
			// held: do not make the others wait for it.
			return
		}
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = `+itoa(walTruncateWait.Milliseconds())); err != nil {
		s.log.Warn("checkpoint failed", "mode", "restart", "err", err)
		return
	}
	defer conn.ExecContext(ctx, `PRAGMA busy_timeout = `+itoa(writerBusyTimeout.Milliseconds()))
	s.wal.gateShuts.Add(1)
	reopen := s.gate.shut()
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
	reopen()
	switch {
	case err != nil:
		s.log.Warn("checkpoint failed", "mode", "restart", "err", err)
	case busy != 0:
		// Readers kept old snapshots past walTruncateWait; try again
		// once they are gone.
		s.wal.pinned, s.wal.pinnedLog, s.wal.pinnedAt = true, s.walLog(), copied
		s.log.Debug("checkpoint could not empty the log: readers busy", "wal_bytes", s.WALSize())
	default:
		s.wal.pinned = false
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
