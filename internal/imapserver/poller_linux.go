//go:build linux

package imapserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// parkSupported: parked sessions wait in an epoll instance (poller).
const parkSupported = true

// poller is where parked sessions wait for their connection to become
// readable (park.go): one epoll instance owned by the Server and one
// goroutine waiting on it. A connection's fd is also in Go's own netpoller;
// ours watches it only while the session is parked, one-shot
// (EPOLLONESHOT), and re-arms it (EPOLL_CTL_MOD) at the next park.
type poller struct {
	epfd int
	evfd int // eventfd that ends the wait at close
	log  *slog.Logger
	done chan struct{} // closed when the goroutine has returned

	// closing is set, under mu, by close: no session parks any more.
	closing atomic.Bool

	mu     sync.Mutex
	parked map[int32]*session // by fd; guarded by mu
}

// newPoller starts the poller's goroutine; close ends it.
func newPoller(log *slog.Logger) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	p := &poller{epfd: epfd, evfd: evfd, log: log, done: make(chan struct{}), parked: map[int32]*session{}}
	go p.run()
	return p, nil
}

// run waits for readable connections and resumes their sessions. It
// returns when close signals the eventfd, or on an unexpected epoll
// error, after which every parked session is resumed and none parks.
func (p *poller) run() {
	defer close(p.done)
	var evs [128]unix.EpollEvent
	for {
		n, err := unix.EpollWait(p.epfd, evs[:], -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			p.log.Error("epoll_wait failed, idle sessions keep their goroutines from now on", "err", err)
			p.stop()
			return
		}
		stop := false
		for i := range evs[:n] {
			fd := evs[i].Fd
			if fd == int32(p.evfd) {
				stop = true
				continue
			}
			p.mu.Lock()
			s := p.parked[fd]
			p.mu.Unlock()
			if s != nil {
				// Readable, or hung up (EPOLLRDHUP, EPOLLHUP, EPOLLERR):
				// the resumed session's read finds out which.
				s.unpark()
			}
		}
		if stop {
			return
		}
	}
}

// add registers a parked session's connection (one-shot, readable or
// hung up). The caller holds s.wake.mu. It fails with errPollerClosed once
// close has begun.
func (p *poller) add(s *session) error {
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		return errPollerClosed
	}
	p.parked[s.fd] = s
	p.mu.Unlock()
	var ctlErr error
	err := s.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
		// Registered at an earlier park (armed or not): re-arm it.
		ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(ctlErr, unix.ENOENT) {
			ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err == nil && ctlErr != nil {
		err = fmt.Errorf("epoll_ctl: %w", ctlErr)
	}
	if err != nil {
		p.forget(s)
		return err
	}
	return nil
}

// forget removes a session that is no longer parked. Its fd stays
// registered (disarmed, or armed until it fires once): a late event finds
// no session, or a session parked again, which is resumed needlessly and
// parks again.
func (p *poller) forget(s *session) {
	p.mu.Lock()
	if p.parked[s.fd] == s {
		delete(p.parked, s.fd)
	}
	p.mu.Unlock()
}

// len returns the number of parked sessions.
func (p *poller) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// stop makes sure no session parks any more and resumes every parked one.
func (p *poller) stop() {
	p.mu.Lock()
	p.closing.Store(true)
	parked := make([]*session, 0, len(p.parked))
	for _, s := range p.parked {
		parked = append(parked, s)
	}
	p.mu.Unlock()
	for _, s := range parked {
		s.unpark()
	}
}

// close resumes every parked session (they see the shutdown when they
// read), ends the goroutine and closes the epoll instance. Sessions that
// were about to park are resumed too: add refuses them. When close
// returns, no session is parked or parks.
func (p *poller) close() {
	p.stop()
	one := [8]byte{1}
	if _, err := unix.Write(p.evfd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		p.log.Error("poller: eventfd write failed", "err", err)
	}
	<-p.done
	unix.Close(p.evfd)
	unix.Close(p.epfd)
}

// tryRead reads what the connection holds without waiting for more:
// again is true when there is nothing (EAGAIN). It reads the fd itself
// (Go's sockets are non-blocking), bypassing the read deadline, which
// may be in the past after an interrupted wait.
func (s *session) tryRead(b []byte) (n int, again bool, err error) {
	var rerr error
	if cerr := s.raw.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Read(int(fd), b)
			if !errors.Is(rerr, unix.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return 0, false, cerr
	}
	switch {
	case errors.Is(rerr, unix.EAGAIN):
		return 0, true, nil
	case rerr != nil:
		return 0, false, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, false, io.EOF
	}
	return n, false, nil
}
