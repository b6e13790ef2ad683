// Package smtpserver is postfach's mail-in front end: LMTP (RFC 2033) for an
// MTA on the same host and SMTP (RFC 5321) in the MX role, with our own
// protocol layer. Recipients are resolved and messages stored by the
// delivery package (delivery.Deliverer), which `postfach deliver` and the
// other ways mail comes in share.
//
// In the MX and LMTP roles only local domains are accepted; there is no
// relaying and no AUTH. With Options.Submission the server is a message
// submission server instead (RFC 6409, submission.go and submit.go): AUTH
// (RFC 4954) before MAIL, the sender checked against the account's
// addresses, local recipients delivered and the others handed to the
// outbound queue, a copy in the sender's Sent mailbox, and BURL (RFC
// 4468). A message is acknowledged only after Store.Deliver (and the
// queue's Enqueue) returned, that is after the store made it durable.
//
// Extensions offered: PIPELINING (RFC 2920), 8BITMIME (RFC 6152), SIZE
// (RFC 1870), ENHANCEDSTATUSCODES (RFC 2034, codes of RFC 3463), SMTPUTF8
// (RFC 6531: the store keeps the bytes as delivered and addresses match
// byte-wise case-insensitively, so UTF-8 addresses and headers pass
// through), CHUNKING (RFC 3030 BDAT), LIMITS RCPTMAX (RFC 9422) and, for
// SMTP with a TLS configuration, STARTTLS (RFC 3207).
//
// Message data streams from the connection's buffer into the Deliverer:
// the DATA reader removes the dot-stuffing a buffered run at a time, and
// no message is held whole in memory. Replies are buffered and written
// when the server is about to wait for the client, so the replies to a
// pipelined group of commands leave in one write (RFC 2920 §3.2).
//
// # Concurrency
//
// One goroutine per connection (netserve.Server) runs the session; a
// session's fields are owned by that goroutine.
package smtpserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/netserve"
)

// ErrServerClosed is returned by Serve after Shutdown. It is
// netserve.ErrServerClosed, so a caller composing several servers on
// netserve checks one value.
var ErrServerClosed = netserve.ErrServerClosed

// Metrics are optional hooks for counters and histograms; any may be nil.
type Metrics struct {
	// Delivered is called once per message that reached the store, with
	// the number of recipients delivered and failed and the time spent
	// storing it.
	Delivered func(proto string, ok, failed int, d time.Duration)
	// Error counts failures by kind: "too_big", "disk_full", "store",
	// "unknown_user", "relay_denied", "bad_address", "empty",
	// "unknown_rcpt_limit" (a session ended for probing addresses),
	// "over_quota" (a recipient refused for its quota), "no_progress" (a
	// session ended for commands without mail, progress.go).
	Error func(proto, kind string)
	// ConnMetrics count connections (proto "smtp", "lmtp", ...).
	netserve.ConnMetrics
}

// Options configures a Server.
type Options struct {
	// LMTP selects LMTP (per-recipient replies after DATA) instead of SMTP.
	LMTP bool
	// Deliverer resolves recipients, checks their quotas and stores
	// messages.
	Deliverer *delivery.Deliverer
	// Hostname is the name in the greeting.
	Hostname string
	// MaxMessageSize is advertised with SIZE and enforced while streaming;
	// a message of exactly this many bytes (as sent, after unstuffing) is
	// accepted. 0 means no limit.
	MaxMessageSize int64
	// MaxRecipients per message (RFC 5321 §4.5.3.1.8: at least 100); 0
	// means no limit.
	MaxRecipients int
	// CommandTimeout is how long to wait for the next command
	// (RFC 5321 §4.5.3.2.7); DataTimeout for each block of message data
	// (§4.5.3.2.5). 0 means 5 and 3 minutes, the RFC's values.
	CommandTimeout, DataTimeout time.Duration
	// TLSConfig enables STARTTLS (SMTP only).
	TLSConfig *tls.Config
	// MaxConns and MaxConnsPerIP limit connections; over a limit the client
	// gets 421 4.7.0 and is disconnected.
	MaxConns, MaxConnsPerIP int
	// MaxBadCommands ends a session with 421 after this many unknown,
	// malformed or out-of-sequence commands; 0 means 20.
	MaxBadCommands int
	// JunkCommands ends a session with 421 4.7.0 at the command after
	// this many NOOP, RSET, HELP, VRFY, EHLO, HELO or LHLO commands
	// without a message in between; ProgressTimeout at a command (or a
	// wait for one) later than this after the connection or the last
	// message (progress.go). 0 means 100 and 30 minutes; negative: no
	// limit.
	JunkCommands    int
	ProgressTimeout time.Duration
	// UnknownRcpts slows down, then stops, a session that names unknown
	// users (address probing). The zero value means the defaults for
	// SMTP and no limit for LMTP.
	UnknownRcpts UnknownRcptLimits
	// Submission, when set, makes this a message submission server
	// (RFC 6409) instead of an MX; LMTP must be false.
	Submission *Submission
	// Checker, when set, checks the sender authentication (SPF, DKIM,
	// DMARC) of every message received by SMTP (not LMTP) before it is
	// delivered: msgauth.Checker (issue 16).
	Checker Checker
	// SpoolDir is where a message larger than a megabyte waits while
	// Checker reads it (an unlinked temporary file); "" means
	// os.TempDir.
	SpoolDir string
	// IDs numbers connections across the servers of one process.
	IDs     *netserve.IDs
	Logger  *slog.Logger
	Metrics Metrics
}

// Server is an SMTP or LMTP server. Use New, then Serve for each listener,
// and Shutdown once.
type Server struct {
	opt   Options
	proto string
	log   *slog.Logger
	// startTLS is Options.TLSConfig for STARTTLS (netserve.StartTLSConfig).
	startTLS *tls.Config
	// mechs are the SASL mechanisms of submission.
	mechs []string
	// loopback: loopback connections count as secure for plaintext
	// authentication; tests turn it off.
	loopback bool
	// remoteFor, when set, gives the client's address instead of the
	// socket's: tests put a client on another host than loopback.
	remoteFor func(net.Conn) netip.Addr
	// limits counts what each account submitted in the last hour.
	limits *hourlyLimits
	// loginTimeout is Submission.LoginTimeout with its default; 0: none.
	loginTimeout time.Duration

	group netserve.Group // one netserve server per listener
}

// New returns a Server.
func New(opt Options) *Server {
	s := &Server{opt: opt, proto: "smtp", log: opt.Logger, loopback: true, limits: newHourlyLimits(opt.Submission)}
	if sub := opt.Submission; sub != nil {
		s.proto = "submission"
		s.opt.LMTP = false
		s.mechs = sub.SASLMechanisms
		if s.mechs == nil {
			s.mechs = auth.Mechanisms()
		}
		switch s.loginTimeout = sub.LoginTimeout; {
		case s.loginTimeout == 0:
			s.loginTimeout = time.Minute
		case s.loginTimeout < 0:
			s.loginTimeout = 0
		}
	}
	if s.opt.LMTP {
		s.proto = "lmtp"
		// RFC 2033 §5: LMTP runs between trusted hosts; STARTTLS is an
		// SMTP matter here.
		s.opt.TLSConfig = nil
	}
	s.startTLS = netserve.StartTLSConfig(s.opt.TLSConfig)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opt.CommandTimeout <= 0 {
		s.opt.CommandTimeout = 5 * time.Minute
	}
	if s.opt.DataTimeout <= 0 {
		s.opt.DataTimeout = 3 * time.Minute
	}
	if s.opt.MaxBadCommands <= 0 {
		s.opt.MaxBadCommands = 20
	}
	if u := s.opt.UnknownRcpts; s.opt.Submission != nil && u.DelayAfter == 0 && u.Delay == 0 && u.Max == 0 {
		// An authenticated sender who mistypes a local address is not
		// probing: no delays.
		s.opt.UnknownRcpts.DelayAfter = -1
	}
	switch {
	case s.opt.JunkCommands == 0:
		s.opt.JunkCommands = defaultJunkCommands
	case s.opt.JunkCommands < 0:
		s.opt.JunkCommands = 0
	}
	switch {
	case s.opt.ProgressTimeout == 0:
		s.opt.ProgressTimeout = defaultProgressTimeout
	case s.opt.ProgressTimeout < 0:
		s.opt.ProgressTimeout = 0
	}
	s.opt.UnknownRcpts = s.opt.UnknownRcpts.withDefaults(s.opt.LMTP)
	return s
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts implicit-TLS connections (submissions, RFC 8314 §3.3)
// on ln until Shutdown, then returns ErrServerClosed. Options.TLSConfig
// must be set.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opt.TLSConfig == nil {
		ln.Close()
		return errors.New("smtpserver: ServeTLS without TLSConfig")
	}
	return s.serve(ln, true)
}

// ImplicitTLS adapts a Server for callers that start every listener with
// Serve(ln): its Serve is the Server's ServeTLS.
type ImplicitTLS struct{ *Server }

// Serve calls ServeTLS.
func (t ImplicitTLS) Serve(ln net.Listener) error { return t.ServeTLS(ln) }

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	m := s.opt.Metrics
	proto := s.proto
	var tlsConf *tls.Config
	if implicitTLS {
		proto, tlsConf = s.proto+"s", s.opt.TLSConfig
	}
	var loginTimeout time.Duration
	var preAuth *netserve.Budget
	if sub := s.opt.Submission; sub != nil {
		loginTimeout, preAuth = s.loginTimeout, sub.PreAuth
	}
	return s.group.Serve(ln, netserve.ServerOptions{
		Options: netserve.Options{
			Proto:         proto,
			TLSConfig:     tlsConf,
			LoginTimeout:  loginTimeout,
			PreAuth:       preAuth,
			Logger:        s.log,
			MaxConns:      s.opt.MaxConns,
			MaxConnsPerIP: s.opt.MaxConnsPerIP,
			// RFC 5321 §3.8 / RFC 3463 4.7.0: refuse with a 421 greeting.
			BusyReply: "421 4.7.0 " + cmp.Or(s.opt.Hostname, "postfach") + " Too many connections, try again later\r\n",
			IDs:       s.opt.IDs,
			Metrics:   m.ConnMetrics,
		},
		Handler: func(conn net.Conn, tc *netserve.Conn) {
			newSession(s, conn, tc, implicitTLS).run()
		},
	})
}

// Shutdown stops accepting and ends every session: a session waiting for
// a command gets "421 4.3.2 ... shutting down" at once, a message being
// received and stored is answered first. When ctx is done before every
// session ended, the rest are cut off and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.group.Shutdown(ctx, nil)
}
