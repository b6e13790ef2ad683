package pop3server

import (
	"context"
	"errors"
)

// What a client that has not logged in can cost (issue 11, items 5 and
// 7). A command line (and a SASL response line) is at most maxLine (8
// KiB) before login as after; the part of a line held beyond the read
// buffer is charged, before login, to the client's netserve.Budget, which
// all its connections share: over it the client gets -ERR and the
// connection closes. A session
// must log in within Options.LoginTimeout of its connection (netserve
// keeps every read deadline within it); the idle timer is set once per
// command line, so a byte trickle does not restart it.

// errPreAuthLimit ends a session that went over a limit before login; the
// reply has been written.
var errPreAuthLimit = errors.New("limit before login")

// holdLine charges n more bytes of a long line to the Budget before
// login.
func (x *session) holdLine(n int) error {
	if x.tc == nil || x.state != stateAuthorization {
		return nil
	}
	if !x.tc.Grow(int64(n)) {
		return x.refuseBeforeLogin("client_memory", "-ERR [SYS/TEMP] Too much pending data from your address")
	}
	x.held += int64(n)
	return nil
}

// releaseLine gives back what the last line held.
func (x *session) releaseLine() {
	if x.held > 0 && x.tc != nil {
		x.tc.Shrink(x.held)
	}
	x.held = 0
}

// refuseBeforeLogin answers a command over a limit before login and ends
// the session.
func (x *session) refuseBeforeLogin(reason, reply string) error {
	x.log.Info("closing: over a limit before login", "limit", reason)
	if x.tc != nil {
		x.tc.RefusedBeforeLogin(reason)
	}
	x.reply("%s", reply)
	return errPreAuthLimit
}

// loginCtx is the context of a login: the guessing protection may make
// it wait, and a shutdown ends the wait.
func (x *session) loginCtx() context.Context {
	if x.tc == nil {
		return context.Background()
	}
	return x.tc.Context()
}

// loginWaitCtx is the context of the authentication itself: it also
// ends at the login deadline (netserve.Conn.LoginContext), so that the
// guessing protection's delay never outlasts it. The caller must call
// cancel.
func (x *session) loginWaitCtx() (context.Context, context.CancelFunc) {
	if x.tc == nil {
		return context.WithCancel(context.Background())
	}
	return x.tc.LoginContext()
}

// loggedIn lifts the limits of a client that has not logged in.
func (x *session) loggedIn() {
	x.releaseLine()
	if x.tc != nil {
		x.tc.LoggedIn()
	}
}
