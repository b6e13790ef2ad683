package imapserver

import (
	"bufio"
	"compress/flate"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/imapurl"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// ErrServerClosed is returned by Serve and ServeTLS after Shutdown.
var ErrServerClosed = errors.New("imapserver: server closed")

// Authenticator checks credentials. *auth.Service implements it.
type Authenticator interface {
	Login(ctx context.Context, c auth.Credentials) (*auth.Principal, error)
	NewSASL(mech string, c auth.ConnInfo) (auth.SASL, error)
}

var _ Authenticator = (*auth.Service)(nil)

// failureRecorder is implemented by authenticators that count failures
// decided outside Login (a SASL response that is not base64).
type failureRecorder interface {
	RecordFailure(remote netip.Addr)
}

// clientRecorder is implemented by authenticators that keep the client
// name of a device (IMAP ID) for `postfach device list`.
type clientRecorder interface {
	NoteClient(ctx context.Context, p *auth.Principal, client string)
}

var _ clientRecorder = (*auth.Service)(nil)

// Metrics are optional hooks; any may be nil.
type Metrics struct {
	// ConnMetrics count connections (proto "imap" or "imaps").
	netserve.ConnMetrics
	// Login counts login attempts by result: "ok", "failed", "temp_fail".
	Login func(result string)
	// Command is called after every command with its name and status
	// ("OK", "NO", "BAD").
	Command func(name, status string)
}

// MailboxEventHook receives the store events of mailboxes other than the
// selected one (and account-level events), for extensions that report
// them (NOTIFY, RFC 5465, is built in and does not use it). It runs on
// the session goroutine
// at the points where the session may send unsolicited responses; what it
// writes with the Encoder goes to the client before the command's tagged
// response (or at once during IDLE).
type MailboxEventHook func(enc *imap.Encoder, ev store.Event)

// Options configures a Server.
type Options struct {
	// Store holds the mail; Auth checks logins. Both are required.
	Store store.Store
	Auth  Authenticator
	// SASLMechanisms are offered by AUTHENTICATE; nil means
	// auth.Mechanisms().
	SASLMechanisms []string
	// Hostname is named in the greeting.
	Hostname string
	// TLSConfig enables STARTTLS on Serve listeners, and is required by
	// ServeTLS (implicit TLS, "imaps").
	TLSConfig *tls.Config
	// AllowInsecureAuth permits LOGIN and AUTHENTICATE on connections
	// without TLS from other hosts than loopback (RFC 9051 §11.1 and
	// RFC 8314: off by default; LOGINDISABLED is advertised then).
	AllowInsecureAuth bool
	// MaxMessageSize is the largest message APPEND accepts (APPENDLIMIT,
	// RFC 7889); 0 means 64 MiB.
	MaxMessageSize int64
	// IdleTimeout ends a session that sends nothing for this long (RFC
	// 9051 §5.4 asks for at least 30 minutes); 0 means 30 minutes.
	IdleTimeout time.Duration
	// LoginTimeout is how long a session may take to log in, counted from
	// the connection, in total: input does not restart it (issue 11); 0
	// means one minute, negative no limit.
	LoginTimeout time.Duration
	// PreAuth bounds what the connections of one client hold for their
	// commands before they log in (netserve.Budget); share one among the
	// servers of a process. nil: no such bound (the per-connection limits
	// before login apply all the same).
	PreAuth *netserve.Budget
	// MaxBadCommands ends a session after this many BAD responses in a
	// row; 0 means 20.
	MaxBadCommands int
	// MaxConns and MaxConnsPerIP limit connections (0: no limit); a client
	// over a limit gets "* BYE" and is disconnected.
	MaxConns, MaxConnsPerIP int
	// IDs numbers connections across the servers of one process.
	IDs     *netserve.IDs
	Logger  *slog.Logger
	Metrics Metrics
	// OtherMailboxEvent, when set, receives events of mailboxes other
	// than the selected one (see MailboxEventHook). NOTIFY (RFC 5465) is
	// built in and does not need it.
	OtherMailboxEvent MailboxEventHook

	// AutoSubscribe subscribes the mailboxes CREATE makes (and the
	// parents it or RENAME creates), so that clients that show only
	// subscribed folders (Thunderbird) show a folder made on one device on
	// every other one.
	AutoSubscribe bool

	// Postmaster is the address of the server's administrator, given to
	// clients as the /shared/admin server annotation (RFC 5464 §3.2.1.1,
	// as a mailto: URL); "" leaves the entry out.
	Postmaster string
	// SentCopies are the copies the submission server saved in its users'
	// Sent mailboxes: an APPEND of the same message there within
	// delivery.SentWindow keeps that copy instead of adding a second
	// (append.go). nil: every APPEND adds.
	SentCopies *delivery.SentCopies
	// METADATA (RFC 5464) limits: the largest value of one annotation
	// (0: 64 KiB), the most annotations of one account (0: 1,000) and
	// their total value bytes (0: 1 MiB).
	MetadataMaxValue   int
	MetadataMaxEntries int
	MetadataMaxBytes   int64

	// Search contexts (RFC 5267, SEARCH and SORT with RETURN (UPDATE)):
	// at most SearchContexts per session (0: 5), each with a result of
	// at most SearchContextBytes when it is made (0: 1 MiB; it may grow
	// to twice that). Beyond them the search gets NOUPDATE.
	SearchContexts     int
	SearchContextBytes int

	// CacheMessages bounds the messages the mailbox caches hold together
	// (mbcache.go: about 225 bytes each; 0: 500,000, negative: no
	// caches), and CacheBytes the parse results, sort keys and search
	// text cached by message body (blobcache.go; 0: 128 MiB, negative:
	// none).
	CacheMessages int
	CacheBytes    int64
}

// Server is an IMAP server (IMAP4rev2, RFC 9051, and IMAP4rev1, RFC 3501,
// on one port). Use New, then Serve (plain, with STARTTLS) or ServeTLS
// (implicit TLS) for each listener, and Shutdown once.
type Server struct {
	opt         Options
	log         *slog.Logger
	idle        time.Duration
	maxBad      int
	maxMsg      int64
	mechs       []string
	loopbackSec bool // loopback connections count as secure for plaintext auth; tests turn it off
	// remoteFor, when set, gives the client's address instead of the
	// socket's: tests put a client on another host than loopback.
	remoteFor func(net.Conn) netip.Addr
	// startTLS is Options.TLSConfig for STARTTLS (netserve.StartTLSConfig).
	startTLS *tls.Config

	// loginTimeout is Options.LoginTimeout with its default; 0: none.
	loginTimeout time.Duration

	sessionIDs atomic.Uint64
	changes    changesCache
	// caches are the mailbox caches (nil: off) and blobs the summaries
	// and headers by body (mbcache.go, blobcache.go).
	caches *mailboxCaches
	blobs  *blobCache
	// summariesCurrent reports whether summaries read from the store may
	// be kept (store.SummaryRefresher).
	summariesCurrent func() bool

	// Buffers of sessions that wait for their client are given back to
	// these pools, so an idle session keeps only a few hundred bytes.
	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *bufio.Writer
	// deflaters holds the compressors of COMPRESS=DEFLATE sessions while
	// they wait (compress.go).
	deflaters sync.Pool // *flate.Writer

	// metaMaxValue, metaMaxEntries and metaMaxBytes are the METADATA
	// limits (Options, with defaults).
	metaMaxValue   int
	metaMaxEntries int
	metaMaxBytes   int64
	// notifyMax bounds the NOTIFY notifications one session collects
	// before it reports them; beyond it the session gets
	// [NOTIFICATIONOVERFLOW] (notify.go). Tests lower it.
	notifyMax int
	// contextMax and contextMaxBytes limit the search contexts of a
	// session (RFC 5267, context.go; Options, with defaults).
	contextMax      int
	contextMaxBytes int

	// parking lets idle plaintext sessions give up their goroutine
	// (park.go); tests turn it off. A session parks after waiting
	// parkAfter in a read (0: at once). poll is the poller they wait in,
	// started at the first park; pollRetry (guarded by mu) is when to try
	// again after it could not be started. parkWarned is when a session
	// last logged that it could not park (UnixNano), to log that once a
	// minute rather than once per session.
	parking    bool
	parkAfter  time.Duration
	poll       atomic.Pointer[poller]
	pollRetry  time.Time
	parkWarned atomic.Int64
	// serveParked runs a resumed session (park.go); set by New.
	serveParked func(*session)

	group netserve.Group // one netserve server per listener

	// urls signs and resolves IMAP URLs (URLAUTH, CATENATE; urlauth.go);
	// urlauth says that the store keeps access keys, and URLAUTH is
	// offered.
	urls    *imapurl.Resolver
	urlauth bool

	sentByFile atomic.Int64 // literals sent with sendfile(2); tests read it

	mu sync.Mutex
	// closing is set, under mu, when Shutdown begins: no poller is
	// started from then on (park.go).
	closing bool
}

// Buffer sizes of a session while it works.
const (
	readBufSize  = 8 << 10
	writeBufSize = 32 << 10
)

// New returns a Server.
func New(opt Options) *Server {
	s := &Server{
		opt:         opt,
		log:         opt.Logger,
		idle:        opt.IdleTimeout,
		maxBad:      opt.MaxBadCommands,
		maxMsg:      opt.MaxMessageSize,
		mechs:       opt.SASLMechanisms,
		loopbackSec: true,
		parking:     true,
		parkAfter:   defaultParkAfter,
		startTLS:    netserve.StartTLSConfig(opt.TLSConfig),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.idle <= 0 {
		s.idle = 30 * time.Minute
	}
	switch s.loginTimeout = opt.LoginTimeout; {
	case s.loginTimeout == 0:
		s.loginTimeout = defaultLoginTimeout
	case s.loginTimeout < 0:
		s.loginTimeout = 0
	}
	if s.maxBad <= 0 {
		s.maxBad = 20
	}
	if s.maxMsg <= 0 {
		s.maxMsg = 64 << 20
	}
	if s.mechs == nil {
		s.mechs = auth.Mechanisms()
	}
	s.metaMaxValue, s.metaMaxEntries, s.metaMaxBytes = opt.MetadataMaxValue, opt.MetadataMaxEntries, opt.MetadataMaxBytes
	if s.metaMaxValue <= 0 {
		s.metaMaxValue = 64 << 10
	}
	if s.metaMaxEntries <= 0 {
		s.metaMaxEntries = 1000
	}
	if s.metaMaxBytes <= 0 {
		s.metaMaxBytes = 1 << 20
	}
	s.notifyMax = defaultNotifyMax
	s.contextMax, s.contextMaxBytes = opt.SearchContexts, opt.SearchContextBytes
	if s.contextMax <= 0 {
		s.contextMax = defaultContextMax
	}
	if s.contextMaxBytes <= 0 {
		s.contextMaxBytes = defaultContextMaxBytes
	}
	if n := opt.CacheMessages; n >= 0 {
		if n == 0 {
			n = defaultCacheMessages
		}
		s.caches = newMailboxCaches(opt.Store, n)
	}
	s.summariesCurrent = func() bool { return true }
	if r, ok := opt.Store.(store.SummaryRefresher); ok {
		s.summariesCurrent = r.SummariesCurrent
	}
	if b := opt.CacheBytes; b >= 0 {
		if b == 0 {
			b = defaultBlobCacheSize
		}
		s.blobs = newBlobCache(b)
	}
	s.deflaters.New = func() any {
		w, _ := flate.NewWriter(io.Discard, deflateLevel) // the level is valid
		return w
	}
	s.serveParked = func(ss *session) { ss.serve(false) }
	s.initURLAuth()
	s.readers.New = func() any { return bufio.NewReaderSize(nil, readBufSize) }
	s.writers.New = func() any { return bufio.NewWriterSize(nil, writeBufSize) }
	return s
}

// Serve accepts plain connections (STARTTLS upgrades them when TLSConfig
// is set) on ln until Shutdown, then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts implicit-TLS connections ("imaps", RFC 8314) on ln
// until Shutdown, then returns ErrServerClosed. Options.TLSConfig must be
// set.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opt.TLSConfig == nil {
		ln.Close()
		return errors.New("imapserver: ServeTLS without TLSConfig")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	proto := "imap"
	var tlsConf *tls.Config
	if implicitTLS {
		proto, tlsConf = "imaps", s.opt.TLSConfig
	}
	err := s.group.Serve(ln, netserve.ServerOptions{
		Options: netserve.Options{
			Proto:         proto,
			Logger:        s.log,
			MaxConns:      s.opt.MaxConns,
			MaxConnsPerIP: s.opt.MaxConnsPerIP,
			// RFC 9051 §7.1.5: BYE when the server refuses a connection.
			BusyReply: "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
			TLSConfig: tlsConf,
			IDs:       s.opt.IDs,
			Metrics:   s.opt.Metrics.ConnMetrics,
			// Before login: a deadline, and a memory budget.
			LoginTimeout: s.loginTimeout,
			PreAuth:      s.opt.PreAuth,
		},
		Handler: func(conn net.Conn, tc *netserve.Conn) {
			newSession(s, conn, tc, implicitTLS).run()
		},
	})
	if errors.Is(err, netserve.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// ImplicitTLS adapts a Server for callers that start every listener with
// Serve(ln): its Serve is the Server's ServeTLS. Serving "imap" with the
// Server and "imaps" with ImplicitTLS{Server} shares one Server.
type ImplicitTLS struct{ *Server }

// Serve calls ServeTLS.
func (t ImplicitTLS) Serve(ln net.Listener) error { return t.ServeTLS(ln) }

// Shutdown stops accepting and ends every session: a session waiting for
// a command (or in IDLE) gets "* BYE" at once; a command in progress is
// finished first, then the session says BYE. When ctx is done before every
// session ended, the rest are cut off and ctx's error is returned. Later
// and concurrent calls wait for the first one (or their own ctx) and
// return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.group.Shutdown(ctx, func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		if p := s.poll.Load(); p != nil {
			// Parked sessions are resumed first (and none parks from
			// now on), so the drain reaches them in their reads like
			// any other waiting session.
			p.close()
		}
	})
}

// remoteAddr returns the client's IP, or the zero Addr for a non-TCP
// connection.
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
