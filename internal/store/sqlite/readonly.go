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

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/store"
)

// CheckReadOnly runs Check on the store in dir without writing anything
// there: no lock file, no schema upgrade, no sweep, no temporary blob
// directory. It is what `postfach check` runs when no server is running,
// so a read-only data directory (a mounted backup, a snapshot) can be
// checked.
//
// The database is opened read-only (mode=ro). When SQLite cannot do that
// in place (a WAL database needs its -shm file, which a read-only
// directory does not let it create), it is opened immutable, which reads
// the database file alone; that is refused when a non-empty -wal file
// holds changes not yet folded into the database, since they would be
// missed.
func CheckReadOnly(ctx context.Context, dir string, log *slog.Logger) ([]store.Problem, error) {
	return CheckReadOnlyWith(ctx, dir, nil, log)
}

// CheckReadOnlyWith is CheckReadOnly for a store whose large bodies are
// in blobs (nil: the files under dir/blobs).
func CheckReadOnlyWith(ctx context.Context, dir string, blobs blob.Store, log *slog.Logger) ([]store.Problem, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dir, "postfach.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	rdb, err := openReadOnlyDB(ctx, path)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	s := &Store{
		dir:    dir,
		log:    log,
		rdb:    rdb,
		rstmts: &readerStmts{db: rdb, m: map[string]*sql.Stmt{}},
		blobs:  blobs,
		hub:    store.NewHub(),
	}
	if s.blobs == nil {
		s.blobs = blob.OpenFileStore(filepath.Join(dir, "blobs"))
	}
	defer s.rstmts.close()
	return s.Check(ctx)
}

// openReadOnlyDB opens the database for reading only and checks that its
// schema is the one this postfach knows.
func openReadOnlyDB(ctx context.Context, path string) (*sql.DB, error) {
	open := func(params string) (*sql.DB, error) {
		db, err := sql.Open("sqlite", "file:"+path+"?"+params+"&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(2)
		if err := schemaCurrent(ctx, db); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	db, err := open("mode=ro")
	if err == nil {
		return db, nil
	}
	if errors.Is(err, errSchema) {
		return nil, err
	}
	if fi, werr := os.Stat(path + "-wal"); werr == nil && fi.Size() > 0 {
		return nil, fmt.Errorf("open store read-only: %w (the write-ahead log %s holds changes not yet in the database; "+
			"start and stop postfach once, or check a copy of the directory)", err, filepath.Base(path)+"-wal")
	}
	db, ierr := open("mode=ro&immutable=1")
	if ierr != nil {
		return nil, fmt.Errorf("open store read-only: %w", errors.Join(err, ierr))
	}
	return db, nil
}

var errSchema = errors.New("store schema")

// schemaCurrent checks that the database has the schema this postfach
// writes; Check's queries assume it.
func schemaCurrent(ctx context.Context, db *sql.DB) error {
	var v string
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key='schema_version'`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return fmt.Errorf("%w: bad version %q", errSchema, v)
	case n > len(migrations):
		return fmt.Errorf("%w: version %d is newer than this postfach (%d): upgrade postfach", errSchema, n, len(migrations))
	case n < len(migrations):
		return fmt.Errorf("%w: version %d is older than this postfach (%d): start the server once to upgrade it, then check", errSchema, n, len(migrations))
	}
	return nil
}
