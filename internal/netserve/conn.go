package netserve

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Conn is a tracked connection. It is a net.Conn; protocol code reaches it
// from a *tls.Conn with ConnOf.
type Conn struct {
	net.Conn
	l      *Listener
	id     uint64
	ip     string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once

	// srv runs the connection's handler when a Server serves it (nil for
	// a bare Listener); served is the net.Conn the handler was given (the
	// *Conn, or a *tls.Conn over it), closed when the handler ends. Both
	// are set before the handler runs and never change.
	srv    *Server
	served net.Conn
	// arm is set by Park while a handler runs and taken by the Server
	// when the handler has returned; only the goroutine running the
	// handler touches it.
	arm func()

	mu       sync.Mutex
	busy     bool
	draining bool
	// The login deadline and the memory held before login (guarded by
	// mu): loginBy is when the client must have logged in (zero once it
	// has, or without Options.LoginTimeout); held is what Grow charged to
	// the listener's Budget under budgetKey (set at accept, never
	// changed); loggedIn stops the charging.
	loginBy   time.Time
	held      int64
	loggedIn  bool
	budgetKey string
}

// loginWriteGrace is how long after the login deadline a write may still
// take: long enough for the goodbye that says why the connection closes.
const loginWriteGrace = 10 * time.Second

// ConnOf returns the tracked connection under c (which may be a *tls.Conn
// over it), or nil.
func ConnOf(c net.Conn) *Conn {
	for range 4 {
		switch x := c.(type) {
		case *Conn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// ID returns the connection id as it appears in logs (cid).
func (c *Conn) ID() string { return strconv.FormatUint(c.id, 36) }

// Logger returns the connection's logger (with cid, proto and remote).
func (c *Conn) Logger() *slog.Logger { return c.log }

// SetLogger replaces the connection's logger, for example to add the user
// after login.
func (c *Conn) SetLogger(l *slog.Logger) { c.log = l }

// Context is cancelled when the server starts draining or the connection
// closes.
func (c *Conn) Context() context.Context { return c.ctx }

// Draining reports whether the server is shutting down.
func (c *Conn) Draining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// SetBusy marks the connection as in the middle of work that a drain must
// not interrupt (receiving and storing a message). When the server is
// draining, SetBusy(false) makes the next read fail so the session ends.
func (c *Conn) SetBusy(busy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = busy
	if !busy && c.draining {
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// Park asks the Server to keep the connection open when the running
// handler returns. The handler's goroutine then ends: after the handler
// has returned (so nothing of it runs any more), the Server calls arm on
// that goroutine, and arm must see to it that Resume is called exactly
// once later, for example when the connection becomes readable. The
// connection stays counted as open, and Shutdown waits for it, until the
// resumed handler ends without parking again; so whoever parks must also
// resume parked connections when the server shuts down. Park reports
// false, and does nothing, when the connection is not served by a Server
// (a bare Listener's).
func (c *Conn) Park(arm func()) bool {
	if c.srv == nil {
		return false
	}
	c.arm = arm
	return true
}

// Resume serves a parked connection again: h runs on a new goroutine
// with a Handler's guarantees (a panic is recovered and logged and closes
// the connection; the connection is closed when h returns, unless h
// parked it again).
func (c *Conn) Resume(h func()) {
	go c.srv.run(c, h)
}

func (c *Conn) drain() {
	c.mu.Lock()
	c.draining = true
	if !c.busy {
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
	c.cancel()
}

// errDraining is returned by Read on a draining connection. It is a timeout
// so that protocol loops treat it like an idle timeout and say goodbye.
type errDraining struct{}

func (errDraining) Error() string   { return "server shutting down" }
func (errDraining) Timeout() bool   { return true }
func (errDraining) Temporary() bool { return true }

var _ net.Error = errDraining{}

// Read reads from the connection; on a draining connection that is not busy
// it fails at once with a timeout error.
func (c *Conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	stop := c.draining && !c.busy
	c.mu.Unlock()
	if stop {
		return 0, errDraining{}
	}
	return c.Conn.Read(b)
}

// SetReadDeadline sets the read deadline, except on a draining connection
// that is not busy, whose deadline stays in the past. Before login it is
// never later than the login deadline (see LoginDeadline).
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.draining && !c.busy:
		t = time.Unix(1, 0)
	case !c.loginBy.IsZero() && (t.IsZero() || t.After(c.loginBy)):
		t = c.loginBy
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline. Before login it is never
// later than a few seconds after the login deadline, so a client that
// stops reading cannot hold the connection past it either.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	if !c.loginBy.IsZero() {
		if last := c.loginBy.Add(loginWriteGrace); t.IsZero() || t.After(last) {
			t = last
		}
	}
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines, keeping a draining connection's read
// deadline in the past and both within the login deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// LoginDeadline returns when the client must have logged in: the time of
// accept plus Options.LoginTimeout, counted in total (input does not
// restart it). Until then no read deadline is set later than it, so a
// read that waits past it fails with a timeout; LoginExpired then tells
// it from an idle timeout. It is the zero Time after LoggedIn, or when
// the listener has no login timeout.
func (c *Conn) LoginDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loginBy
}

// LoginContext returns the context of a login attempt: it ends with the
// connection's Context (a drain, the connection closing) and at the
// login deadline, so that nothing a login waits for (the delays of the
// guessing protection) outlasts the time the client has to log in. The
// caller must call cancel.
func (c *Conn) LoginContext() (ctx context.Context, cancel context.CancelFunc) {
	if by := c.LoginDeadline(); !by.IsZero() {
		return context.WithDeadline(c.ctx, by)
	}
	return context.WithCancel(c.ctx)
}

// LoginExpired reports whether the login deadline has passed without a
// login.
func (c *Conn) LoginExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.loginBy.IsZero() && !time.Now().Before(c.loginBy)
}

// LoggedIn tells the connection that its client has logged in: the login
// deadline no longer limits the deadlines set from now on, and what it
// held of the Budget is given back. The deadlines set already stay: the
// protocol sets its next ones itself.
func (c *Conn) LoggedIn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loginBy = time.Time{}
	c.loggedIn = true
	c.releaseLocked()
}

// LoggedOut tells the connection that its client is no longer logged in
// (IMAP UNAUTHENTICATE, RFC 8437): the login timeout starts again, and
// Grow charges the Budget again.
func (c *Conn) LoggedOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loggedIn = false
	if d := c.l.opt.LoginTimeout; d > 0 {
		c.loginBy = time.Now().Add(d)
	}
}

// Grow charges n more bytes, which the protocol is about to hold for a
// command of a client that has not logged in, to the client's Budget. It
// reports false, charging nothing, when the client would hold more than
// the Budget allows; the protocol then refuses the command. After login,
// or without a Budget, it charges nothing and reports true.
func (c *Conn) Grow(n int64) bool {
	b := c.l.opt.PreAuth
	if b == nil || n <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loggedIn || c.budgetKey == "" {
		return true
	}
	if !b.grow(c.budgetKey, n) {
		return false
	}
	c.held += n
	return true
}

// Shrink gives back n bytes charged with Grow (at most what is held).
func (c *Conn) Shrink(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n = min(n, c.held)
	if n <= 0 {
		return
	}
	c.held -= n
	c.l.opt.PreAuth.shrink(c.budgetKey, n)
}

// releaseLocked gives back everything held; c.mu must be held.
func (c *Conn) releaseLocked() {
	if c.held > 0 {
		c.l.opt.PreAuth.shrink(c.budgetKey, c.held)
		c.held = 0
	}
}

// RefusedBeforeLogin counts a command refused before login because of
// a limit (reason: "client_memory", "line_too_long", "literal_too_big")
// in the listener's metrics.
func (c *Conn) RefusedBeforeLogin(reason string) {
	if f := c.l.opt.Metrics.PreAuthRefused; f != nil {
		f(c.l.opt.Proto, reason)
	}
}

// Close closes the connection; it may be called more than once.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.cancel()
		c.mu.Lock()
		c.releaseLocked()
		c.mu.Unlock()
		c.l.untrack(c)
		if f := c.l.opt.Metrics.ConnClose; f != nil {
			f(c.l.opt.Proto)
		}
		c.log.Debug("connection closed")
	})
	return err
}
