// Package smtpserver is postfach's mail-in front end: LMTP (RFC 2033) for an
// MTA on the same host and SMTP (RFC 5321) in the MX role, with our own
// protocol layer. Recipients are resolved and messages stored by the
// delivery package (delivery.Deliverer), which `postfach deliver` and the
// other ways mail comes in share.
//
// Only local domains are accepted; there is no relaying and no AUTH (the
// submission role is a later issue). A message is acknowledged only after
// Store.Deliver returned, that is after the store made it durable.
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
	"log/slog"
	"net"
	"time"

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
	// "over_quota" (a recipient refused for its quota).
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
	// UnknownRcpts slows down, then stops, a session that names unknown
	// users (address probing). The zero value means the defaults for
	// SMTP and no limit for LMTP.
	UnknownRcpts UnknownRcptLimits
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

	group netserve.Group // one netserve server per listener
}

// New returns a Server.
func New(opt Options) *Server {
	s := &Server{opt: opt, proto: "smtp", log: opt.Logger}
	if opt.LMTP {
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
	s.opt.UnknownRcpts = s.opt.UnknownRcpts.withDefaults(opt.LMTP)
	return s
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	m := s.opt.Metrics
	return s.group.Serve(ln, netserve.ServerOptions{
		Options: netserve.Options{
			Proto:         s.proto,
			Logger:        s.log,
			MaxConns:      s.opt.MaxConns,
			MaxConnsPerIP: s.opt.MaxConnsPerIP,
			// RFC 5321 §3.8 / RFC 3463 4.7.0: refuse with a 421 greeting.
			BusyReply: "421 4.7.0 " + cmp.Or(s.opt.Hostname, "postfach") + " Too many connections, try again later\r\n",
			IDs:       s.opt.IDs,
			Metrics:   m.ConnMetrics,
		},
		Handler: func(conn net.Conn, tc *netserve.Conn) {
			newSession(s, conn, tc).run()
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
