package imapserver

import (
	"context"
	"errors"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/store"
)

// What a client that has not logged in can cost (issue 11, items 5 and 7).
//
// Before authentication the Reader's limits are small: a command line of
// at most preAuthMaxLine, literals of at most preAuthMaxLiteral (RFC 7888
// §4 lets a server refuse larger ones: a LITERAL+ over it gets BAD [TOOBIG]
// and the connection closes, because the client sends the data anyway; a
// synchronizing one gets BAD without "+"), and what the Reader holds for
// a command is charged to the client's netserve.Budget, which all the
// client's connections share. After LOGIN or AUTHENTICATE the full limits
// apply (SetOptions); UNAUTHENTICATE brings the small ones back.
//
// Timers: a session must log in within Options.LoginTimeout of its
// connection, in total (netserve keeps every read deadline within it).
// The idle timer restarts only at a complete line of command text
// (imap.Options.OnLine) and after every literalBlock bytes of literal
// data, never at a single byte: a client that trickles a byte at a time
// is cut off when the timer ends, while a slow but steady upload of a
// large APPEND is not.

// Limits of a session before authentication.
const (
	preAuthMaxLine    = 8 << 10
	preAuthMaxLiteral = 4 << 10
	// preAuthMaxCommand holds a LOGIN with two literals of the largest
	// size and its lines.
	preAuthMaxCommand = preAuthMaxLine + 2*preAuthMaxLiteral
	// preAuthMaxDiscard: what must be skipped to go on after a refused
	// command beyond this closes the connection.
	preAuthMaxDiscard = preAuthMaxLiteral
)

// literalBlock is how much literal data restarts the idle timer.
const literalBlock = 64 << 10

// defaultLoginTimeout is Options.LoginTimeout's default.
const defaultLoginTimeout = time.Minute

// readerOptions returns the Reader's limits for the session's state.
func (s *session) readerOptions() imap.Options {
	opt := imap.Options{MaxAppend: s.srv.maxMsg, OnLine: s.lineRead}
	if s.state == stateNotAuth {
		opt.MaxLine = preAuthMaxLine
		opt.MaxLiteral = preAuthMaxLiteral
		opt.MaxCommand = preAuthMaxCommand
		opt.MaxDiscard = preAuthMaxDiscard
		if s.tc != nil {
			opt.Budget = s.tc
		}
	}
	return opt
}

// idleDeadline is when a wait for the client that begins now ends: after
// the idle timeout, or at the login deadline if that comes first.
func (s *session) idleDeadline() time.Time {
	d := time.Now().Add(s.srv.idle)
	if s.tc != nil {
		if by := s.tc.LoginDeadline(); !by.IsZero() && by.Before(d) {
			d = by
		}
	}
	return d
}

// lineRead restarts the idle timer after a complete line (the Reader's
// OnLine).
func (s *session) lineRead() {
	s.litRead = 0
	s.setReadDeadline(time.Now().Add(s.srv.idle))
}

// literalProgress counts literal data received and restarts the idle
// timer every literalBlock bytes.
func (s *session) literalProgress(n int) {
	s.litRead += n
	if s.litRead >= literalBlock {
		s.lineRead()
	}
}

// preAuthReason names a Reader limit for the refusal metric.
func preAuthReason(limit string) string {
	switch limit {
	case "memory":
		return "client_memory"
	case "literal":
		return "literal_too_big"
	}
	return "line_too_long"
}

// loginCtx is the context of a login: the guessing protection may make
// it wait, and a shutdown or the login deadline ends the wait
// (netserve.Conn.LoginContext). The caller must call cancel.
func (s *session) loginCtx() (context.Context, context.CancelFunc) {
	if s.tc == nil {
		return context.WithCancel(s.ctx)
	}
	ctx, cancel := s.tc.LoginContext()
	return store.WithOrigin(ctx, s.id), cancel
}

// loginTimedOut ends a session whose login went on past the login
// deadline (the guessing protection's delay was cut off there): RFC 9051
// §7.1.5 BYE, as when the deadline passes while the server waits for a
// command. It reports whether it did.
func (s *session) loginTimedOut(err error) bool {
	if !errors.Is(err, context.DeadlineExceeded) || s.tc == nil || !s.tc.LoginExpired() {
		return false
	}
	_ = s.enc.StatusResponse("", imap.BYE, "", "Login timeout, closing connection")
	s.log.Info("login timeout")
	return true
}

// enterAuthenticated lifts the limits of a client that has not logged in.
func (s *session) enterAuthenticated() {
	s.r.SetOptions(s.readerOptions())
	if s.tc != nil {
		s.tc.LoggedIn()
	}
	s.setReadDeadline(time.Now().Add(s.srv.idle))
}

// leaveAuthenticated brings back the limits and the login timeout of a
// client that has not logged in (UNAUTHENTICATE).
func (s *session) leaveAuthenticated() {
	if s.tc != nil {
		s.tc.LoggedOut()
	}
	s.r.SetOptions(s.readerOptions())
}
