package netserve

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// ErrServerClosed is returned by Server.Serve after Shutdown.
var ErrServerClosed = errors.New("netserve: server closed")

// Handler serves one connection. conn is the *Conn, or a *tls.Conn over it
// on an implicit-TLS listener; tc is the tracked connection either way
// (logger, context, busy marking). The connection is closed when Handler
// returns.
type Handler func(conn net.Conn, tc *Conn)

// ServerOptions configures a Server.
type ServerOptions struct {
	Options
	Handler Handler
}

// Server runs Handler for every accepted connection, each in its own
// goroutine, recovering panics: a panic is logged with its stack and closes
// that connection only. A handler may park its connection (Conn.Park) and
// have it resumed on a new goroutine later (Conn.Resume). IMAP and POP3
// build on it.
type Server struct {
	opt ServerOptions

	wg sync.WaitGroup // one per connection, from accept until its handler ends without parking

	mu        sync.Mutex
	listeners []*Listener
	closed    bool
}

// NewServer returns a Server; call Serve for each listener.
func NewServer(opt ServerOptions) *Server {
	return &Server{opt: opt}
}

// Serve accepts connections on ln until Shutdown; it then returns
// ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	l := NewListener(ln, s.opt.Options)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				l.log.Warn("accept failed, retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

func (s *Server) serveConn(conn net.Conn) {
	tc := ConnOf(conn)
	tc.srv, tc.served = s, conn
	s.run(tc, func() { s.opt.Handler(conn, tc) })
}

// run runs one stretch of a connection's handler: the Handler itself, or
// a function given to Conn.Resume. When it returns without parking the
// connection (Conn.Park), the connection is closed and counted as ended.
func (s *Server) run(tc *Conn, h func()) {
	parked := false
	defer func() {
		if !parked {
			tc.served.Close()
			s.wg.Done()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			tc.arm = nil
			tc.Logger().Error("panic serving connection", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	h()
	if arm := tc.arm; arm != nil {
		tc.arm = nil
		parked = true
		// From here on the connection belongs to arm and, through it,
		// to whoever resumes it: nothing below may touch it. arm must
		// not panic (the connection would stay open, parked).
		arm()
	}
}

// Shutdown stops accepting, drains every connection (see the package doc)
// and waits for them to end. When ctx is done first, the remaining
// connections are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ls := s.listeners
	s.mu.Unlock()
	for _, l := range ls {
		l.Drain()
	}
	var err error
	for _, l := range ls {
		if werr := l.Wait(ctx); werr != nil {
			err = werr
			break
		}
	}
	if err != nil {
		for _, l := range ls {
			l.CloseAll()
		}
	}
	s.wg.Wait()
	return err
}
