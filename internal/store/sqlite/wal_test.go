package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWALStaysBounded is item 4 of issue 11: under sustained writes, with
// readers that always keep a read transaction open somewhere, the
// write-ahead log grew without bound (909 MB next to a 5 MB database):
// PASSIVE checkpoints cannot finish while readers hold old snapshots, and
// the log is only rewound when one finishes. The WAL must stay under the
// larger of 64 MiB and twice the database.
//
// The writes replace the same metadata entries over and over, so the
// database stays small while every commit appends its pages to the WAL.
// The test is bounded by the amount written, not by time; the deadline
// only catches a hang.
func TestWALStaysBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}

	const (
		writers   = 4
		valueSize = 48 << 10
		goal      = 160 << 20 // bytes of values written in all: 2.5 times the floor
		floor     = 64 << 20
	)
	var written atomic.Int64
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	deadline := time.AfterFunc(5*time.Minute, halt)
	defer deadline.Stop()
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+8)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopped(); i++ {
				v := []byte(strings.Repeat(fmt.Sprintf("%d-%d.", w, i), valueSize)[:valueSize])
				if err := s.SetMetadata(ctx, a.ID, 0, map[string][]byte{fmt.Sprintf("/private/w%d", w): v}, 0, 0); err != nil {
					errs <- err
					halt()
					return
				}
				if written.Add(valueSize) >= goal {
					halt()
				}
			}
		}()
	}
	// Readers, staggered so that a read transaction is open at almost
	// every moment, each holding its snapshot for a while as a slow
	// FETCH or SEARCH does.
	const readers = 4
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(r) * 5 * time.Millisecond)
			for !stopped() {
				err := s.readTx(ctx, func(tx *sql.Tx) error {
					var n int
					if err := s.txQueryRow(ctx, tx, `SELECT count(*) FROM metadata`).Scan(&n); err != nil {
						return err
					}
					time.Sleep(20 * time.Millisecond)
					return nil
				})
				if err != nil {
					errs <- err
					halt()
					return
				}
			}
		}()
	}
	var worst, worstDB int64
	for !stopped() {
		wal, db := s.WALSize(), s.DatabaseSize()
		if wal > max(floor, 2*db) {
			halt()
			wg.Wait()
			t.Fatalf("WAL %d MiB next to a %d MiB database after %d MiB written", wal>>20, db>>20, written.Load()>>20)
		}
		if wal > worst {
			worst, worstDB = wal, db
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if written.Load() < goal {
		t.Fatalf("only %d MiB written before the deadline", written.Load()>>20)
	}
	t.Logf("%d MiB written; largest WAL %.1f MiB next to a %.1f MiB database", written.Load()>>20,
		float64(worst)/(1<<20), float64(worstDB)/(1<<20))
}
