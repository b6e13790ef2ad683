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
}

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
// that is not busy, whose deadline stays in the past.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining && !c.busy {
		t = time.Unix(1, 0)
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines, keeping a draining connection's read
// deadline in the past.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Close closes the connection; it may be called more than once.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.cancel()
		c.l.untrack(c)
		if f := c.l.opt.Metrics.ConnClose; f != nil {
			f(c.l.opt.Proto)
		}
		c.log.Debug("connection closed")
	})
	return err
}
