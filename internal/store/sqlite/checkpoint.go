package sqlite

import (
	"context"
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

// checkpointEvery is the pause between checkpoints while writes happen.
const checkpointEvery = 250 * time.Millisecond

// wrote tells the checkpointer that a commit happened (never blocks).
func (s *Store) wrote() {
	select {
	case s.wroteC <- struct{}{}:
	default:
	}
}

func (s *Store) checkpointer() {
	defer s.wg.Done()
	for {
		select {
		case <-s.closing:
			return
		case <-s.wroteC:
		}
		if _, err := s.cdb.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			s.log.Warn("checkpoint failed", "err", err)
		}
		select {
		case <-s.closing:
			return
		case <-time.After(checkpointEvery):
		}
	}
}
