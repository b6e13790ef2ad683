// Package postgres is postfach's scale-out store backend: metadata in
// PostgreSQL (through github.com/jackc/pgx/v5), bodies in a blob.Store;
// small bodies inline in the database, as in the SQLite backend.
//
// # Concurrency
//
// All writes of one Store go through one writer goroutine that owns one
// connection. It takes every request that is waiting, runs each in its own
// savepoint of one transaction, commits once (one WAL flush for the batch:
// group commit) and only then answers the callers and publishes their
// events. A request that fails rolls back its savepoint only. Reads use
// the other connections of the pool (up to Options.MaxConns in all) and
// never wait for the writer. The commit is acknowledged by the server only
// once its WAL record is flushed (synchronous_commit is forced on for the
// writer's connection).
//
// Large bodies are made durable by Stage, before the metadata commit that
// references them. A body nobody references is removed by the periodic
// sweep, which skips bodies staged but not yet committed.
//
// One Store per database (per schema): Open takes a session advisory lock
// on a connection of its own and fails with store.ErrLocked while another
// Store holds it, as the SQLite backend locks its data directory. Several
// frontends on one database need what is not built yet: change events
// that cross processes (they are published only to this Store's
// subscribers), caches that learn of other writers, and UID allocation
// that is safe with several writers.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/store"
)

// Options configure Open.
type Options struct {
	// DSN is the PostgreSQL connection string (a URL or key=value pairs,
	// as libpq takes them).
	DSN string
	// Schema, when set, is the PostgreSQL schema the tables live in;
	// empty uses the connection's search_path. A schema named by
	// either that is one lower-case name is created when missing.
	// Tests give each store its own schema in one database.
	Schema string
	// MaxConns bounds the connections to the database, the writer's
	// included; zero means DefaultMaxConns. At least 3: a snapshot
	// (backups) holds one for its whole life and reads bodies on another.
	MaxConns int
	// Blobs is the blob store for large bodies. Required.
	Blobs blob.Store
	// Logger receives operational events; nil discards them.
	Logger *slog.Logger
	// Retention is how long expunged messages stay recoverable (and their
	// tombstones answer QRESYNC exactly). Zero means DefaultRetention.
	Retention time.Duration
	// SweepInterval is how often expired mail and unreferenced bodies are
	// removed. Zero means one hour; negative disables the periodic sweep.
	SweepInterval time.Duration
	// OnCommit, when set, is called after every group commit with its
	// duration, the number of requests in it and the commit error.
	OnCommit func(d time.Duration, batch int, err error)

	// Safeguards (ops.go).
	OpsOptions
}

// DefaultMaxConns is the default bound of the connection pool.
const DefaultMaxConns = 10

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// DefaultRetention is how long expunged mail stays recoverable by default.
const DefaultRetention = 30 * 24 * time.Hour

// inlineMax is the largest body kept inside the database; larger ones go
// to the blob store.
const inlineMax = 128 << 10

// maxBatch bounds the requests of one group commit.
const maxBatch = 256

// Store is the PostgreSQL backend. It implements store.Store.
type Store struct {
	log       *slog.Logger
	retention time.Duration
	onCommit  func(time.Duration, int, error)

	lock  *pgx.Conn // holds the store's advisory lock (see the package doc)
	wdb   *sql.DB   // the writer's single connection; only the writer goroutine uses it
	rdb   *sql.DB   // the pool for reads
	blobs blob.Store
	hub   *store.Hub
	zones zoneCache

	writeC   chan *writeReq
	closing  chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	isClosed bool // guarded by closeMu

	accounts accountCache // Account's cache (accounts.go)
	ops      opsState     // the safeguards of ops.go

	stagedMu sync.Mutex
	staged   map[string]int // blob ids staged and not yet discarded; guarded by stagedMu
}

var _ store.Store = (*Store)(nil)

// Open connects to the database, migrates its schema and starts the
// writer.
func Open(ctx context.Context, opt Options) (*Store, error) {
	if opt.DSN == "" {
		return nil, errors.New("postgres store: no dsn")
	}
	if opt.Blobs == nil {
		return nil, errors.New("postgres store: no blob store")
	}
	maxConns := opt.MaxConns
	if maxConns == 0 {
		maxConns = DefaultMaxConns
	}
	if maxConns < 3 {
		return nil, fmt.Errorf("postgres store: max_conns %d: need at least 3 (the writer, a backup's snapshot and a reader)", maxConns)
	}
	s := &Store{
		log:       opt.Logger,
		retention: opt.Retention,
		onCommit:  opt.OnCommit,
		blobs:     opt.Blobs,
		hub:       store.NewHub(),
		writeC:    make(chan *writeReq),
		closing:   make(chan struct{}),
		staged:    map[string]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.retention == 0 {
		s.retention = DefaultRetention
	}
	s.ops.maxMailboxes = opt.MaxMailboxes
	s.ops.quota = opt.Quota
	cfg, err := pgx.ParseConfig(opt.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres store: parse dsn: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	// Durability: a commit is acknowledged only once it is flushed,
	// whatever the server's default (DESIGN.md §3, invariant 3).
	cfg.RuntimeParams["synchronous_commit"] = "on"
	cfg.RuntimeParams["timezone"] = "UTC"
	if opt.Schema != "" {
		cfg.RuntimeParams["search_path"] = opt.Schema
	}
	// The schema the tables go in (search_path, a single name) is
	// created when missing.
	if sp := cfg.RuntimeParams["search_path"]; validSchemaName(sp) {
		if err := createSchema(ctx, cfg, sp); err != nil {
			return nil, err
		}
	}
	if s.lock, err = lockStore(ctx, cfg); err != nil {
		return nil, err
	}
	s.wdb = stdlib.OpenDB(*cfg)
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	s.rdb = stdlib.OpenDB(*cfg)
	s.rdb.SetMaxOpenConns(maxConns - 1)
	s.rdb.SetMaxIdleConns(maxConns - 1)
	s.rdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := migrate(ctx, s.wdb); err != nil {
		s.wdb.Close()
		s.rdb.Close()
		s.lock.Close(context.Background())
		return nil, err
	}
	s.wg.Add(1)
	go s.writer()
	s.startOps(opt.OpsOptions)
	if opt.SweepInterval >= 0 {
		every := opt.SweepInterval
		if every == 0 {
			every = time.Hour
		}
		s.wg.Add(1)
		go s.sweeper(every)
	}
	return s, nil
}

// lockStore connects and takes the store's advisory lock: one per
// schema of the database (store.ErrLocked when another process has it).
func lockStore(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: connect: %w", err)
	}
	var ok bool
	var schema string
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('postfach:' || current_schema())), current_schema()`).Scan(&ok, &schema); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("postgres store: lock: %w", err)
	}
	if !ok {
		conn.Close(ctx)
		return nil, fmt.Errorf("postgres database %s, schema %s: %w", cfg.Database, schema, store.ErrLocked)
	}
	return conn, nil
}

// validSchemaName reports whether a search_path is one plain name, a
// schema for the store's tables to create when missing.
func validSchemaName(s string) bool {
	if s == "" || len(s) > 63 || s == "public" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// createSchema makes the schema the store's tables live in.
func createSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres store: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres store: create schema %q: %w", schema, err)
	}
	return nil
}

// DropSchema removes a schema and everything in it; for tests.
func DropSchema(ctx context.Context, dsn, schema string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	return err
}

// Close implements store.Store: waiting writes finish, then the
// connections are closed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.isClosed {
		s.closeMu.Unlock()
		return nil
	}
	s.isClosed = true
	close(s.closing)
	s.closeMu.Unlock()
	s.wg.Wait()
	err := errors.Join(s.rdb.Close(), s.wdb.Close())
	// The lock is released here, before the session closes: closing it
	// alone releases the lock only once the server has processed the
	// termination, after Close returns, and a store opened at once (a
	// restart in the same process) would find it still taken.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, uerr := s.lock.Exec(ctx, `SELECT pg_advisory_unlock_all()`); uerr != nil {
		err = errors.Join(err, fmt.Errorf("postgres store: unlock: %w", uerr))
	}
	return errors.Join(err, s.lock.Close(ctx))
}

// Subscribe implements store.Store.
func (s *Store) Subscribe(acct store.AccountID) store.Subscription {
	return s.hub.Subscribe(acct)
}

// mapErr turns low-level storage errors into the store's sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return diskFullError{err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" { // disk_full
		return diskFullError{err}
	}
	return err
}
