package server

import (
	"cmp"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/smtpserver"
)

// unknownRcptLimits maps the limits.smtp_unknown_* keys to the SMTP (MX)
// listener's options; LMTP keeps the zero value, which exempts it.
func unknownRcptLimits(lim config.Limits) smtpserver.UnknownRcptLimits {
	l := smtpserver.UnknownRcptLimits{
		DelayAfter: lim.SMTPUnknownRecipientsBeforeDelay,
		Delay:      lim.SMTPUnknownRecipientDelay.D(),
		Max:        lim.SMTPUnknownRecipients,
	}
	if l.Max == 0 {
		l.Max = -1 // no limit, and not the zero value's defaults
	}
	if l.Delay == 0 {
		l.DelayAfter = -1
	}
	return l
}

// smtpProgressLimits sets the limits on sessions that make no progress
// (limits.junk_commands, limits.progress_timeout) in o: the config's 0
// (no limit) is the Options' negative value.
func smtpProgressLimits(lim config.Limits, o smtpserver.Options) smtpserver.Options {
	o.JunkCommands = cmp.Or(lim.JunkCommands, -1)
	o.ProgressTimeout = cmp.Or(lim.ProgressTimeout.D(), -1)
	return o
}
