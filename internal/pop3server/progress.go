package pop3server

import "time"

// Sessions that make no progress after login (issue 11, outside
// testing): every command restarts the idle timer, so a client that
// sends NOOP every nine minutes would hold its connection, one of its
// address's slots and its maildrop for ever. Before login the login
// timeout bounds a session (guard.go); after it two limits that a real
// client, which fetches its mail and quits (the maildrop does not change
// during a session, RFC 1939 §3, so there is nothing to wait for), never
// meets:
//
//   - junk commands: NOOP, RSET, CAPA, STAT, and LIST and UIDL without
//     an argument are counted, and the count starts again at RETR, TOP
//     or DELE; the command after Options.JunkCommands such commands gets
//     -ERR and the session ends without UPDATE (nothing is deleted).
//     LIST and UIDL of one message are not counted: some clients ask
//     about every message in turn.
//   - a deadline: a RETR, TOP or DELE must come within
//     Options.ProgressTimeout of the login or of the previous one. At
//     that time the session ends like at the idle timeout: closed without
//     a response and without UPDATE (RFC 1939 §3).

// Defaults of the Options.
const (
	defaultJunkCommands    = 100
	defaultProgressTimeout = 30 * time.Minute
)

// junkCommand reports whether cmd makes no progress.
func junkCommand(cmd command) bool {
	switch cmd.name {
	case "NOOP", "RSET", "CAPA", "STAT":
		return true
	case "LIST", "UIDL":
		return len(cmd.args) == 0
	}
	return false
}

// progressCommand reports whether cmd reads or deletes a message.
func progressCommand(cmd command) bool {
	switch cmd.name {
	case "RETR", "TOP", "DELE":
		return true
	}
	return false
}

// progressed starts the limits again: at login and at a RETR, TOP or
// DELE.
func (x *session) progressed() {
	x.junk = 0
	if d := x.s.progressTimeout; d > 0 {
		x.progressBy = time.Now().Add(d)
	}
}

// countJunk counts a command of the TRANSACTION state; over the limit it
// answers -ERR and reports true (the session ends).
func (x *session) countJunk(cmd command) bool {
	switch {
	case progressCommand(cmd):
		x.progressed()
	case junkCommand(cmd):
		x.junk++
		if m := x.s.junkCommands; m > 0 && x.junk > m {
			x.reply("-ERR " + codeSysTemp + "Too many commands without retrieving mail, closing connection")
			x.log.Info("too many commands without progress, closing without update", "junk", x.junk)
			return true
		}
	}
	return false
}

// readDeadline is when a wait for a command that begins now ends: after
// the idle timeout, or at the progress deadline when that comes first.
func (x *session) readDeadline() time.Time {
	d := time.Now().Add(x.s.idle)
	if x.state == stateTransaction && !x.progressBy.IsZero() && x.progressBy.Before(d) {
		d = x.progressBy
	}
	return d
}

// progressExpired reports whether the progress deadline has passed.
func (x *session) progressExpired() bool {
	return x.state == stateTransaction && !x.progressBy.IsZero() && !time.Now().Before(x.progressBy)
}
