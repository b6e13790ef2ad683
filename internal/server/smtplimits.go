package server

import (
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
