// Package server composes postfach from its configuration: the store, the
// auth service, the protocol servers with their listeners, the HTTP
// endpoint (/healthz, /metrics) and the admin socket. It is the only
// package besides cmd/postfach that reads internal/config.
//
// Lifecycle: Start opens the store and every listener (failing as a whole
// if any cannot be opened), then serves; Shutdown stops accepting, lets
// deliveries in progress finish (or fail cleanly) while idle sessions get a
// goodbye, and closes the store. Signals are handled by cmd/postfach.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/imapserver"
	"github.com/postfach/postfach/internal/imapurl"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/pop3server"
	"github.com/postfach/postfach/internal/queue"
	"github.com/postfach/postfach/internal/smtpserver"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/web"
)

// Options configures Start.
type Options struct {
	// Config is the validated configuration, with DataDir absolute.
	Config *config.Config
	// Logger receives the server log; nil builds one from Config.Log on
	// standard error.
	Logger *slog.Logger
	// WrapStore, when set, wraps the store before anything uses it. Tests
	// use it to inject failures (a full disk).
	WrapStore func(store.Store) store.Store
	// StoreReadConns is the size of the store's pool of read connections;
	// zero means the store's default. Tests make it tiny (testenv) so that
	// a read that waits for a second connection while it holds one hangs
	// at once.
	StoreReadConns int
	// CertPoll is how often the TLS certificate files are checked for
	// changes; zero means certs.DefaultPoll. Tests make it short.
	CertPoll time.Duration
	// Now is the clock of device setup links (their expiry) and of the
	// outbound queue; nil means time.Now. Tests move it forward.
	Now func() time.Time
	// Queue, when set, adjusts the outbound queue's options before it
	// starts (tests: the MTA-STS port, the poll interval).
	Queue func(*queue.Options)
	// Enqueuer takes submitted mail for other servers (the outbound
	// queue); nil means the server's own outbound queue. Tests record
	// with it.
	Enqueuer delivery.Enqueuer
}

// protocolServer is what every protocol server provides (New(Options) in
// its package, then these). IMAP and POP3 plug in the same way.
type protocolServer interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Server is a running postfach.
type Server struct {
	cfg   *config.Config
	log   *slog.Logger
	m     *metrics
	sqlSt *sqlite.Store
	st    store.Store
	auth  *auth.Service
	ops   *admin.Ops
	queue *queue.Queue // the outbound queue
	// dns answers the outbound queue's and the MX checks' DNS questions
	// ([dns]), one cache for both.
	dns *dnsr.Client
	// signer signs outgoing mail with the domains' DKIM keys.
	signer delivery.Signer

	addrs   map[string]string // listener name -> actual address
	servers []namedServer
	http    *http.Server
	httpLn  net.Listener
	adminS  *admin.Server
	adminLn net.Listener
	certs   certSource       // nil when no listener needs TLS
	web     *web.Server      // listen.web; nil when off. Pages are added with s.web.Handle before Serve.
	now     func() time.Time // Options.Now
	bgStop  context.CancelFunc
	bm      *backupMetrics // backup.go

	errc     chan error // first unexpected Serve failure
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

type namedServer struct {
	name string
	srv  protocolServer
	ln   net.Listener
}

// NewLogger builds the logger described by the [log] section.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// imapCache maps imap.cache_messages and imap.cache_size, where 0 turns a
// cache off, to imapserver.Options, where 0 means the default.
func imapCache(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// Start opens the store and the listeners and starts serving.
func Start(ctx context.Context, opt Options) (_ *Server, err error) {
	cfg := opt.Config
	if cfg == nil {
		return nil, errors.New("server: no config")
	}
	log := opt.Logger
	if log == nil {
		return nil, errors.New("server: no logger")
	}
	s := &Server{cfg: cfg, log: log, m: newMetrics(), addrs: map[string]string{}, errc: make(chan error, 1), now: opt.Now}
	s.bm = newBackupMetrics(s.m.reg)
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	blobs, err := OpenBlobs(ctx, cfg, log.With("component", "blob"))
	if err != nil {
		return nil, err
	}
	s.sqlSt, err = sqlite.Open(ctx, sqlite.Options{Dir: cfg.DataDir, Logger: log.With("component", "store"),
		Retention: cfg.Retention.D(), OnCommit: s.m.onCommit, OpsOptions: StoreSafeguards(cfg), Blobs: blobs,
		ReadConns: opt.StoreReadConns, StartupCheck: true})
	if errors.Is(err, store.ErrLocked) {
		// err names the directory and says it is locked; add what to do.
		return nil, fmt.Errorf("%w: stop the other postfach first, or give this one its own data_dir", err)
	}
	if errors.Is(err, sqlite.ErrDamaged) {
		// Serving a damaged store silently turns damage into lost or
		// wrong mail; say so and stop (issue 11).
		return nil, fmt.Errorf("refusing to serve a damaged store: %w; run `postfach check` for the details, "+
			"and restore the data directory from a backup (docs/running.md, \"Damaged stores\")", err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	cleanup = append(cleanup, func() { s.sqlSt.Close() })
	s.m.registerStoreMetrics(s.sqlSt)
	s.m.watchStore(s.sqlSt)
	warnOpenDataDir(log, cfg.DataDir)
	s.st = s.sqlSt
	if opt.WrapStore != nil {
		s.st = opt.WrapStore(s.st)
	}
	// Devices and SCRAM keys: the store's, also when a test wraps it.
	creds, ok := s.st.(store.Credentials)
	if !ok {
		creds = s.sqlSt
	}
	secret, err := authSecret(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.auth = auth.New(auth.Options{Store: s.st, Credentials: creds, RequireDevicePasswords: cfg.Auth.RequireDevicePasswords,
		Secret: secret, Logger: log.With("component", "auth"), Guard: guardOptions(cfg.Auth), Metrics: s.m.auth()})
	preAuth := netserve.NewBudget(int64(cfg.Limits.PreAuthMemoryPerIP))
	s.m.watchGuard(s.auth, preAuth)
	// Aliases: the store's, also when a test wraps it.
	aliases, ok := s.st.(store.Aliases)
	if !ok {
		aliases = s.sqlSt
	}
	deliverer := NewDeliverer(cfg, s.st, aliases, log)
	if s.dns, err = newResolver(cfg, log, opt.Now); err != nil {
		return nil, err
	}
	s.ops = &admin.Ops{Store: s.st, Credentials: creds, Aliases: aliases, Auth: s.auth, Deliverer: deliverer, Logger: log, Delivered: s.m.smtp().Delivered,
		Now: opt.Now} // setup links: startWeb
	s.ops.BackupDone = s.bm.record
	s.ops.DKIMKeys = dkimKeys(s.st, s.sqlSt)
	// The DKIM signer of outgoing mail, for the outbound queue.
	s.signer = NewSigner(s.ops.DKIMKeys, log.With("component", "dkim"))
	if err := s.startQueue(ctx, opt, deliverer); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { s.queue.Shutdown(context.Background()) })
	s.ops.Queue = s.queue
	// Submission hands mail for other servers to the outbound queue;
	// tests may record it instead.
	var enqueuer delivery.Enqueuer = s.queue
	if opt.Enqueuer != nil {
		enqueuer = opt.Enqueuer
	}

	ids := new(netserve.IDs)
	smtpOpts := func(lmtp bool) smtpserver.Options {
		return smtpProgressLimits(cfg.Limits, smtpserver.Options{
			LMTP:           lmtp,
			Deliverer:      deliverer,
			Hostname:       cfg.Hostname,
			MaxMessageSize: int64(cfg.MaxMessageSize),
			MaxRecipients:  cfg.Limits.Recipients,
			CommandTimeout: cfg.Limits.SMTPCommandTimeout.D(),
			DataTimeout:    cfg.Limits.SMTPDataTimeout.D(),
			MaxConns:       cfg.Limits.Connections,
			MaxConnsPerIP:  cfg.Limits.ConnectionsPerIP,
			IDs:            ids,
			Logger:         log,
			Metrics:        s.m.smtp(),
		})
	}

	// tlsConfig loads (or generates) the certificate once, for the
	// listeners that need it; s.certs keeps it current.
	var tlsCfg *tls.Config
	tlsConfig := func() (*tls.Config, error) {
		if tlsCfg == nil {
			src, err := newCertSource(cfg, log, opt.CertPoll)
			if err != nil {
				return nil, err
			}
			s.certs = src
			s.m.watchCert(src)
			tlsCfg = netserve.ServerTLSConfig(src.GetCertificate)
		}
		return tlsCfg, nil
	}
	if cfg.TLS.ACME {
		if _, err := tlsConfig(); err != nil {
			return nil, err
		}
	}

	// pop3Server is one POP3 server for both POP3 listeners, so that
	// [IN-USE] holds across them.
	var pop3 *pop3server.Server
	pop3Server := func() (*pop3server.Server, error) {
		if pop3 == nil {
			tc, err := tlsConfig()
			if err != nil {
				return nil, err
			}
			pop3 = pop3server.New(pop3server.Options{
				Store:             s.st,
				Auth:              s.auth,
				Hostname:          cfg.Hostname,
				TLSConfig:         tc,
				AllowInsecureAuth: cfg.Auth.AllowInsecure,
				MarkSeen:          cfg.POP3.MarkSeen,
				HideDeleted:       cfg.POP3.HideDeleted,
				Delete:            pop3server.DeleteMode(cfg.POP3.Delete),
				DeviceViews:       cfg.POP3.DeviceViews,
				IdleTimeout:       cfg.Limits.POP3IdleTimeout.D(),
				LoginTimeout:      cfg.Limits.LoginTimeout.D(),
				JunkCommands:      cmp.Or(cfg.Limits.JunkCommands, -1),
				ProgressTimeout:   cmp.Or(cfg.Limits.ProgressTimeout.D(), -1),
				PreAuth:           preAuth,
				MaxConns:          cfg.Limits.Connections,
				MaxConnsPerIP:     cfg.Limits.ConnectionsPerIP,
				IDs:               ids,
				Logger:            log,
				Metrics:           pop3server.Metrics{ConnMetrics: s.m.conns()},
			})
		}
		return pop3, nil
	}

	// sent remembers the Sent copies of submission for IMAP's APPEND.
	sent := delivery.NewSentCopies(nil)

	// submissionServer is one submission server for both submission
	// listeners, so that the hourly limits hold across them.
	var subSrv *smtpserver.Server
	submissionServer := func() (*smtpserver.Server, error) {
		if subSrv == nil {
			tc, err := tlsConfig()
			if err != nil {
				return nil, err
			}
			spool, err := spoolDir(cfg.DataDir)
			if err != nil {
				return nil, err
			}
			o := smtpOpts(false)
			o.TLSConfig = tc
			o.Submission = &smtpserver.Submission{
				Auth:                 s.auth,
				AllowInsecureAuth:    cfg.Auth.AllowInsecure,
				Enqueuer:             enqueuer,
				SaveSent:             cfg.Submission.SaveSent,
				SentCopies:           sent,
				Mailboxes:            s.st,
				MaxMessagesPerHour:   cfg.Submission.MaxMessagesPerHour,
				MaxRecipientsPerHour: cfg.Submission.MaxRecipientsPerHour,
				LoginTimeout:         cfg.Limits.LoginTimeout.D(),
				PreAuth:              preAuth,
				SpoolDir:             spool,
				Events:               s.st,
			}
			if st, ok := s.st.(imapurl.Store); ok {
				// RFC 4468 §3: BURL imap where the store keeps the
				// URLAUTH access keys.
				o.Submission.URLs = burlFetcher{imapurl.New(imapurl.Options{Store: st, Hostname: cfg.Hostname})}
			}
			subSrv = smtpserver.New(o)
		}
		return subSrv, nil
	}

	// imapServer is one IMAP server for both IMAP listeners.
	var imapSrv *imapserver.Server
	imapServer := func() (*imapserver.Server, error) {
		if imapSrv == nil {
			tc, err := tlsConfig()
			if err != nil {
				return nil, err
			}
			imapSrv = imapserver.New(imapserver.Options{
				Store:             s.st,
				Auth:              s.auth,
				Hostname:          cfg.Hostname,
				TLSConfig:         tc,
				AllowInsecureAuth: cfg.Auth.AllowInsecure,
				MaxMessageSize:    int64(cfg.MaxMessageSize),
				AutoSubscribe:     cfg.IMAP.AutoSubscribe,
				CacheMessages:     imapCache(cfg.IMAP.CacheMessages),
				CacheBytes:        int64(imapCache(int(cfg.IMAP.CacheSize))),
				Postmaster:        "postmaster@" + cfg.Domains[0],
				SentCopies:        sent,
				IdleTimeout:       cfg.Limits.IMAPIdleTimeout.D(),
				LoginTimeout:      cfg.Limits.LoginTimeout.D(),
				PreAuth:           preAuth,
				MaxConns:          cfg.Limits.Connections,
				MaxConnsPerIP:     cfg.Limits.ConnectionsPerIP,
				IDs:               ids,
				Logger:            log,
				Metrics:           imapserver.Metrics{ConnMetrics: s.m.conns()},
			})
		}
		return imapSrv, nil
	}

	// Open every listener first, so a busy port fails the start before
	// anything is served.
	var webLn, webHTTPLn net.Listener
	for _, l := range cfg.Listen.All() {
		if l.Addr == "" {
			continue
		}
		var srv protocolServer
		switch l.Name {
		case "lmtp":
			srv = smtpserver.New(smtpOpts(true))
		case "smtp":
			o := smtpOpts(false)
			o.UnknownRcpts = unknownRcptLimits(cfg.Limits)
			if o.Checker, err = newInboundChecker(cfg, s.dns, s.m.reg, log); err != nil {
				return nil, err
			}
			if o.SpoolDir, err = spoolDir(cfg.DataDir); err != nil {
				return nil, err
			}
			if o.TLSConfig, err = tlsConfig(); err != nil {
				return nil, err
			}
			srv = smtpserver.New(o)
		case "submission", "submissions":
			p, err := submissionServer()
			if err != nil {
				return nil, err
			}
			srv = p
			if l.Name == "submissions" {
				srv = smtpserver.ImplicitTLS{Server: p}
			}
		case "imap", "imaps":
			p, err := imapServer()
			if err != nil {
				return nil, err
			}
			srv = p
			if l.Name == "imaps" {
				srv = imapserver.ImplicitTLS{Server: p}
			}
		case "pop3", "pop3s":
			p, err := pop3Server()
			if err != nil {
				return nil, err
			}
			srv = p
			if l.Name == "pop3s" {
				srv = pop3server.ImplicitTLS{Server: p}
			}
		case "http", "web", "web_http":
		default:
			return nil, fmt.Errorf("listener %s: no server for it", l.Name)
		}
		ln, err := netserve.Listen(l.Addr)
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", l.Name, err)
		}
		cleanup = append(cleanup, func() { ln.Close() })
		s.addrs[l.Name] = addrString(ln)
		switch l.Name {
		case "http":
			s.httpLn = ln
		case "web":
			webLn = ln
		case "web_http":
			webHTTPLn = ln
		default:
			s.servers = append(s.servers, namedServer{l.Name, srv, ln})
		}
	}
	if err := s.startWeb(tlsConfig, webLn, webHTTPLn); err != nil {
		return nil, err
	}
	s.adminLn, err = admin.Listen(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.adminS = admin.NewServer(s.ops, log.With("component", "admin"))

	// Serve.
	for _, ns := range s.servers {
		s.serve(ns.name, func() error { return ns.srv.Serve(ns.ln) })
		if ns.name == "web" {
			log.Info("listening", "listener", ns.name, "addr", s.addrs[ns.name], "public_url", cfg.PublicURL(s.addrs["web"]))
			continue
		}
		log.Info("listening", "listener", ns.name, "addr", s.addrs[ns.name])
	}
	bg, bgStop := context.WithCancel(context.Background())
	s.bgStop = bgStop
	if cfg.Backup.Dir != "" {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runBackups(bg)
		}()
	}
	if s.certs != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.certs.Run(bg)
		}()
	}
	s.serve("admin", func() error { return s.adminS.Serve(s.adminLn) })
	if s.httpLn != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		})
		mux.Handle("/metrics", s.m.handler())
		paths := "/healthz /metrics"
		if cfg.Debug.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			paths += " /debug/pprof/"
		}
		s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		s.serve("http", func() error { return s.http.Serve(s.httpLn) })
		log.Info("listening", "listener", "http", "addr", s.addrs["http"], "paths", paths)
	}
	log.Info("postfach started", "data_dir", cfg.DataDir, "hostname", cfg.Hostname, "domains", strings.Join(cfg.Domains, ","))
	if accts, err := s.st.Accounts(ctx); err == nil && len(accts) == 0 {
		hint := "postfach user add ADDRESS"
		if cfg.Path != "" {
			hint = "postfach user add --config " + cfg.Path + " ADDRESS"
		}
		log.Info("no accounts yet; add one with: "+hint, "example", "alice@"+cfg.Domains[0])
	}
	return s, nil
}

// guardOptions turns the [auth] keys into the guessing protection's
// options (a count of 0 switches that part off).
func guardOptions(a config.Auth) auth.GuardOptions {
	off := func(n int) int {
		if n == 0 {
			return -1
		}
		return n
	}
	return auth.GuardOptions{
		IPDelayAfter:      off(a.IPDelayAfter),
		IPMaxDelay:        a.IPMaxDelay.D(),
		IPBlockAfter:      off(a.IPBlockAfter),
		IPBlockDuration:   a.IPBlockDuration.D(),
		Window:            a.FailureWindow.D(),
		AccountDelayAfter: off(a.AccountDelayAfter),
		AccountMaxDelay:   a.AccountMaxDelay.D(),
	}
}

// warnOpenDataDir warns when other users may enter the data directory.
// postfach's own files in it are 0600 whatever the umask (and its
// directories 0700), but a 0755 directory lets others see their names and
// read whatever else is put there (issue 11).
func warnOpenDataDir(log *slog.Logger, dir string) {
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	log.Warn("the data directory is open to other users; make it private: chmod 700 "+dir,
		"data_dir", dir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
}

// waitOrCutoff waits until done is closed; once ctx is done, it waits at
// most ShutdownCutoff more. It reports whether done was closed.
func waitOrCutoff(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
	}
	t := time.NewTimer(ShutdownCutoff)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func addrString(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "unix:" + ln.Addr().String()
	}
	return ln.Addr().String()
}

func (s *Server) serve(name string, f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := f()
		if err == nil || errors.Is(err, smtpserver.ErrServerClosed) || errors.Is(err, netserve.ErrServerClosed) ||
			errors.Is(err, imapserver.ErrServerClosed) ||
			errors.Is(err, http.ErrServerClosed) {
			return
		}
		s.log.Error("listener failed", "listener", name, "err", err)
		select {
		case s.errc <- fmt.Errorf("%s: %w", name, err):
		default:
		}
	}()
}

// Err receives the first unexpected failure of a listener; the caller
// should then Shutdown.
func (s *Server) Err() <-chan error { return s.errc }

// Addr returns the actual address of a listener by its config name
// ("lmtp", "smtp", "http", ...): "host:port", or "unix:PATH". It is "" for a
// listener that is off.
func (s *Server) Addr(name string) string { return s.addrs[name] }

// Store returns the store the server uses.
func (s *Server) Store() store.Store { return s.st }

// Admin returns the admin operations on the running server's store.
func (s *Server) Admin() admin.API { return s.ops }

// Signer returns the DKIM signer of outgoing mail, for the outbound queue.
func (s *Server) Signer() delivery.Signer { return s.signer }

// ShutdownCutoff is how long Shutdown waits, once its context is done,
// for the connections it cut off to end and for the store to close. Past
// it Shutdown returns even though something is still stuck (a store read
// on a hung disk, say): the caller is about to exit the process, and
// whatever was not acknowledged by then was never promised.
const ShutdownCutoff = 5 * time.Second

// Shutdown stops the server: listeners close, deliveries in progress
// finish, idle sessions get a goodbye, then the store closes. When ctx ends
// first, the remaining connections are cut off, and Shutdown returns at
// most ShutdownCutoff later whatever they and the store are doing (with an
// error saying what was left). Calling it again returns the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.log.Info("shutting down")
	s.bgStop()
	var mu sync.Mutex
	var errs []error
	addErr := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var wg sync.WaitGroup
		stop := func(name string, f func(context.Context) error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(ctx); err != nil {
					addErr(fmt.Errorf("%s: %w", name, err))
				}
			}()
		}
		for _, ns := range s.servers {
			stop(ns.name, ns.srv.Shutdown)
		}
		stop("admin", s.adminS.Shutdown)
		stop("queue", s.queue.Shutdown)
		if s.http != nil {
			stop("http", func(ctx context.Context) error {
				err := s.http.Shutdown(ctx)
				if err != nil {
					s.http.Close()
				}
				return err
			})
		}
		wg.Wait()
		s.wg.Wait()
	}()
	if !waitOrCutoff(ctx, stopped) {
		s.log.Error("connections still busy after the shutdown grace and the cut-off; leaving them", "cutoff", ShutdownCutoff)
		addErr(errors.New("connections did not end"))
	}
	// The store closes last. When connections were left stuck in it,
	// closing it fails their waits for a database connection; and if it
	// does not close in time, the process exits without it (every
	// acknowledged write is durable already).
	closed := make(chan struct{})
	var closeErr error
	go func() {
		defer close(closed)
		closeErr = s.sqlSt.Close()
	}()
	if !waitOrCutoff(ctx, closed) {
		s.log.Error("the store did not close in time; leaving it", "cutoff", ShutdownCutoff)
		addErr(errors.New("close store: did not finish"))
	} else if closeErr != nil {
		addErr(fmt.Errorf("close store: %w", closeErr))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		s.log.Warn("shutdown incomplete", "err", errors.Join(errs...))
		return errors.Join(errs...)
	}
	s.log.Info("stopped")
	return nil
}
