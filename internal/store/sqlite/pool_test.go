package sqlite_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/store/storetest"
)

// poolTimeout bounds the reads of the pool tests: a read that waits this
// long for a connection of the pool is deadlocked, not slow (each read
// below takes well under a millisecond on its own).
const poolTimeout = 30 * time.Second

// TestConcurrentFirstReads is the freeze of issue 11, item 1: right after a
// start, with no statement prepared yet, more sessions than the read pool
// has connections SELECT at once. Each read transaction held a pool
// connection while it prepared its statement through the pool, which
// needed a second connection: with every connection held that way, they
// all waited for good.
func TestConcurrentFirstReads(t *testing.T) {
	t.Parallel()
	for _, conns := range []int{0, 1, 2} { // 0: the default pool
		t.Run(poolName(conns), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			s := open(t, dir)
			a, err := s.CreateAccount(ctx, "a@example.org", "x")
			if err != nil {
				t.Fatal(err)
			}
			inbox, err := s.Mailbox(ctx, a.ID, "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			appendBody(t, s, a.ID, inbox.ID, "Subject: one\r\n\r\nbody\r\n")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// A fresh start: nothing prepared on the read pool.
			s, err = sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1, ReadConns: conns})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			const sessions = 64
			rctx, cancel := context.WithTimeout(ctx, poolTimeout)
			defer cancel()
			start := make(chan struct{})
			errs := make(chan error, 2*sessions)
			var wg sync.WaitGroup
			for range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					uids, _, err := s.UIDs(rctx, a.ID, inbox.ID)
					if err == nil && uids.Len() != 1 {
						err = errors.New("want one UID")
					}
					errs <- err
					_, err = s.Changes(rctx, a.ID, inbox.ID, 0)
					errs <- err
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent first reads: %v (a deadlock of the read pool when the deadline passed)", err)
				}
			}
		})
	}
}

// TestConformanceTinyPool runs the conformance suite with a read pool of
// one connection, so that any read that waits for a second connection of
// the pool while it holds one deadlocks at once (and fails on the suite's
// deadlines) instead of one day in production.
func TestConformanceTinyPool(t *testing.T) {
	openTiny := func(t *testing.T, dir string) *sqlite.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, SweepInterval: -1, ReadConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store { return openTiny(t, t.TempDir()) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			dir := s.(*sqlite.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openTiny(t, dir)
		},
	})
}

func poolName(conns int) string {
	switch conns {
	case 0:
		return "default"
	case 1:
		return "one"
	}
	return "two"
}
