package smtpserver

import (
	"context"
	"time"
)

// UnknownRcptLimits slow down and stop a client that probes for
// addresses (issue 11): the recipients refused as unknown users (550
// 5.1.1) are counted per session, over all its transactions, and the
// count never goes down. Other refusals (a foreign domain, bad syntax)
// are not counted: they tell the client nothing about the accounts.
//
// The zero value (DelayAfter, Delay and Max all zero) means the defaults
// for SMTP, 5 unknown recipients answered at once, 1 s for each further
// one, 421 at the 21st; and no limits for LMTP. Its client is the MTA on
// this host, which has accepted the message already and reuses one
// connection for many messages, so delaying or closing would only hold up
// or defer good mail, while a probing client talks to that MTA, whose own
// limits apply.
type UnknownRcptLimits struct {
	// DelayAfter: each unknown recipient after this many is answered
	// only after Delay; negative: never delayed.
	DelayAfter int
	// Delay before those replies; 0: none.
	Delay time.Duration
	// Max: the unknown recipient after this many is answered with
	// 421 4.7.0 and the session ends (RFC 5321 §3.8); 0 or negative: no
	// limit.
	Max int
	// Sleep waits for d, or until ctx is done (the server drains or the
	// connection closes). nil means a timer; tests give one that does
	// not wait.
	Sleep func(ctx context.Context, d time.Duration)
}

// withDefaults returns the limits in effect.
func (l UnknownRcptLimits) withDefaults(lmtp bool) UnknownRcptLimits {
	if l.DelayAfter == 0 && l.Delay == 0 && l.Max == 0 {
		if lmtp {
			l.DelayAfter = -1
		} else {
			l.DelayAfter, l.Delay, l.Max = 5, time.Second, 20
		}
	}
	if l.Delay <= 0 {
		l.DelayAfter = -1
	}
	if l.Max <= 0 {
		l.Max = -1
	}
	if l.Sleep == nil {
		l.Sleep = sleepContext
	}
	return l
}

// sleepContext waits for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// unknownRcpt counts a recipient refused as an unknown user and applies
// the limits: it waits when the count is past DelayAfter, and it ends the
// session with 421 when the count is past Max, reporting true; the
// caller then sends no other reply.
func (x *session) unknownRcpt() (closed bool) {
	x.unknownRcpts++
	l := &x.s.opt.UnknownRcpts
	if l.Max >= 0 && x.unknownRcpts > l.Max {
		x.log.Info("too many unknown recipients, closing connection", "unknown", x.unknownRcpts)
		if f := x.s.opt.Metrics.Error; f != nil {
			f(x.s.proto, "unknown_rcpt_limit")
		}
		x.goodbye("4.7.0", "Too many unknown recipients, closing connection")
		return true
	}
	if l.DelayAfter >= 0 && x.unknownRcpts > l.DelayAfter {
		ctx := context.Background()
		if x.tc != nil {
			ctx = x.tc.Context()
		}
		l.Sleep(ctx, l.Delay)
	}
	return false
}
