package imapserver

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/postfach/postfach/internal/netserve"
)

// Parking: a session that waits for its client with nothing buffered
// (between commands, or in IDLE) need not keep a goroutine. It registers
// its connection with the Server's poller (one epoll instance and one
// goroutine, poller_linux.go) and its goroutine ends (netserve.Conn.Park);
// all of its state is on the heap already. It is resumed on a new
// goroutine (netserve.Conn.Resume, Server.resume) by the
// first of:
//
//   - its connection becoming readable or hung up (the poller);
//   - a store event, when the wait is interruptible (IDLE, or NOTIFY
//     between commands; notifyWake);
//   - its idle timeout (a timer per session, reset at each park);
//   - Shutdown (poller.close resumes every parked session before the
//     connections are drained).
//
// A session parks only after waiting Server.parkAfter (defaultParkAfter)
// in a read; a busy client's next command arrives before.
//
// Resumed, the session re-enters the same wait (wait keeps waitUntil) and
// decides again: it reports the event, reads what arrived, times out, says
// BYE to a shutdown, or parks again when the wake-up was for nothing (a
// stale one-shot event or timer). So a resumption for a wrong reason is
// harmless, and the one rule is that a parked session is resumed exactly
// once: whoever flips wake.parked from true to false (unpark) resumes it.
//
// Only plaintext sessions without COMPRESS park: a tls.Conn may hold
// decrypted bytes that the fd does not show, and the inflater's input
// likewise. They wait in a blocked read, as all sessions do on platforms
// without epoll (poller_other.go).
//
// Locking: wake.mu guards parked, parkedInterruptible, noPark and timer;
// arm holds it while it registers with the poller, so no one can resume
// the session before it is fully parked. Lock order: wake.mu, then
// poller.mu; the poller never calls into a session with its mu held.

// defaultParkAfter is how long a waiting session keeps its goroutine,
// blocked in a read, before it parks. A client in the middle of its work
// (a sync, a burst of commands) sends its next command within a round
// trip, and a parked session is resumed through the poller's goroutine,
// which costs a thread hand-off (about 7 µs more per command round trip
// on loopback, BenchmarkNoopRoundTrip) — so only sessions that stay idle
// longer than this park. In IDLE they park after the "+ idling" and
// after each push.
const defaultParkAfter = time.Second

// errPark is returned by wait when the session should park.
var errPark = errors.New("park")

// errPollerClosed is returned by poller.add once Shutdown has begun.
var errPollerClosed = errors.New("poller closed")

// initPark finds the fd of a plaintext TCP connection served by netserve,
// which is what may park.
func (s *session) initPark(conn net.Conn, tc *netserve.Conn) {
	if !parkSupported || tc == nil || conn != net.Conn(tc) || !s.srv.parking {
		return
	}
	sc, ok := tc.Conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	fd := -1
	if raw.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return
	}
	s.raw, s.fd = raw, int32(fd)
}

// parkable reports whether the session may park now: plaintext, no
// COMPRESS, a poller, no shutdown begun and no earlier failure to
// register.
func (s *session) parkable() bool {
	if s.raw == nil || s.tls || s.comp != nil {
		return false
	}
	p := s.srv.poller()
	if p == nil || p.closing.Load() {
		return false
	}
	s.wake.mu.Lock()
	ok := !s.wake.noPark
	s.wake.mu.Unlock()
	return ok
}

// park hands the connection to netserve to be parked once the session's
// goroutine has returned (then arm runs). It reports false when netserve
// cannot park it; the session then waits in a blocked read.
func (s *session) park(interruptible bool) bool {
	if s.tc.Park(func() { s.arm(interruptible) }) {
		return true
	}
	s.wake.mu.Lock()
	s.wake.noPark = true
	s.wake.mu.Unlock()
	return false
}

// arm parks the session: it registers the connection with the poller and
// starts the idle timer. It runs on the session's last goroutine after
// the session code returned (netserve.Conn.Park), so it may read the
// session's fields; once wake.mu is released, the session belongs to
// whoever resumes it.
func (s *session) arm(interruptible bool) {
	w := &s.wake
	w.mu.Lock()
	if interruptible && w.woken {
		// An event arrived after wait looked: report it now.
		w.mu.Unlock()
		s.srv.resume(s)
		return
	}
	p := s.srv.poll.Load()
	err := errPollerClosed
	if p != nil {
		err = p.add(s)
	}
	if err != nil {
		if !errors.Is(err, errPollerClosed) {
			// Out of epoll watches, for example: this session waits in
			// a blocked read from now on.
			w.noPark = true
			now := time.Now().UnixNano()
			if last := s.srv.parkWarned.Load(); now-last >= int64(time.Minute) && s.srv.parkWarned.CompareAndSwap(last, now) {
				s.log.Warn("cannot park idle session, it waits in a blocked read (logged once a minute)", "err", err)
			}
		}
		w.mu.Unlock()
		s.srv.resume(s)
		return
	}
	w.parked, w.parkedInterruptible = true, interruptible
	d := time.Until(s.waitUntil)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, s.unpark)
	} else {
		w.timer.Reset(d)
	}
	w.mu.Unlock()
}

// unpark resumes the session if it is parked; otherwise it does nothing.
// The poller, the idle timer, notifyWake and Shutdown call it.
func (s *session) unpark() {
	w := &s.wake
	w.mu.Lock()
	if !w.parked {
		w.mu.Unlock()
		return
	}
	w.parked = false
	w.timer.Stop()
	if p := s.srv.poll.Load(); p != nil {
		p.forget(s)
	}
	w.mu.Unlock()
	s.srv.resume(s)
}

// resume continues a parked session on a new goroutine: back into the
// wait it parked in (serve, through Server.serveParked: a direct
// reference from here to serve would close an initialization cycle
// through the dispatch table, commands).
func (srv *Server) resume(s *session) {
	s.tc.Resume(func() { srv.serveParked(s) })
}

// stopParking ends the idle timer when the session ends.
func (s *session) stopParking() {
	w := &s.wake
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.mu.Unlock()
}

// poller returns the Server's poller, starting it on first use; nil when
// parking is off, unavailable on this platform or system, or Shutdown has
// begun.
func (srv *Server) poller() *poller {
	if p := srv.poll.Load(); p != nil {
		return p
	}
	if !parkSupported || !srv.parking {
		return nil
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if p := srv.poll.Load(); p != nil {
		return p
	}
	if srv.closing || time.Now().Before(srv.pollRetry) {
		return nil
	}
	p, err := newPoller(srv.log)
	if err != nil {
		// Out of file descriptors, for example: try again later.
		srv.pollRetry = time.Now().Add(time.Minute)
		srv.log.Warn("idle sessions cannot park, they keep their goroutines; retrying in a minute", "err", err)
		return nil
	}
	srv.poll.Store(p)
	return p
}
