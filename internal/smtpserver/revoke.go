package smtpserver

import (
	"sync"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// Ending a submission session at once (issue 14): when the account it
// signed in as is deleted, or the device it signed in as is revoked
// (store.EventDeviceRevoked), the store's event hook (store.EventNotifier)
// records why and sets the read deadline into the past, so the session's
// wait for its next command (or for message data) ends; the session then
// says 421 with the reason and closes. A message being stored finishes
// first; one being received is cut off, and nothing of it is sent.
// Every read deadline the session sets goes through setReadDeadline,
// which keeps it in the past once the session is ended.

// Subscriber gives a submission session its account's events.
type Subscriber interface {
	Subscribe(acct store.AccountID) store.Subscription
}

// Why a session was ended: the texts of its 421.
const (
	killAccount = "Account deleted, closing connection"
	killDevice  = "Access of this device revoked, closing connection"
)

// killer is the part of a session the event publisher touches.
type killer struct {
	mu     sync.Mutex
	killed string // the reason; "" while not ended; guarded by mu
	sub    store.Subscription
}

// watchRevocation subscribes the signed-in session to its account's
// events and makes the publisher end it on the ones that must.
func (x *session) watchRevocation(events Subscriber) {
	sub := events.Subscribe(x.user.Account)
	x.k.sub = sub
	en, ok := sub.(store.EventNotifier)
	if !ok {
		return
	}
	device := x.user.Device
	en.SetEventNotify(func(ev store.Event) {
		switch {
		case ev.Kind == store.EventAccountDeleted:
			x.kill(killAccount)
		case ev.Kind == store.EventDeviceRevoked && device != "" && ev.Name == device:
			x.kill(killDevice)
		}
	})
}

// kill ends the session from the event publisher: quick, without calling
// into the store.
func (x *session) kill(reason string) {
	x.k.mu.Lock()
	defer x.k.mu.Unlock()
	if x.k.killed != "" {
		return
	}
	x.k.killed = reason
	_ = x.conn.SetReadDeadline(time.Unix(1, 0))
}

// killedReason is why the session was ended, "" when it was not.
func (x *session) killedReason() string {
	x.k.mu.Lock()
	defer x.k.mu.Unlock()
	return x.k.killed
}

// setReadDeadline sets the read deadline unless the session was ended.
func (x *session) setReadDeadline(t time.Time) {
	x.k.mu.Lock()
	defer x.k.mu.Unlock()
	if x.k.killed != "" {
		t = time.Unix(1, 0)
	}
	_ = x.conn.SetReadDeadline(t)
}

// endIfKilled says 421 with the reason to a session that was ended and
// reports whether it was.
func (x *session) endIfKilled() bool {
	reason := x.killedReason()
	if reason == "" {
		return false
	}
	x.goodbye("4.7.0", reason)
	if reason == killDevice {
		x.log.Info("session ended: device revoked")
	} else {
		x.log.Info("session ended: account deleted")
	}
	return true
}

// stopWatching ends the subscription of a session that signed in.
func (x *session) stopWatching() {
	x.k.mu.Lock()
	sub := x.k.sub
	x.k.sub = nil
	x.k.mu.Unlock()
	if sub != nil {
		if en, ok := sub.(store.EventNotifier); ok {
			en.SetEventNotify(nil)
		}
		sub.Close()
	}
}
