package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultPoll is how often Files looks at its files when FilesOptions.Poll
// is zero.
const DefaultPoll = 5 * time.Second

// FilesOptions configures LoadFiles.
type FilesOptions struct {
	// Cert and Key are the PEM files: the certificate chain (leaf first)
	// and its private key.
	Cert, Key string
	// Poll is how often Run looks for changed files; zero means
	// DefaultPoll.
	Poll time.Duration
	// Logger receives reloads and failures; nil discards them.
	Logger *slog.Logger
}

// Files is a certificate loaded from a pair of files, reloaded when they
// change. Its methods are safe for concurrent use.
type Files struct {
	opt FilesOptions
	log *slog.Logger
	cur atomic.Pointer[tls.Certificate] // never nil after LoadFiles

	mu   sync.Mutex
	seen pairState // the files as they were at the last load (good or bad); mu
}

// pairState identifies the versions of the two files: a new inode (a
// rename over the file, a symlink that points elsewhere, as certbot's
// live/ links do), a new size or a new modification time is a change.
type pairState [2]fileState

type fileState struct {
	ino   uint64
	size  int64
	mtime int64
	err   string // stat error, so that a missing file is a state too
}

func statPair(cert, key string) pairState {
	return pairState{statFile(cert), statFile(key)}
}

func statFile(path string) fileState {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{err: err.Error()}
	}
	st := fileState{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// LoadFiles loads the pair; it fails when the pair does not load.
func LoadFiles(opt FilesOptions) (*Files, error) {
	if opt.Poll == 0 {
		opt.Poll = DefaultPoll
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Files{opt: opt, log: log}
	f.seen = statPair(opt.Cert, opt.Key)
	cert, err := loadPair(opt.Cert, opt.Key)
	if err != nil {
		return nil, err
	}
	f.cur.Store(cert)
	logExpiry(log, cert)
	return f, nil
}

// loadPair loads and checks a certificate and its key.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", certFile, err)
	}
	if cert.Leaf == nil {
		return nil, fmt.Errorf("load tls certificate %s: no certificate", certFile)
	}
	return &cert, nil
}

// logExpiry warns about a certificate that is not valid now.
func logExpiry(log *slog.Logger, cert *tls.Certificate) {
	now := time.Now()
	if leaf := cert.Leaf; leaf != nil && (now.After(leaf.NotAfter) || now.Before(leaf.NotBefore)) {
		log.Warn("the tls certificate is not valid now; clients will refuse it",
			"not_before", leaf.NotBefore.UTC(), "not_after", leaf.NotAfter.UTC())
	}
}

// GetCertificate returns the current certificate (tls.Config.GetCertificate).
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Current returns the current certificate.
func (f *Files) Current() *tls.Certificate { return f.cur.Load() }

// Reload loads the files now. On failure the old certificate stays, the
// failure is logged, and the error returned.
func (f *Files) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loadLocked(statPair(f.opt.Cert, f.opt.Key), "reload")
}

// loadLocked loads the pair, recording st as the state seen. f.mu must be
// held.
func (f *Files) loadLocked(st pairState, why string) error {
	f.seen = st
	cert, err := loadPair(f.opt.Cert, f.opt.Key)
	if err != nil {
		f.log.Error("tls certificate not reloaded; keeping the old one", "why", why, "err", err)
		return err
	}
	f.cur.Store(cert)
	f.log.Info("tls certificate reloaded", "why", why, "names", strings.Join(cert.Leaf.DNSNames, ","),
		"not_after", cert.Leaf.NotAfter.UTC())
	logExpiry(f.log, cert)
	return nil
}

// Run polls the files until ctx ends, and loads them when they have
// changed and then stayed the same for one poll (so that a pair written
// one file after the other is read once both are there).
func (f *Files) Run(ctx context.Context) {
	t := time.NewTicker(f.opt.Poll)
	defer t.Stop()
	var last pairState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := statPair(f.opt.Cert, f.opt.Key)
		f.mu.Lock()
		if st != f.seen && st == last {
			f.loadLocked(st, "files changed")
		}
		f.mu.Unlock()
		last = st
	}
}
