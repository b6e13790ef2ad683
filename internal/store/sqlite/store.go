// Package sqlite is postfach's embedded store backend: metadata in SQLite
// (WAL, synchronous=FULL), small bodies inline in the database, large
// bodies as files in a blob.FileStore.
//
// # Concurrency
//
// All writes go through one writer goroutine that owns the only read-write
// connection. It takes every request that is waiting, runs each in its own
// savepoint of one transaction, commits once (one fsync for the batch: group
// commit) and only then answers the callers and publishes their events. A
// request that fails rolls back its savepoint only. Reads use a separate
// pool of read-only connections and never wait for the writer (WAL).
//
// A read never waits for a connection of the pool while it holds one: no
// query while a read transaction or open rows hold a connection, and no
// statement prepared through the pool from inside a transaction (see
// readerStmts). With the pool's connections all held by readers waiting
// for one more, nothing moves again. Tests run with a pool of one
// connection (Options.ReadConns), where any breach of the rule hangs at
// once.
//
// Large bodies are made durable by Stage, before the metadata commit that
// references them. A body file nobody references is removed by the sweep:
// at start-up (no writer can be active then) and periodically, skipping
// bodies that are staged but not yet committed.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/store"
)

// Options configure Open.
type Options struct {
	// Dir is the data directory; it holds postfach.db and blobs/. Created
	// with mode 0700 when missing.
	Dir string
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
	// Blobs overrides the blob store for large bodies (default: a
	// blob.FileStore in Dir/blobs).
	Blobs blob.Store

	// Safeguards (ops.go).
	OpsOptions
	// StartupCheck runs the cheap checks of the database before Open
	// migrates or serves it (the header, PRAGMA quick_check up to
	// QuickCheckMax bytes, a sample of every table beyond) and makes Open
	// fail with ErrDamaged when they find damage. The server sets it;
	// postfach check, which reports everything, does not.
	StartupCheck bool
	// QuickCheckMax is the largest database StartupCheck reads in full;
	// zero means DefaultQuickCheckMax, negative always samples.
	QuickCheckMax int64
	// ReadConns is the size of the pool of read-only connections; zero
	// means DefaultReadConns. Tests run with 1, so that a read waiting for
	// a second connection of the pool while it holds one (the freeze of
	// issue 11) hangs at once instead of under load.
	ReadConns int
}

// DefaultReadConns is the default size of the read pool.
const DefaultReadConns = 8

// writerBusyTimeout is how long the writer waits for a lock held by
// another connection (a checkpoint, or another process such as a backup)
// before a batch fails.
const writerBusyTimeout = 10 * time.Second

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// DefaultRetention is how long expunged mail stays recoverable by default.
const DefaultRetention = 30 * 24 * time.Hour

// inlineMax is the largest body kept inside the database. Small bodies
// inline cost no file fsync of their own: a whole group commit needs one
// fsync, which is what makes delivery fast (measured: one file fsync per
// message caps delivery near 5,000/s on this hardware, before any metadata
// commit).
const inlineMax = 128 << 10

// maxBatch bounds the requests of one group commit.
const maxBatch = 256

// Store is the SQLite backend. It implements store.Store.
type Store struct {
	dir       string
	path      string // the database file, DIR/postfach.db
	log       *slog.Logger
	retention time.Duration
	onCommit  func(time.Duration, int, error)

	// oldSummaries: stored summaries are being parsed again
	// (refresh.go); see store.SummaryRefresher.
	oldSummaries atomic.Bool

	wdb    *sql.DB // the writer's single connection; only the writer goroutine uses it
	cdb    *sql.DB // the checkpointer's connection (see checkpoint.go)
	wroteC chan struct{}
	rdb    *sql.DB // read-only pool
	wstmts *writerStmts
	rstmts *readerStmts
	blobs  blob.Store
	hub    *store.Hub
	zones  zoneCache
	lock   *os.File

	writeC   chan *writeReq
	closing  chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	isClosed bool // guarded by closeMu

	walRetry time.Time  // no TRUNCATE checkpoint before; owned by the writer goroutine
	gate     readGate   // shut while the writer empties the log (checkpoint.go)
	ckptMu   sync.Mutex // held by a checkpoint on cdb or wdb (checkpoint.go)
	// wal is what the writer knows of the log's rewinds (checkpoint.go);
	// owned by the writer goroutine, except the counter gateShuts.
	wal walState

	accounts accountCache // Account's cache (accounts.go)

	stagedMu sync.Mutex
	staged   map[string]int // blob ids staged and not yet discarded; guarded by stagedMu

	ops opsState // the safeguards of ops.go
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in opt.Dir.
func Open(ctx context.Context, opt Options) (*Store, error) {
	if opt.Dir == "" {
		return nil, errors.New("sqlite store: no directory")
	}
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(opt.Dir)
	if err != nil {
		return nil, err
	}
	if err := privateFiles(opt.Dir, opt.Logger); err != nil {
		lock.Close()
		return nil, err
	}
	removeSnapshots(opt.Dir) // left by a backup that did not finish (snapshot.go)
	s := &Store{
		dir:       opt.Dir,
		log:       opt.Logger,
		retention: opt.Retention,
		onCommit:  opt.OnCommit,
		hub:       store.NewHub(),
		lock:      lock,
		writeC:    make(chan *writeReq),
		wroteC:    make(chan struct{}, 1),
		closing:   make(chan struct{}),
		staged:    map[string]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.retention == 0 {
		s.retention = DefaultRetention
	}
	fail := func(err error) (*Store, error) {
		if s.wdb != nil {
			s.wdb.Close()
		}
		if s.rdb != nil {
			s.rdb.Close()
		}
		if s.cdb != nil {
			s.cdb.Close()
		}
		lock.Close()
		return nil, err
	}
	s.blobs = opt.Blobs
	if s.blobs == nil {
		fs, err := blob.NewFileStore(filepath.Join(opt.Dir, "blobs"))
		if err != nil {
			return fail(err)
		}
		s.blobs = fs
	}
	path := filepath.Join(opt.Dir, "postfach.db")
	s.path = path
	// wal_autocheckpoint(0) and journal_size_limit: see checkpoint.go.
	dsn := "file:" + path + "?_pragma=busy_timeout(" + itoa(writerBusyTimeout.Milliseconds()) + ")&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(0)" +
		"&_pragma=journal_size_limit(" + itoa(walLimit) + ")&_txlock=immediate"
	if s.wdb, err = sql.Open("sqlite", dsn); err != nil {
		return fail(fmt.Errorf("open database: %w", err))
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if opt.StartupCheck {
		quickMax := opt.QuickCheckMax
		if quickMax == 0 {
			quickMax = DefaultQuickCheckMax
		}
		if err := startupCheck(ctx, s.wdb, path, quickMax); err != nil {
			return fail(err)
		}
	}
	if err := migrate(ctx, s.wdb); err != nil {
		var se *sqlite.Error
		if errors.As(err, &se) && isCorrupt(se) {
			err = fmt.Errorf("%w: %w", ErrDamaged, err)
		}
		return fail(err)
	}
	if s.rdb, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)"); err != nil {
		return fail(fmt.Errorf("open database: %w", err))
	}
	if s.cdb, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)"); err != nil {
		return fail(fmt.Errorf("open database: %w", err))
	}
	s.cdb.SetMaxOpenConns(1)
	readConns := opt.ReadConns
	if readConns <= 0 {
		readConns = DefaultReadConns
	}
	s.rdb.SetMaxOpenConns(readConns)
	s.rdb.SetMaxIdleConns(readConns)
	s.rdb.SetConnMaxIdleTime(5 * time.Minute)
	s.wstmts = &writerStmts{db: s.wdb, prepared: map[string]*sql.Stmt{}, pending: map[string]bool{}}
	s.rstmts = &readerStmts{db: s.rdb, m: map[string]*sql.Stmt{}, want: map[string]bool{}}
	if err := s.startupSweep(ctx); err != nil {
		return fail(err)
	}
	refresh, err := s.needsRefresh(ctx)
	if err != nil {
		return fail(err)
	}
	s.startOps(opt.OpsOptions)
	s.wg.Add(2)
	go s.writer()
	go s.checkpointer()
	if refresh {
		s.oldSummaries.Store(true)
		s.wg.Add(1)
		go s.refreshSummaries()
	}
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

// storeFiles are the files of the database in the data directory.
var storeFiles = []string{"postfach.db", "postfach.db-wal", "postfach.db-shm", "postfach.db-journal", "postfach.lock"}

// privateFiles makes the database's files readable by the server's user
// only, whatever the umask and whatever an older version left (issue 11:
// in a data directory of mode 0755 the log was 0644, and a local user read
// bodies and password hashes in it). SQLite creates a new database 0644,
// and its -wal and -shm files with the mode of the database file, so the
// database file is created here first, 0600. A file that cannot be
// changed (a read-only data directory, for postfach check) is left with a
// warning.
func privateFiles(dir string, log *slog.Logger) error {
	db := filepath.Join(dir, storeFiles[0])
	f, err := os.OpenFile(db, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("create database file: %w", err)
		}
	case !errors.Is(err, os.ErrExist):
		return fmt.Errorf("create database file: %w", err)
	}
	for _, name := range storeFiles {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil && log != nil {
			log.Warn("cannot make a store file private", "file", p, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "err", err)
		}
	}
	return nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "postfach.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s: %w", dir, store.ErrLocked)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}

// Close implements store.Store: waiting writes finish, then the databases
// and the lock are released.
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
	s.rstmts.close()
	// Leave a small WAL behind: fold it into the database file.
	s.cdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	err := errors.Join(s.rdb.Close(), s.cdb.Close(), s.wdb.Close())
	s.lock.Close()
	return err
}

// Subscribe implements store.Store.
func (s *Store) Subscribe(acct store.AccountID) store.Subscription {
	return s.hub.Subscribe(acct)
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// mapErr turns low-level storage errors into the store's sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return diskFullError{err}
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return diskFullError{err}
	}
	return err
}
