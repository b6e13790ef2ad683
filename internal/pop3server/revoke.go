package pop3server

import (
	"sync"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// Ending a session at once (issue 14): when the account is deleted, or the
// device the session signed in as is revoked (store.EventDeviceRevoked),
// the store's event hook (store.EventNotifier) records why and sets the
// read deadline into the past, so the session's wait for its next command
// ends; the session then says why and closes without the UPDATE state
// (nothing it DELEd is removed). A command in progress finishes first.
// Every read deadline the session sets goes through setReadDeadline,
// which keeps it in the past once the session is ended.

// Why a session was ended: the responses sent (RFC 3206 codes).
const (
	killAccount = "-ERR " + codeSysPerm + "Account deleted, closing connection"
	killDevice  = "-ERR " + codeAuth + "Access of this device revoked, closing connection"
)

// killer is the part of a session that the event publisher touches.
type killer struct {
	mu     sync.Mutex
	killed string // the response to send; "" while not ended; guarded by mu
}

// watchRevocation makes the publisher end the session on the events that
// must end it; device is the device it signed in as ("" for none).
func (x *session) watchRevocation(sub store.Subscription, device string) {
	en, ok := sub.(store.EventNotifier)
	if !ok {
		return
	}
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
func (x *session) kill(reply string) {
	x.k.mu.Lock()
	defer x.k.mu.Unlock()
	if x.k.killed != "" {
		return
	}
	x.k.killed = reply
	_ = x.conn.SetReadDeadline(time.Unix(1, 0))
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

// endIfKilled sends the reason to a session that was ended and reports
// whether it was.
func (x *session) endIfKilled() bool {
	x.k.mu.Lock()
	reply := x.k.killed
	x.k.mu.Unlock()
	if reply == "" {
		return false
	}
	x.reply("%s", reply)
	_ = x.w.Flush()
	if reply == killDevice {
		x.log.Info("session ended: device revoked; nothing deleted")
	} else {
		x.log.Info("session ended: account deleted; nothing deleted")
	}
	return true
}
