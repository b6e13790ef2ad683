package pop3server

import (
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
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// ErrServerClosed is returned by Serve and ServeTLS after Shutdown. It is
// netserve.ErrServerClosed, so a caller composing several servers on
// netserve checks one value.
var ErrServerClosed = netserve.ErrServerClosed

// Store is the part of the store the POP3 server uses. store.Store
// implements it.
type Store interface {
	AccountByID(ctx context.Context, id store.AccountID) (*store.Account, error)
	Mailbox(ctx context.Context, acct store.AccountID, name string) (*store.Mailbox, error)
	Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error)
	UIDs(ctx context.Context, acct store.AccountID, id store.MailboxID) (mail.UIDSet, mail.ModSeq, error)
	Messages(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool)
	Changes(ctx context.Context, acct store.AccountID, id store.MailboxID, since mail.ModSeq) (*store.ChangeSet, error)
	OpenBody(ctx context.Context, blobID string) (store.Body, error)
	StoreFlags(ctx context.Context, acct store.AccountID, id store.MailboxID, req store.StoreFlagsRequest) (*store.StoreFlagsResult, error)
	Expunge(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, onlyDeleted bool) (*store.ExpungeResult, error)
	Move(ctx context.Context, acct store.AccountID, src store.MailboxID, uids mail.UIDSet, dst store.MailboxID) (*store.CopyResult, error)
	POP3View(ctx context.Context, acct store.AccountID, device string, mailbox store.MailboxID) (*store.POP3View, error)
	HidePOP3(ctx context.Context, acct store.AccountID, device string, mailbox store.MailboxID, uids mail.UIDSet) error
	Subscribe(acct store.AccountID) store.Subscription
}

var _ Store = store.Store(nil)

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

var _ failureRecorder = (*auth.Service)(nil)

// DeleteMode says what DELE does on the plain maildrop at QUIT.
type DeleteMode string

// The values of pop3.delete.
const (
	// DeleteExpunge expunges the message from INBOX (as IMAP EXPUNGE does).
	DeleteExpunge DeleteMode = "expunge"
	// DeleteTrash moves the message to the \Trash special-use mailbox.
	DeleteTrash DeleteMode = "trash"
	// DeleteHide hides it from POP3; IMAP still sees it in INBOX.
	DeleteHide DeleteMode = "hide"
)

// Valid reports whether m is one of the defined modes.
func (m DeleteMode) Valid() bool {
	return m == DeleteExpunge || m == DeleteTrash || m == DeleteHide
}

// Metrics are optional hooks; any may be nil.
type Metrics struct {
	// ConnMetrics count connections (proto "pop3" or "pop3s").
	netserve.ConnMetrics
	// Login counts login attempts by result: "ok", "failed", "in_use",
	// "login_delay", "temp_fail".
	Login func(result string)
	// Retrieved is called after each RETR with the message size.
	Retrieved func(size int64)
	// Deleted is called at QUIT with the number of messages DELEd and the
	// mode applied ("expunge", "trash", "hide" or "device").
	Deleted func(mode string, n int)
}

// Options configures a Server.
type Options struct {
	// Store holds the mail; Auth checks logins. Both are required.
	Store Store
	Auth  Authenticator
	// SASLMechanisms are offered by AUTH and CAPA; nil means
	// auth.Mechanisms(). They follow the same TLS rule as USER/PASS: no
	// sign-in without TLS (except from loopback, or AllowInsecureAuth),
	// SCRAM included, since the session that follows would be readable
	// and could be taken over. A -PLUS mechanism is offered on TLS
	// connections only.
	SASLMechanisms []string
	// Hostname is named in the greeting.
	Hostname string
	// TLSConfig enables STLS on Serve listeners, and is required by
	// ServeTLS (implicit TLS, "pop3s").
	TLSConfig *tls.Config
	// AllowInsecureAuth permits USER/PASS and AUTH on connections without
	// TLS from other hosts than loopback (RFC 2595 §4: off by default).
	AllowInsecureAuth bool

	// MarkSeen makes RETR set \Seen (TOP never does).
	MarkSeen bool
	// HideDeleted leaves messages flagged \Deleted out of the maildrop.
	HideDeleted bool
	// Delete is what DELE does on the plain maildrop; "" (or an unknown
	// value) means DeleteHide, which never takes mail away from IMAP
	// devices. The account setting "pop3.delete" overrides it.
	Delete DeleteMode
	// DeviceViews enables "ADDRESS#DEVICE" logins (per-device views).
	DeviceViews bool

	// IdleTimeout ends a session that sends nothing for this long, without
	// a response (RFC 1939 §3 asks for at least 10 minutes); 0 means 10
	// minutes.
	IdleTimeout time.Duration
	// LoginTimeout is how long a session may take to log in, counted from
	// the connection, in total: input does not restart it (issue 11); 0
	// means one minute, negative no limit.
	LoginTimeout time.Duration
	// PreAuth bounds what the connections of one client hold for their
	// command lines before they log in (netserve.Budget); share one among
	// the servers of a process.
	PreAuth *netserve.Budget
	// LoginDelay, when positive, is the minimum time between two logins
	// to the same maildrop or device view (RFC 2449 §6.5 LOGIN-DELAY,
	// advertised in CAPA; too early a login gets [LOGIN-DELAY]).
	LoginDelay time.Duration
	// MaxBadCommands ends a session after this many bad commands; 0 means
	// 20.
	MaxBadCommands int
	// JunkCommands ends a session after login at the command after this
	// many NOOP, RSET, CAPA, STAT, LIST or UIDL commands without a RETR,
	// TOP or DELE in between; ProgressTimeout when no RETR, TOP or DELE
	// came for this long after login or the previous one
	// (progress.go). 0 means 100 and 30 minutes; negative: no limit.
	JunkCommands    int
	ProgressTimeout time.Duration
	// MaxConns and MaxConnsPerIP limit connections; over a limit the
	// client gets "-ERR [SYS/TEMP]" and is disconnected (0: no limit).
	MaxConns, MaxConnsPerIP int
	// IDs numbers connections across the servers of one process.
	IDs     *netserve.IDs
	Logger  *slog.Logger
	Metrics Metrics
}

// maildropKey names what one session may hold at a time: an account's
// plain maildrop (device "") or one of its device views.
type maildropKey struct {
	acct   store.AccountID
	device string
}

// Server is a POP3 server. Use New, then Serve (plain, with STLS) or
// ServeTLS (implicit TLS) for each listener, and Shutdown once.
type Server struct {
	opt      Options
	log      *slog.Logger
	idle     time.Duration
	maxBad   int
	mechs    []string
	loopback bool // loopback connections count as secure for plaintext auth; tests turn it off
	// remoteFor, when set, gives the client's address instead of the
	// socket's: tests put a client on another host than loopback.
	remoteFor func(net.Conn) netip.Addr
	// startTLS is Options.TLSConfig for STLS (netserve.StartTLSConfig).
	startTLS *tls.Config

	// loginTimeout is Options.LoginTimeout with its default; 0: none.
	loginTimeout time.Duration
	// junkCommands and progressTimeout are the Options' with their
	// defaults; 0: no limit.
	junkCommands    int
	progressTimeout time.Duration

	sentByFile atomic.Int64 // bodies sent with sendfile(2); tests read it

	group netserve.Group // one netserve server per listener

	mu         sync.Mutex
	inUse      map[maildropKey]bool      // guarded by mu
	lastLogin  map[maildropKey]time.Time // guarded by mu
	lastPruned time.Time                 // guarded by mu
}

// New returns a Server.
func New(opt Options) *Server {
	s := &Server{
		opt:       opt,
		log:       opt.Logger,
		idle:      opt.IdleTimeout,
		maxBad:    opt.MaxBadCommands,
		mechs:     opt.SASLMechanisms,
		loopback:  true,
		inUse:     map[maildropKey]bool{},
		lastLogin: map[maildropKey]time.Time{},
		startTLS:  netserve.StartTLSConfig(opt.TLSConfig),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.idle <= 0 {
		s.idle = 10 * time.Minute
	}
	switch s.loginTimeout = opt.LoginTimeout; {
	case s.loginTimeout == 0:
		s.loginTimeout = time.Minute
	case s.loginTimeout < 0:
		s.loginTimeout = 0
	}
	if s.maxBad <= 0 {
		s.maxBad = 20
	}
	switch s.junkCommands = opt.JunkCommands; {
	case s.junkCommands == 0:
		s.junkCommands = defaultJunkCommands
	case s.junkCommands < 0:
		s.junkCommands = 0
	}
	switch s.progressTimeout = opt.ProgressTimeout; {
	case s.progressTimeout == 0:
		s.progressTimeout = defaultProgressTimeout
	case s.progressTimeout < 0:
		s.progressTimeout = 0
	}
	if s.mechs == nil {
		s.mechs = auth.Mechanisms()
	}
	if !s.opt.Delete.Valid() {
		if s.opt.Delete != "" {
			s.log.Warn("pop3: unknown delete mode, using hide", "delete", string(s.opt.Delete))
		}
		s.opt.Delete = DeleteHide
	}
	return s
}

// Serve accepts plain connections (STLS upgrades them when TLSConfig is
// set) on ln until Shutdown, then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts implicit-TLS connections ("pop3s", RFC 8314) on ln
// until Shutdown, then returns ErrServerClosed. Options.TLSConfig must be
// set.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opt.TLSConfig == nil {
		ln.Close()
		return errors.New("pop3server: ServeTLS without TLSConfig")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	proto := "pop3"
	var tlsConf *tls.Config
	if implicitTLS {
		proto, tlsConf = "pop3s", s.opt.TLSConfig
	}
	return s.group.Serve(ln, netserve.ServerOptions{
		Options: netserve.Options{
			Proto:         proto,
			Logger:        s.log,
			MaxConns:      s.opt.MaxConns,
			MaxConnsPerIP: s.opt.MaxConnsPerIP,
			// RFC 3206 §4: SYS/TEMP, the client may try again later.
			BusyReply: "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
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
}

// ImplicitTLS adapts a Server for callers that start every listener with
// Serve(ln): its Serve is the Server's ServeTLS. Serving "pop3" with the
// Server and "pop3s" with ImplicitTLS{Server} shares one in-use set, so
// [IN-USE] holds across both listeners.
type ImplicitTLS struct{ *Server }

// Serve calls ServeTLS.
func (t ImplicitTLS) Serve(ln net.Listener) error { return t.ServeTLS(ln) }

// Shutdown stops accepting and ends every session: a session waiting for
// a command gets "-ERR [SYS/TEMP]" at once (no UPDATE state: nothing DELEd
// is removed), a response being written is finished first. When ctx is
// done before every session ended, the rest are cut off and ctx's error is
// returned. Later and concurrent calls wait for the first one (or their
// own ctx) and return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.group.Shutdown(ctx, nil)
}

// lockMaildrop claims a maildrop or device view for one session; false
// means another session holds it (RFC 2449 §8.1.1 IN-USE).
func (s *Server) lockMaildrop(k maildropKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[k] {
		return false
	}
	s.inUse[k] = true
	return true
}

func (s *Server) unlockMaildrop(k maildropKey) {
	s.mu.Lock()
	delete(s.inUse, k)
	s.mu.Unlock()
}

// loginAllowed applies LOGIN-DELAY (RFC 2449 §6.5, §8.1.2): it records a
// login now and reports whether the previous one was long enough ago.
func (s *Server) loginAllowed(k maildropKey, now time.Time) bool {
	d := s.opt.LoginDelay
	if d <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastLogin[k]; ok && now.Sub(last) < d {
		return false
	}
	s.lastLogin[k] = now
	if now.Sub(s.lastPruned) > d {
		for key, t := range s.lastLogin {
			if now.Sub(t) >= d {
				delete(s.lastLogin, key)
			}
		}
		s.lastPruned = now
	}
	return true
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

// deadlineWriter pushes the write deadline forward before every write, so
// a long RETR to a slow but live client is not cut off while a client that
// stops reading is.
type deadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.c.SetWriteDeadline(time.Now().Add(w.d))
	return w.c.Write(p)
}

var _ io.Writer = deadlineWriter{}
