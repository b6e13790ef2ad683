package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWALLongReaderDoesNotStallOthers: a long read transaction (postfach
// check, a large SEARCH, a slow FETCH) holds its snapshot, so the log
// cannot be rewound until it ends. While it is open and writes take the
// log past walLimit again and again, the writer tries the RESTART that
// rewinds it at most once (that try shuts the read gate and waits for
// readers); the other tries see, from a PASSIVE checkpoint, that the same
// snapshot still holds the log and leave the gate open, so short reads
// go on. Once the long read ends, the log is rewound. (Before, every try,
// one per walTruncateRetry, shut the gate and stalled readers and the
// writer for walTruncateWait: here, one per write.)
//
// Nothing is timed: the assertions are on order and counts.
func TestWALLongReaderDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: t.TempDir(), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.wal.retryEvery = -1 // try at every batch: what the rule must hold against
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	const valueSize = 256 << 10
	n := 0
	write := func() {
		t.Helper()
		n++
		v := []byte(strings.Repeat(fmt.Sprintf("%d.", n), valueSize)[:valueSize])
		if err := s.SetMetadata(ctx, a.ID, 0, map[string][]byte{"/private/v": v}, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	shortRead := func() {
		t.Helper()
		if err := s.readTx(ctx, func(tx *sql.Tx) error {
			var c int
			return s.txQueryRow(ctx, tx, `SELECT count(*) FROM metadata`).Scan(&c)
		}); err != nil {
			t.Fatal(err)
		}
	}

	// The long reader takes its snapshot and holds it until release.
	began, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.readTx(ctx, func(tx *sql.Tx) error {
			var c int
			if err := s.txQueryRow(ctx, tx, `SELECT count(*) FROM metadata`).Scan(&c); err != nil {
				close(began)
				return err
			}
			close(began)
			<-release
			return nil
		})
	}()
	<-began

	// Past the limit, then many more writes, each followed by a short
	// read: all of them complete while the long read is open.
	for s.WALSize() <= walLimit {
		write()
	}
	shutsAtLimit := s.wal.gateShuts.Load()
	var reads atomic.Int64
	for range 40 {
		write()
		shortRead()
		reads.Add(1)
	}
	select {
	case err := <-done:
		t.Fatalf("the long read ended early: %v", err)
	default:
	}
	if got := s.wal.gateShuts.Load() - shutsAtLimit; got > 1 {
		t.Errorf("the read gate was shut %d times while one long read held the log; want at most 1", got)
	}
	if s.wal.rewinds.Load() != 0 {
		t.Errorf("the log was rewound under a reader's snapshot")
	}
	if reads.Load() != 40 {
		t.Fatalf("%d short reads", reads.Load())
	}

	// The long read ends; the next writes rewind the log.
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Bounded by time, not by a count of writes: a rewind is tried about
	// once a second, and a loaded machine writes slowly or quickly.
	deadline := time.Now().Add(2 * time.Minute)
	for s.wal.rewinds.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the log was not rewound after the long read ended (WAL %d bytes)", s.WALSize())
		}
		write()
	}
	if w := s.WALSize(); w > walLimit+2*valueSize {
		t.Errorf("WAL %d bytes after the rewind, limit %d", w, walLimit)
	}
}
