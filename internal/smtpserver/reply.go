package smtpserver

import (
	"context"
	"errors"
	"strconv"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/store"
)

// reply is an SMTP reply (RFC 5321 §4.2) with its enhanced status code
// (RFC 3463, sent as RFC 2034 asks). It is an error, so delivery and
// resolution failures travel as errors until replyFor turns them into
// the reply the client sees.
type reply struct {
	code int
	// enh is the enhanced status code ("5.1.1"); "" for replies that
	// carry none (RFC 2034 §3: the greeting, EHLO/LHLO and 3xx).
	enh  string
	text string
}

func (r *reply) Error() string {
	return "smtp reply " + strconv.Itoa(r.code) + " " + r.enh + " " + r.text
}

// Replies. Client-facing text stays generic; details go to the log.
var (
	// RFC 5321 §3.6.2 and RFC 3463 X.7.1: relaying denied.
	errRelayDenied = &reply{550, "5.7.1", "Relaying denied: not a local domain"}
	// RFC 3463 X.1.1: bad destination mailbox address.
	errNoSuchUser = &reply{550, "5.1.1", "No such user here"}
	// RFC 3463 X.1.3: bad destination mailbox address syntax.
	errBadRcpt = &reply{501, "5.1.3", "Bad recipient address syntax"}
	// RFC 3463 X.1.7: bad sender's mailbox address syntax.
	errBadSender = &reply{501, "5.1.7", "Bad sender address syntax"}
	// RFC 1870 §6.1 and RFC 3463 X.3.4: message too big for system.
	errTooBig = &reply{552, "5.3.4", "Message exceeds maximum size"}
	// RFC 3463 X.3.1: mail system full.
	errDiskFull = &reply{452, "4.3.1", "Insufficient system storage, try again later"}
	// RFC 3463 X.3.0: other or undefined mail system status.
	errTempFail = &reply{451, "4.3.0", "Temporary local problem, try again later"}
	// RFC 3463 X.6.0: other or undefined media error.
	errEmpty = &reply{554, "5.6.0", "Empty message"}
	// RFC 3463 X.3.2: system not accepting network messages.
	errShutdown = &reply{421, "4.3.2", "Service shutting down, try again later"}
	// RFC 3463 X.2.2: mailbox full; 452 for now (RFC 5321 §4.2.2,
	// insufficient storage), 552 when the message alone is more than the
	// quota (§4.2.3, exceeded storage allocation): retrying cannot help.
	errMailboxFull   = &reply{452, "4.2.2", "Mailbox full, try again later"}
	errQuotaTooSmall = &reply{552, "5.2.2", "Message larger than the recipient's mailbox quota"}
	// RFC 5321 §4.5.3.1.10 and RFC 3463 X.5.3: too many recipients.
	errTooManyRcpts = &reply{452, "4.5.3", "Too many recipients"}
)

// Protocol replies (RFC 5321 §4.2.2, RFC 3463 X.5.x).
var (
	replyUnknown     = &reply{500, "5.5.1", "Command unrecognized"}
	replyNotImpl     = &reply{502, "5.5.1", "Command not implemented"}
	replyLineTooLong = &reply{500, "5.5.2", "Line too long"}
	replyNoHello     = &reply{503, "5.5.1", "Say hello first"}
	replyNestedMail  = &reply{503, "5.5.1", "Sender already given"}
	replyNeedMail    = &reply{503, "5.5.1", "Need MAIL before RCPT"}
	replyNeedRcpt    = &reply{503, "5.5.1", "Need RCPT before DATA"}
	// RFC 5321 §3.3 and §4.1.4: DATA or BDAT without a transaction.
	replyMailFirst     = &reply{503, "5.5.1", "Need MAIL and RCPT first"}
	replyNeedRcptBDAT  = &reply{503, "5.5.1", "Need RCPT before BDAT"}
	replyBDATAbandoned = &reply{503, "5.5.1", "BDAT transaction was abandoned by another command; send RSET"}
	// RFC 3030 §2: DATA after BDAT in one transaction MUST get 503.
	replyDataAfterBDAT = &reply{503, "5.5.1", "DATA not allowed after BDAT in one transaction; send RSET"}
	replyNoValidRcpt   = &reply{554, "5.5.1", "No valid recipients"}
	// RFC 2033 §4.2: in LMTP, DATA without an accepted RCPT fails with 503.
	replyNoValidRcptLMTP = &reply{503, "5.5.1", "No valid recipients"}
	replyBadParam        = &reply{555, "5.5.4", "Parameter not recognized or not implemented"}
	replyOK              = &reply{250, "2.0.0", "OK"}
	replyTooManyBad      = &reply{421, "4.7.0", "Too many errors, closing connection"}
	replyTimeout         = &reply{421, "4.4.2", "Timeout, closing connection"}
)

// syntaxError is a 501 reply (RFC 5321 §4.2.2: syntax error in
// parameters or arguments) with a hint.
func syntaxError(hint string) *reply {
	return &reply{501, "5.5.4", hint}
}

// replyFor maps a delivery or resolution error to an SMTP reply and a
// metrics kind. This is the one place where errors become replies.
func replyFor(err error) (*reply, string) {
	var r *reply
	switch {
	case err == nil:
		return nil, ""
	case errors.Is(err, delivery.ErrNotLocal):
		return errRelayDenied, "relay_denied"
	case errors.Is(err, delivery.ErrUnknownUser):
		return errNoSuchUser, "unknown_user"
	case errors.Is(err, delivery.ErrBadAddress):
		return errBadRcpt, "bad_address"
	case errors.Is(err, delivery.ErrQuotaTooSmall):
		return errQuotaTooSmall, "over_quota"
	case errors.Is(err, delivery.ErrMailboxFull):
		return errMailboxFull, "over_quota"
	case isTooLarge(err):
		return errTooBig, "too_big"
	case errors.Is(err, store.ErrDiskFull):
		return errDiskFull, "disk_full"
	case errors.Is(err, store.ErrEmptyMessage):
		return errEmpty, "empty"
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		return errShutdown, "store"
	case errors.As(err, &r):
		return r, "protocol"
	}
	return errTempFail, "store"
}

// isTooLarge reports whether err is the size error of the data reader or
// of the store.
func isTooLarge(err error) bool {
	return errors.Is(err, store.ErrTooBig)
}
