// Package teststore opens the store backend the test environment
// selects, for the protocol packages' own test servers (those that do not
// run the whole server through internal/testenv, which selects the same
// way): the embedded SQLite store by default, PostgreSQL when
// POSTFACH_TEST_STORE=postgres (in a schema of its own in the database of
// POSTFACH_TEST_PG_DSN, see pgtest).
package teststore

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/postgres"
	"github.com/postfach/postfach/internal/store/postgres/pgtest"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// Var names the environment variable that selects the backend.
const Var = "POSTFACH_TEST_STORE"

// Postgres is the value of Var that selects PostgreSQL.
const Postgres = "postgres"

// Store is what the tests use of a store: the contract, the devices,
// and the sweep of expired mail.
type Store interface {
	store.Store
	store.Credentials
	// Sweep removes what expired by now (retention).
	Sweep(ctx context.Context, now time.Time) error
}

var (
	_ Store = (*sqlite.Store)(nil)
	_ Store = (*postgres.Store)(nil)
)

// Options adjust Open.
type Options struct {
	// ReadConns is the SQLite read pool's size; tests use 1 (see
	// sqlite.Options.ReadConns).
	ReadConns int
	// Logger receives the store's events; nil discards them.
	Logger *slog.Logger
}

// Backend returns the backend the environment selects: "sqlite" or
// "postgres".
func Backend() string {
	if os.Getenv(Var) == Postgres {
		return Postgres
	}
	return "sqlite"
}

// Open opens an empty store of the selected backend with its files in
// dir, without the periodic sweep. The caller closes it.
func Open(t testing.TB, dir string, opt Options) Store {
	t.Helper()
	ctx := context.Background()
	if Backend() == Postgres {
		st, err := postgres.Open(ctx, pgtest.Options(t, dir, postgres.Options{SweepInterval: -1, Logger: opt.Logger}))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1, ReadConns: opt.ReadConns, Logger: opt.Logger})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
