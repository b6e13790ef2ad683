package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/postgres"
	"github.com/postfach/postfach/internal/store/postgres/pgtest"
	"github.com/postfach/postfach/internal/store/storetest"
)

func open(t *testing.T, opt postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStore runs the conformance suite on PostgreSQL.
func TestStore(t *testing.T) {
	pgtest.DSN(t)
	var mu sync.Mutex
	opts := map[store.Store]postgres.Options{}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			opt := pgtest.Options(t, t.TempDir(), postgres.Options{SweepInterval: -1})
			s := open(t, opt)
			mu.Lock()
			opts[s] = opt
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			mu.Lock()
			opt := opts[s]
			mu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			n := open(t, opt)
			mu.Lock()
			opts[n] = opt
			mu.Unlock()
			return n
		},
	})
}

// TestLock: a second Store on the same database and schema is refused
// while the first is open, as a second SQLite store on one data
// directory is, and opens once the first is closed.
func TestLock(t *testing.T) {
	opt := pgtest.Options(t, t.TempDir(), postgres.Options{SweepInterval: -1})
	s := open(t, opt)
	_, err := postgres.Open(context.Background(), opt)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, opt)
	s.Close()
}
