package netserve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Listen opens a listener for addr: "unix:PATH" is a unix socket (a stale
// socket file from an earlier run is removed first; the socket is made
// 0660), anything else a TCP host:port.
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, errors.New("listen: unix: needs a path")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			// A live server holds the store lock, so a socket file that
			// exists now was left by a process that is gone.
			_ = os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// IDs hands out connection ids, unique within one process run when every
// listener of a server shares one IDs. The zero value is ready to use.
type IDs struct{ n atomic.Uint64 }

// Next returns a new id.
func (g *IDs) Next() uint64 { return g.n.Add(1) }

// Options configures a Listener.
type Options struct {
	// Proto names the protocol in logs and metrics ("lmtp", "smtp", ...).
	Proto string
	// Logger is the parent of the per-connection loggers; nil discards.
	Logger *slog.Logger
	// MaxConns limits open connections in total; 0 means no limit.
	MaxConns int
	// MaxConnsPerIP limits open connections per client IP (TCP only); 0
	// means no limit.
	MaxConnsPerIP int
	// BusyReply is written to a client turned away by a limit, before the
	// connection is closed (for example "421 4.7.0 Too many connections\r\n").
	// Not written on implicit-TLS listeners.
	BusyReply string
	// TLSConfig, when set, makes this an implicit-TLS listener: Accept
	// returns *tls.Conn wrapping the tracked *Conn.
	TLSConfig *tls.Config
	// IDs numbers connections; nil uses a listener-local counter.
	IDs *IDs
	// LoginTimeout, when positive, is how long a connection may take to
	// log in, from accept, in total (see Conn.LoginDeadline). Protocols
	// without a login (SMTP, LMTP) leave it 0.
	LoginTimeout time.Duration
	// PreAuth, when set, bounds the memory the connections of one client
	// hold before login (see Budget); share one among the listeners of a
	// server.
	PreAuth *Budget
	// Metrics counts the connections, under Proto.
	Metrics ConnMetrics
}

// ConnMetrics are hooks that count connections; any may be nil. The
// protocol servers embed them in their own Metrics and hand them to
// netserve, which calls them with the listener's Proto.
type ConnMetrics struct {
	ConnOpen   func(proto string)
	ConnClose  func(proto string)
	ConnReject func(proto, reason string)
	// PreAuthRefused counts commands refused before login because of a
	// limit (Conn.RefusedBeforeLogin).
	PreAuthRefused func(proto, reason string)
}

// Listener is a net.Listener that tracks its connections. Accept returns
// *Conn (or *tls.Conn over *Conn with Options.TLSConfig).
type Listener struct {
	inner net.Listener
	opt   Options
	log   *slog.Logger
	ids   *IDs

	rejects sync.WaitGroup // busy replies being written

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	perIP    map[string]int
	draining bool
	empty    chan struct{} // closed when draining and no connection is left; nil before
}

// NewListener wraps inner.
func NewListener(inner net.Listener, opt Options) *Listener {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids := opt.IDs
	if ids == nil {
		ids = new(IDs)
	}
	return &Listener{
		inner: inner,
		opt:   opt,
		log:   log,
		ids:   ids,
		conns: map[*Conn]struct{}{},
		perIP: map[string]int{},
	}
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the listener; open connections are not affected.
func (l *Listener) Close() error { return l.inner.Close() }

// Len returns the number of open connections.
func (l *Listener) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Accept waits for the next connection within the limits. Connections over
// a limit get Options.BusyReply and are closed without being returned.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			return nil, err
		}
		c, reason := l.track(raw)
		if c == nil {
			l.reject(raw, reason)
			continue
		}
		if f := l.opt.Metrics.ConnOpen; f != nil {
			f(l.opt.Proto)
		}
		c.log.Debug("connection opened")
		if l.opt.TLSConfig != nil {
			return tls.Server(c, l.opt.TLSConfig), nil
		}
		return c, nil
	}
}

// ipKey names the client whose connections MaxConnsPerIP counts: the
// IPv4 address, or the IPv6 /64, as for the pre-login budget and the
// guessing protection. One subscriber usually holds a whole /64, so a
// limit per IPv6 address would let one client take every connection.
func ipKey(a net.Addr) string { return clientKey(a) }

func (l *Listener) track(raw net.Conn) (*Conn, string) {
	ip := ipKey(raw.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.draining:
		return nil, "shutting down"
	case l.opt.MaxConns > 0 && len(l.conns) >= l.opt.MaxConns:
		return nil, "too many connections"
	case ip != "" && l.opt.MaxConnsPerIP > 0 && l.perIP[ip] >= l.opt.MaxConnsPerIP:
		return nil, "too many connections from this address"
	}
	id := l.ids.Next()
	remote := raw.RemoteAddr().String()
	if remote == "" || remote == "@" {
		remote = "local"
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		Conn:      raw,
		l:         l,
		id:        id,
		ip:        ip,
		ctx:       ctx,
		cancel:    cancel,
		log:       l.log.With("cid", strconv.FormatUint(id, 36), "proto", l.opt.Proto, "remote", remote),
		budgetKey: clientKey(raw.RemoteAddr()),
	}
	if l.opt.LoginTimeout > 0 {
		// Bounded from the start, even before the protocol sets a
		// deadline of its own.
		c.loginBy = time.Now().Add(l.opt.LoginTimeout)
		_ = raw.SetReadDeadline(c.loginBy)
		_ = raw.SetWriteDeadline(c.loginBy.Add(loginWriteGrace))
	}
	l.conns[c] = struct{}{}
	if ip != "" {
		l.perIP[ip]++
	}
	return c, ""
}

func (l *Listener) untrack(c *Conn) {
	l.mu.Lock()
	if _, ok := l.conns[c]; ok {
		delete(l.conns, c)
		if c.ip != "" {
			if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
				delete(l.perIP, c.ip)
			}
		}
		if l.draining && len(l.conns) == 0 && l.empty != nil {
			close(l.empty)
			l.empty = nil
		}
	}
	l.mu.Unlock()
}

func (l *Listener) reject(raw net.Conn, reason string) {
	l.log.Warn("connection refused", "proto", l.opt.Proto, "remote", raw.RemoteAddr().String(), "reason", reason)
	if f := l.opt.Metrics.ConnReject; f != nil {
		f(l.opt.Proto, reason)
	}
	if l.opt.BusyReply == "" || l.opt.TLSConfig != nil {
		raw.Close()
		return
	}
	l.rejects.Add(1)
	go func() {
		defer l.rejects.Done()
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(raw, l.opt.BusyReply)
	}()
}

// Drain closes the listener and marks every open connection as draining:
// their contexts are cancelled and reads on connections that are not busy
// fail at once (see the package doc).
func (l *Listener) Drain() {
	l.inner.Close()
	l.mu.Lock()
	l.draining = true
	if l.empty == nil && len(l.conns) > 0 {
		l.empty = make(chan struct{})
	}
	conns := make([]*Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.drain()
	}
}

// Wait waits until every connection has closed, or ctx is done.
func (l *Listener) Wait(ctx context.Context) error {
	l.mu.Lock()
	if !l.draining {
		l.draining = true
		if len(l.conns) > 0 && l.empty == nil {
			l.empty = make(chan struct{})
		}
	}
	empty := l.empty
	l.mu.Unlock()
	if empty != nil {
		select {
		case <-empty:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.rejects.Wait()
	return nil
}

// CloseAll closes every open connection at once.
func (l *Listener) CloseAll() {
	l.mu.Lock()
	conns := make([]*Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.log.Warn("connection cut off at shutdown")
		c.Close()
	}
}
