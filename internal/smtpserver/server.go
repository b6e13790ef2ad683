// Package smtpserver is postfach's mail-in front end: LMTP (RFC 2033) for an
// MTA on the same host and SMTP (RFC 5321) in the MX role, both on
// github.com/emersion/go-smtp, and the delivery pipeline (Deliverer) they
// share with `postfach deliver`.
//
// Only local domains are accepted; there is no relaying and no AUTH (the
// submission role is a later issue). A message is acknowledged only after
// Store.Deliver returned, that is after the store made it durable.
//
// # Concurrency
//
// go-smtp runs one goroutine per connection and calls the Session methods
// serially from it (LMTPData from a helper goroutine while the connection
// goroutine waits). A session's fields are owned by that connection.
package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("smtpserver: server closed")

// Metrics are optional hooks for counters and histograms; any may be nil.
type Metrics struct {
	// Delivered is called once per message that reached the store, with
	// the number of recipients delivered and failed and the time spent
	// storing it.
	Delivered func(proto string, ok, failed int, d time.Duration)
	// Error counts failures by kind: "too_big", "disk_full", "store",
	// "unknown_user", "relay_denied", "bad_address", "empty".
	Error func(proto, kind string)
	// ConnOpen, ConnClose and ConnReject count connections.
	ConnOpen   func(proto string)
	ConnClose  func(proto string)
	ConnReject func(proto, reason string)
}

// Options configures a Server.
type Options struct {
	// LMTP selects LMTP (per-recipient replies after DATA) instead of SMTP.
	LMTP bool
	// Deliverer resolves recipients and stores messages.
	Deliverer *Deliverer
	// Hostname is the name in the greeting.
	Hostname string
	// MaxMessageSize is advertised with SIZE and enforced while streaming.
	MaxMessageSize int64
	// MaxRecipients per message (RFC 5321 §4.5.3.1.8: at least 100).
	MaxRecipients int
	// CommandTimeout is how long to wait for the next command
	// (RFC 5321 §4.5.3.2.7); DataTimeout for each block of message data
	// (§4.5.3.2.5).
	CommandTimeout, DataTimeout time.Duration
	// TLSConfig enables STARTTLS (SMTP only).
	TLSConfig *tls.Config
	// MaxConns and MaxConnsPerIP limit connections; over a limit the client
	// gets 421 4.7.0 and is disconnected.
	MaxConns, MaxConnsPerIP int
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
	smtp  *smtp.Server

	mu        sync.Mutex
	listeners []*netserve.Listener
	closing   bool
}

// New returns a Server.
func New(opt Options) *Server {
	s := &Server{opt: opt, proto: "smtp", log: opt.Logger}
	if opt.LMTP {
		s.proto = "lmtp"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.LMTP = opt.LMTP
	srv.Domain = opt.Hostname
	srv.MaxMessageBytes = opt.MaxMessageSize
	srv.MaxRecipients = opt.MaxRecipients
	srv.ReadTimeout = opt.CommandTimeout
	srv.WriteTimeout = opt.CommandTimeout
	srv.ErrorLog = slogPrinter{s.log.With("proto", s.proto)}
	if !opt.LMTP {
		srv.TLSConfig = opt.TLSConfig
	}
	// RFC 6531 SMTPUTF8: the store keeps the bytes as delivered and the
	// address matching is byte-wise case-insensitive, so UTF-8 addresses
	// and headers pass through.
	srv.EnableSMTPUTF8 = true
	s.smtp = srv
	return s
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	m := s.opt.Metrics
	l := netserve.NewListener(ln, netserve.Options{
		Proto:         s.proto,
		Logger:        s.log,
		MaxConns:      s.opt.MaxConns,
		MaxConnsPerIP: s.opt.MaxConnsPerIP,
		// RFC 5321 §3.8 / RFC 3463 4.7.0: refuse with a 421 greeting.
		BusyReply: "421 4.7.0 " + s.opt.Hostname + " Too many connections, try again later\r\n",
		IDs:       s.opt.IDs,
		OnOpen:    hook0(m.ConnOpen, s.proto),
		OnClose:   hook0(m.ConnClose, s.proto),
		OnReject: func(reason string) {
			if m.ConnReject != nil {
				m.ConnReject(s.proto, reason)
			}
		},
	})
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	err := s.smtp.Serve(l)
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing || err == nil {
		return ErrServerClosed
	}
	return err
}

func hook0(f func(string), proto string) func() {
	if f == nil {
		return nil
	}
	return func() { f(proto) }
}

// Shutdown stops accepting and ends every session: idle sessions get
// "421 4.4.2" at once, a message being received is stored and answered
// first. When ctx is done before every session ended, the rest are cut off
// and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	ls := s.listeners
	s.mu.Unlock()
	for _, l := range ls {
		l.Drain()
	}
	err := s.smtp.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	if ctx.Err() != nil {
		s.smtp.Close()
		for _, l := range ls {
			l.CloseAll()
		}
		return ctx.Err()
	}
	// Other errors come from closing listeners that Drain already closed.
	return nil
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	tc := netserve.ConnOf(c.Conn())
	log := s.log
	if tc != nil {
		log = tc.Logger()
	}
	sess := &session{s: s, conn: c, tc: tc, log: log}
	if ta, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		sess.remoteIP = ta.IP.String()
	}
	return sess, nil
}

// slogPrinter adapts go-smtp's Printf logger to slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "panic") {
		p.l.Error("smtp server", "detail", msg)
		return
	}
	p.l.Debug("smtp server", "detail", msg)
}

func (p slogPrinter) Println(v ...any) { p.Printf("%s", fmt.Sprintln(v...)) }

// isTooLarge reports whether err is go-smtp's or the store's size error.
func isTooLarge(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code == 552 {
		return true
	}
	return errors.Is(err, store.ErrTooBig)
}
