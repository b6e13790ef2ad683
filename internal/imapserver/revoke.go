package imapserver

import (
	"errors"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/store"
)

// Ending a session at once (issue 14): when its account is deleted, or the
// device it signed in as is revoked (store.EventDeviceRevoked), a session
// ends within moments whatever it is doing: waiting for a command, in
// IDLE, parked, or reading a command. The store's event hook
// (store.EventNotifier) runs on the publisher: it records the reason in
// the waker and sets the read deadline into the past, or resumes a parked
// session. Every later deadline the session sets goes through
// setReadDeadline, which keeps it in the past once the session is ended,
// so no read can block past the kill. The session says BYE at the next
// point it reaches (readFailed, or after the command it is running).

// Reasons a session is ended; they are the BYE texts.
const (
	killAccount = "Account removed, closing connection"
	killDevice  = "Access of this device revoked, closing connection"
)

// errKilled ends a wait of a session that was ended.
var errKilled = errors.New("session ended by revocation")

// watchRevocation makes the store's publisher end the session on the
// events that must end it (see above). Without an EventNotifier the
// session finds them at its next command, as before.
func (s *session) watchRevocation() {
	en, ok := s.sub.(store.EventNotifier)
	if !ok || s.user == nil {
		return
	}
	device := s.user.Device
	en.SetEventNotify(func(ev store.Event) {
		switch {
		case ev.Kind == store.EventAccountDeleted:
			s.kill(killAccount)
		case ev.Kind == store.EventDeviceRevoked && device != "" && ev.Name == device:
			s.kill(killDevice)
		}
	})
}

// kill ends the session from another goroutine (the event publisher):
// quick, and without calling into the store.
func (s *session) kill(reason string) {
	w := &s.wake
	w.mu.Lock()
	if w.killed != "" {
		w.mu.Unlock()
		return
	}
	w.killed = reason
	if w.conn != nil {
		_ = w.conn.SetReadDeadline(time.Unix(1, 0))
	}
	resume := w.parked
	w.mu.Unlock()
	if resume {
		s.unpark()
	}
}

// killedReason returns why the session was ended, "" when it was not.
func (s *session) killedReason() string {
	s.wake.mu.Lock()
	defer s.wake.mu.Unlock()
	return s.wake.killed
}

// setReadDeadline sets the connection's read deadline, unless the session
// was ended: its deadline then stays in the past.
func (s *session) setReadDeadline(t time.Time) {
	s.wake.mu.Lock()
	s.setReadDeadlineLocked(t)
	s.wake.mu.Unlock()
}

// setReadDeadlineLocked is setReadDeadline with wake.mu held.
func (s *session) setReadDeadlineLocked(t time.Time) {
	if s.wake.killed != "" {
		t = time.Unix(1, 0)
	}
	_ = s.conn.SetReadDeadline(t)
}

// byeIfKilled says BYE to a session that was ended and reports whether it
// was.
func (s *session) byeIfKilled() bool {
	reason := s.killedReason()
	if reason == "" {
		return false
	}
	if s.bw == nil {
		s.acquire()
	}
	_ = s.enc.StatusResponse("", imap.BYE, "", reason)
	_ = s.flush()
	if reason == killDevice {
		s.log.Info("session ended: device revoked")
	} else {
		s.log.Info("session ended: account removed")
	}
	return true
}
