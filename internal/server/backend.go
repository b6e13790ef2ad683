package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/queue"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/postgres"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// Backend is the store the config chooses ([store] backend), with the
// optional abilities the server and the admin commands use. It is the one
// place that opens a store backend: the server, the offline admin
// commands and the tests (through the server) all come here.
type Backend struct {
	// Store is the store itself.
	Store store.Store
	// The optional abilities of Store that postfach needs; every backend
	// provides them all (storetest checks each).
	Credentials store.Credentials
	Aliases     store.Aliases
	Queue       queue.Store
	DKIMKeys    store.DKIMKeys
	SetupLinks  store.SetupLinks
	Snapshotter store.Snapshotter
	Restorer    store.Restorer
	Undeleter   store.Undeleter
	STSPolicies store.STSPolicies
	// SQLite is the store when it is the embedded one, for what only it
	// has (its files' metrics and the disk reserve); nil for other
	// backends.
	SQLite *sqlite.Store
	// Kind is the backend's name (config.StoreSQLite, config.StorePostgres).
	Kind string
}

// BackendOptions are what the caller adds to the config.
type BackendOptions struct {
	// Logger receives the store's events; nil discards them.
	Logger *slog.Logger
	// OnCommit is the store's commit hook (metrics).
	OnCommit func(d time.Duration, batch int, err error)
	// ReadConns is the size of the SQLite read pool; 0 means its default.
	ReadConns int
	// Serve is set by the server: the store runs its background work
	// (sweep, scrub) and SQLite checks its database before serving it.
	// Admin commands that open the store for a moment leave it unset.
	Serve bool
}

// OpenBackend opens the store the config chooses.
func OpenBackend(ctx context.Context, cfg *config.Config, opt BackendOptions) (*Backend, error) {
	var st store.Store
	b := &Backend{Kind: cfg.Store.Backend}
	safeguards := StoreSafeguards(cfg)
	sweep := time.Duration(0) // the store's default
	if !opt.Serve {
		sweep = -1
		safeguards.ScrubRate = 0 // the server scrubs; a command is over in a moment
	}
	var blobLog *slog.Logger
	if opt.Logger != nil {
		blobLog = opt.Logger.With("component", "blob")
	}
	// Bodies: in S3 when [blob] says so; nil means the file blob store in
	// the data directory.
	blobs, err := OpenBlobs(ctx, cfg, blobLog)
	if err != nil {
		return nil, err
	}
	switch cfg.Store.Backend {
	case config.StoreSQLite, "":
		sq, err := sqlite.Open(ctx, sqlite.Options{Dir: cfg.DataDir, Logger: opt.Logger, Blobs: blobs,
			Retention: cfg.Retention.D(), OnCommit: opt.OnCommit, OpsOptions: safeguards,
			ReadConns: opt.ReadConns, StartupCheck: opt.Serve, SweepInterval: sweep})
		if err != nil {
			return nil, err
		}
		b.SQLite, st = sq, sq
		b.Kind = config.StoreSQLite
	case config.StorePostgres:
		// The data directory still holds what is per frontend (the
		// admin socket, the auth secret, the spool); SQLite makes it
		// when it opens, PostgreSQL does not.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		if blobs == nil {
			if blobs, err = blob.NewFileStore(filepath.Join(cfg.DataDir, "blobs")); err != nil {
				return nil, fmt.Errorf("open blob store: %w", err)
			}
		}
		pg, err := postgres.Open(ctx, postgres.Options{DSN: cfg.Store.DSN, MaxConns: cfg.Store.MaxConns, Blobs: blobs,
			Logger: opt.Logger, Retention: cfg.Retention.D(), OnCommit: opt.OnCommit, SweepInterval: sweep,
			OpsOptions: postgres.OpsOptions{MaxMailboxes: safeguards.MaxMailboxes, Quota: safeguards.Quota,
				ScrubRate: safeguards.ScrubRate, ScrubInterval: safeguards.ScrubInterval}})
		if err != nil {
			return nil, err
		}
		st = pg
	default:
		return nil, fmt.Errorf("store.backend %q is not %q or %q", cfg.Store.Backend, config.StoreSQLite, config.StorePostgres)
	}
	b.Store = st
	var missing []string
	need := func(ok bool, what string) {
		if !ok {
			missing = append(missing, what)
		}
	}
	var ok bool
	b.Credentials, ok = st.(store.Credentials)
	need(ok, "store.Credentials")
	b.Aliases, ok = st.(store.Aliases)
	need(ok, "store.Aliases")
	b.Queue, ok = st.(queue.Store)
	need(ok, "queue.Store")
	b.DKIMKeys, ok = st.(store.DKIMKeys)
	need(ok, "store.DKIMKeys")
	b.SetupLinks, ok = st.(store.SetupLinks)
	need(ok, "store.SetupLinks")
	b.Snapshotter, ok = st.(store.Snapshotter)
	need(ok, "store.Snapshotter")
	b.Restorer, ok = st.(store.Restorer)
	need(ok, "store.Restorer")
	b.Undeleter, ok = st.(store.Undeleter)
	need(ok, "store.Undeleter")
	b.STSPolicies, ok = st.(store.STSPolicies)
	need(ok, "store.STSPolicies")
	if len(missing) > 0 {
		st.Close()
		return nil, fmt.Errorf("store backend %s lacks %v", b.Kind, missing)
	}
	return b, nil
}

// Close closes the store.
func (b *Backend) Close() error { return b.Store.Close() }

// errLockedHint adds what to do to a store.ErrLocked from OpenBackend.
func errLockedHint(cfg *config.Config, err error) error {
	if !errors.Is(err, store.ErrLocked) {
		return err
	}
	if cfg.Store.Backend == config.StorePostgres {
		return fmt.Errorf("%w: stop the other postfach first (one postfach per database for now), or give this one its own database or schema", err)
	}
	// err names the directory and says it is locked; add what to do.
	return fmt.Errorf("%w: stop the other postfach first, or give this one its own data_dir", err)
}
