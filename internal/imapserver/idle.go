package imapserver

import (
	"errors"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/store"
)

// cmdIdle: IDLE (RFC 9051 §6.3.13, RFC 2177). Updates are pushed as soon
// as the store publishes an event: the event's notify function interrupts
// the session's blocked read (see waker), so an idle session needs no
// goroutine besides its own, and holds no buffers while it waits.
func (s *session) cmdIdle(cmd imap.Command) error {
	if err := s.sync(true); err != nil {
		return err
	}
	if err := s.enc.ContinuationRequest("idling"); err != nil {
		return &connError{err}
	}
	s.wake.mu.Lock()
	s.wake.woken = false
	s.wake.mu.Unlock()
	stop := s.watchWithoutNotifier()
	defer stop()
	// RFC 9051 §6.3.13: the client may stay in IDLE for a long time; the
	// idle timeout still applies (clients re-issue IDLE every 29 min).
	s.setBusy(false)
	for {
		err := s.wait(true)
		if errors.Is(err, errWake) {
			if err := s.sync(true); err != nil {
				return err
			}
			if err := s.flush(); err != nil {
				return &connError{err}
			}
			if s.gone {
				return errLogout
			}
			continue
		}
		if err != nil {
			s.readFailed(err)
			return errLogout
		}
		break
	}
	s.setBusy(true)
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.idle))
	err := s.r.ReadDone()
	var pe *imap.ParseError
	switch {
	case errors.As(err, &pe):
		return bad("", "Expected DONE")
	case err != nil:
		return &connError{err}
	}
	s.okText = "IDLE terminated"
	return nil
}

// watchWithoutNotifier wakes the session on events when the store's
// subscription cannot call a function itself: a goroutine waits on its
// channel for as long as the IDLE lasts.
func (s *session) watchWithoutNotifier() (stop func()) {
	if s.sub == nil {
		return func() {}
	}
	if _, ok := s.sub.(store.Notifier); ok {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	c := s.sub.C()
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-c:
				s.wake.notify()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
