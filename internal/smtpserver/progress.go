package smtpserver

import (
	"time"
)

// Sessions that make no progress (issue 11, outside testing): every
// command restarts the command timeout, so a client that sends NOOP (or
// RSET, HELP, VRFY, EHLO) every four minutes would hold its connection,
// and one of its address's slots, for ever. RFC 5321 §4.5.3.2 lets a
// server close a connection whose client does nothing useful; postfach
// bounds such a session twice, with limits that a real MTA, which sends
// its mail and leaves, never meets:
//
//   - junk commands: NOOP, RSET, HELP, VRFY and the greetings (EHLO,
//     HELO, LHLO) are counted; the count starts again when the data of a
//     message has been received (whether it was then stored or refused).
//     The command after Options.JunkCommands such commands is answered
//     with 421 4.7.0 and the connection closes (Postfix's
//     smtpd_junk_command_limit has the same default, 100).
//   - a deadline: the data of a message must have been received within
//     Options.ProgressTimeout of the connection or of the previous
//     message. A command that arrives later is answered with 421 4.7.0,
//     and a wait for a command ends at that time. Message data being
//     received (DATA, or the chunks of a BDAT transaction) is never cut
//     off by it.

// Defaults of the Options.
const (
	defaultJunkCommands    = 100
	defaultProgressTimeout = 30 * time.Minute
)

// Replies that end a session which makes no progress.
var (
	replyTooManyJunk = &reply{421, "4.7.0", "Too many commands without mail, closing connection"}
	replyNoProgress  = &reply{421, "4.7.0", "No mail received in too long, closing connection"}
)

// junkCommand reports whether verb is a command that makes no progress
// towards a message.
func junkCommand(verb string) bool {
	switch verb {
	case "NOOP", "RSET", "HELP", "VRFY", "EHLO", "HELO", "LHLO":
		return true
	}
	return false
}

// progressed records that the data of a message was received.
func (x *session) progressed() {
	x.junk = 0
	if d := x.s.opt.ProgressTimeout; d > 0 {
		x.progressBy = time.Now().Add(d)
	}
}

// noProgress checks the limits before a command is run; when one is
// passed it answers 421 and reports true.
func (x *session) noProgress(verb string) bool {
	if verb == "QUIT" {
		return false
	}
	if !x.progressBy.IsZero() && !time.Now().Before(x.progressBy) {
		x.log.Info("no mail received in time, closing connection", "junk", x.junk)
		x.closeNoProgress(replyNoProgress)
		return true
	}
	if !junkCommand(verb) {
		return false
	}
	x.junk++
	if m := x.s.opt.JunkCommands; m > 0 && x.junk > m {
		x.log.Info("too many commands without mail, closing connection", "junk", x.junk)
		x.closeNoProgress(replyTooManyJunk)
		return true
	}
	return false
}

func (x *session) closeNoProgress(r *reply) {
	if f := x.s.opt.Metrics.Error; f != nil {
		f(x.s.proto, "no_progress")
	}
	x.goodbye(r.enh, r.text)
}

// commandDeadline is when a wait for a command line that begins now
// ends: after the command timeout, or at the progress deadline when that
// comes first.
func (x *session) commandDeadline() time.Time {
	d := time.Now().Add(x.s.opt.CommandTimeout)
	if !x.progressBy.IsZero() && x.progressBy.Before(d) && !x.chunkWait {
		d = x.progressBy
	}
	return d
}

// progressExpired reports whether the progress deadline has passed.
func (x *session) progressExpired() bool {
	return !x.progressBy.IsZero() && !time.Now().Before(x.progressBy)
}
