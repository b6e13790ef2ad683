// Package testenv runs the whole postfach server (internal/server) for
// tests: every listener on 127.0.0.1:0, a temporary data directory, users
// created on demand, and a Restart that keeps the data and the ports. It
// also builds the real postfach binary once per test process, for CLI and
// crash tests.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/queue"
	"github.com/postfach/postfach/internal/server"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/postgres/pgtest"
	"github.com/postfach/postfach/internal/store/teststore"
)

// Domain is the local domain of a test server.
const Domain = "example.org"

// Options adjust a test server.
type Options struct {
	// Config, when set, edits the config before the start.
	Config func(c *config.Config)
	// WrapStore is passed to server.Options (failure injection).
	WrapStore func(store.Store) store.Store
	// CertPoll is passed to server.Options: how often the TLS certificate
	// files are checked for changes (zero: the server's default).
	CertPoll time.Duration
	// Now is passed to server.Options: the clock of setup links and of
	// the outbound queue.
	Now func() time.Time
	// Queue is passed to server.Options: it adjusts the outbound queue's
	// options.
	Queue func(*queue.Options)
	// ReadConns is the size of the store's read pool. Zero means
	// ReadConns(): one connection unless $POSTFACH_TEST_READ_CONNS says
	// otherwise; negative means the store's own default (as in
	// production).
	ReadConns int
	// Enqueuer is passed to server.Options: it takes submitted mail for
	// other servers (tests record it).
	Enqueuer delivery.Enqueuer
}

// ReadConns is the read pool size of a test server whose Options leave it
// zero: $POSTFACH_TEST_READ_CONNS when set to a number, else 1. With one
// connection, a store read that waits for a second connection of the pool
// while it holds one (the freeze of issue 11, which needed a burst of
// sessions on the production pool of 8) hangs on its first run, so every
// protocol test that runs through testenv checks that rule.
func ReadConns() int {
	if n, err := strconv.Atoi(os.Getenv("POSTFACH_TEST_READ_CONNS")); err == nil && n != 0 {
		return n
	}
	return 1
}

// Env is a running test server.
type Env struct {
	t      testing.TB
	opt    Options
	Config *config.Config
	Server *server.Server
	logs   *syncBuffer
}

// Start starts a server for t and stops it when the test ends.
func Start(t testing.TB, opt Options) *Env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Hostname = "mx.test.example"
	cfg.Domains = []string{Domain, "example.net"}
	cfg.Log.Level = "debug"
	// A small disk reserve: many test servers run at once, and /tmp may be
	// memory. The disk tests set their own.
	cfg.Limits.DiskReserve = 1 << 20
	l := &cfg.Listen
	for _, p := range []*string{&l.IMAP, &l.IMAPS, &l.POP3, &l.POP3S, &l.LMTP, &l.SMTP, &l.Submission, &l.Submissions, &l.HTTP, &l.Web} {
		*p = "127.0.0.1:0"
	}
	// No test asks the real DNS (SPF, DKIM and DMARC checks of the MX):
	// a test DNS server publishes SPF records that let this machine
	// (loopback) send for the local domains, as an operator's would,
	// and answers NXDOMAIN for every other name. Tests that need other
	// records start their own and set dns.servers.
	var spf []string
	for _, d := range cfg.Domains {
		spf = append(spf, d+`. TXT "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all"`)
	}
	cfg.DNS.Servers = []string{dnstest.New(t, spf...).Addr}
	// The store backend the environment selects (teststore.Var):
	// PostgreSQL in a schema of its own, or the embedded SQLite store.
	if teststore.Backend() == teststore.Postgres {
		cfg.Store.Backend = config.StorePostgres
		cfg.Store.DSN = pgtest.SchemaDSN(t)
		cfg.Store.MaxConns = 3 // the least allowed, so that reads that hold too many connections hang in tests
	}
	if opt.Config != nil {
		opt.Config(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("testenv: invalid config: %v", err)
	}
	e := &Env{t: t, opt: opt, Config: cfg, logs: &syncBuffer{}}
	e.start()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *Env) start() {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conns := e.opt.ReadConns
	if conns == 0 {
		conns = ReadConns()
	}
	if conns < 0 {
		conns = 0 // the store's default
	}
	srv, err := server.Start(context.Background(), server.Options{Config: e.Config, Logger: log, WrapStore: e.opt.WrapStore,
		StoreReadConns: conns, CertPoll: e.opt.CertPoll, Now: e.opt.Now, Queue: e.opt.Queue, Enqueuer: e.opt.Enqueuer})
	if err != nil {
		e.t.Fatalf("testenv: start server: %v\n%s", err, e.logs.String())
	}
	e.Server = srv
	// Keep the ports for a Restart.
	for _, l := range []struct {
		name string
		p    *string
	}{{"lmtp", &e.Config.Listen.LMTP}, {"smtp", &e.Config.Listen.SMTP}, {"http", &e.Config.Listen.HTTP},
		{"imap", &e.Config.Listen.IMAP}, {"imaps", &e.Config.Listen.IMAPS}, {"web", &e.Config.Listen.Web},
		{"web_http", &e.Config.Listen.WebHTTP}, {"submission", &e.Config.Listen.Submission},
		{"submissions", &e.Config.Listen.Submissions}} {
		if a := srv.Addr(l.name); a != "" {
			*l.p = a
		}
	}
}

func (e *Env) stop() {
	if e.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Server.Shutdown(ctx); err != nil {
		e.t.Errorf("testenv: shutdown: %v", err)
	}
	e.Server = nil
}

// Shutdown stops the server with ctx (see server.Server.Shutdown) and
// returns its error, for tests of the shutdown itself; the cleanup then
// has nothing left to stop.
func (e *Env) Shutdown(ctx context.Context) error {
	srv := e.Server
	e.Server = nil
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// Restart stops the server gracefully and starts it again on the same data
// directory and ports.
func (e *Env) Restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

// Addr returns a listener's address ("lmtp", "smtp", "http", ...).
func (e *Env) Addr(name string) string {
	e.t.Helper()
	a := e.Server.Addr(name)
	if a == "" {
		e.t.Fatalf("testenv: listener %s is off", name)
	}
	return a
}

// Store returns the running server's store.
func (e *Env) Store() store.Store { return e.Server.Store() }

// Logs returns the server log so far.
func (e *Env) Logs() string { return e.logs.String() }

// AddUser creates an account with a password.
func (e *Env) AddUser(name, password string) *store.Account {
	e.t.Helper()
	hash, err := auth.HashPassword(password)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.Store().CreateAccount(context.Background(), name, hash)
	if err != nil {
		e.t.Fatalf("testenv: add user %s: %v", name, err)
	}
	return a
}

// Dial connects to a listener.
func (e *Env) Dial(name string) net.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.Addr(name))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// binary caches the result of BuildBinary for this test process. It is the
// one piece of package state here: building once per process is the point.
var binary struct {
	once sync.Once
	path string
	err  error
}

// BuildBinary builds cmd/postfach once per test process and returns the
// path of the binary.
func BuildBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			binary.err = err
			return
		}
		dir := filepath.Join(os.TempDir(), "postfach-testbin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			binary.err = err
			return
		}
		tmp, err := os.CreateTemp(dir, "postfach-*")
		if err != nil {
			binary.err = err
			return
		}
		tmp.Close()
		cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/postfach")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp.Name())
			binary.err = fmt.Errorf("go build ./cmd/postfach: %v\n%s", err, out)
			return
		}
		// One binary per process; concurrent test packages each get their
		// own file. Old ones are removed so the folder does not grow.
		binary.path = tmp.Name()
		cleanOld(dir, binary.path)
	})
	if binary.err != nil {
		t.Fatalf("testenv: %v", binary.err)
	}
	return binary.path
}

// cleanOld removes binaries older than an hour (left by earlier runs).
func cleanOld(dir, keep string) {
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		if p == keep {
			continue
		}
		if fi, err := ent.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(p)
		}
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the postfach module")
	}
	return filepath.Dir(mod), nil
}

// Messages returns the bodies of every message in an account's mailbox, in
// UID order.
func (e *Env) Messages(account, mailbox string) [][]byte {
	e.t.Helper()
	bodies, err := ReadMailbox(context.Background(), e.Store(), account, mailbox)
	if err != nil {
		e.t.Fatalf("testenv: read %s of %s: %v", mailbox, account, err)
	}
	return bodies
}

// ReadMailbox returns the bodies of every message in an account's mailbox,
// in UID order.
func ReadMailbox(ctx context.Context, st store.Store, account, mailbox string) ([][]byte, error) {
	a, err := st.Account(ctx, account)
	if err != nil {
		return nil, err
	}
	mb, err := st.Mailbox(ctx, a.ID, mailbox)
	if err != nil {
		return nil, err
	}
	uids, _, err := st.UIDs(ctx, a.ID, mb.ID)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for m, err := range st.Messages(ctx, a.ID, mb.ID, uids, store.ListOptions{}) {
		if err != nil {
			return nil, err
		}
		b, err := st.OpenBody(ctx, m.BlobID)
		if err != nil {
			return nil, fmt.Errorf("open body %s: %w", m.BlobID, err)
		}
		buf := make([]byte, b.Size())
		n, err := b.ReadAt(buf, 0)
		b.Close()
		if err != nil && !(err == io.EOF && n == len(buf)) {
			return nil, fmt.Errorf("read body %s: %w", m.BlobID, err)
		}
		out = append(out, buf)
	}
	return out, nil
}
