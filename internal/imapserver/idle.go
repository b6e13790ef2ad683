package imapserver

import (
	"errors"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/store"
)

// idling is an IDLE command in progress.
type idling struct {
	base imap.CommandBase
	stop func() // ends the watcher goroutine, if any
}

// errIdling tells finish that IDLE has started: its tagged response comes
// when the client sends DONE.
var errIdling = errors.New("idling")

// cmdIdle: IDLE (RFC 9051 §6.3.13, RFC 2177). Updates are pushed as soon
// as the store publishes an event: the event's notify function resumes
// the parked session, or interrupts its blocked read (see waker), so an
// idle session needs no goroutine of its own (none at all when parked)
// and holds no buffers while it waits. The waiting itself happens in the
// session's main loop (loop), where the goroutine's stack is shallow.
func (s *session) cmdIdle(cmd imap.Command) error {
	// Forget earlier wakes before the sync reads the store, not after: an
	// event that arrives during the sync must wake the idling session
	// (at worst the wake finds nothing new to report).
	s.wake.mu.Lock()
	s.wake.woken = false
	s.wake.mu.Unlock()
	if err := s.sync(true); err != nil {
		return err
	}
	if err := s.enc.ContinuationRequest("idling"); err != nil {
		return &connError{err}
	}
	s.idle = &idling{base: *cmd.Base(), stop: s.watchWithoutNotifier()}
	return errIdling
}

// idleStep handles the end of one wait in IDLE, or of a NOTIFY session
// between commands (run calls s.wait(true) itself, so the goroutine's
// stack is shallow while it waits and can shrink): store events are
// pushed, DONE answers the IDLE command. A non-nil error ends the session
// (after its response or BYE was written).
func (s *session) idleStep(err error) error {
	if errors.Is(err, errWake) {
		return s.pushWake()
	}
	if s.idle == nil {
		// NOTIFY between commands: the connection ended or timed out.
		s.readFailed(err)
		return errLogout
	}
	id := s.idle
	id.stop()
	s.idle = nil
	if err != nil {
		s.readFailed(err)
		return errLogout
	}
	s.setBusy(true)
	// DONE must be complete by the wait's deadline; a byte trickle does
	// not restart it.
	s.setReadDeadline(s.waitUntil)
	err = s.r.ReadDone()
	var pe *imap.ParseError
	switch {
	case errors.As(err, &pe):
		err = bad("", "Expected DONE")
	case err != nil:
		return &connError{err}
	default:
		s.okCode, s.okText = "", "IDLE terminated"
	}
	return s.finish(&id.base, err)
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
				s.notifyWake()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
