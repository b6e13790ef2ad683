package imap

import (
	"github.com/postfach/postfach/internal/message"
)

// Envelope writes the ENVELOPE of a message (RFC 9051 §7.5.2, §9
// envelope). Absent fields are NIL; a missing or empty Sender or Reply-To
// is written as the From list, as the RFC requires of the server. A nil
// env is written with every field NIL.
func (e *Encoder) Envelope(env *message.Envelope) *Encoder {
	if env == nil {
		env = &message.Envelope{}
	}
	e.BeginList()
	e.NString(env.Date)
	e.NString(env.Subject)
	e.addressList(env.From)
	sender := env.Sender
	if len(sender) == 0 {
		sender = env.From
	}
	e.addressList(sender)
	replyTo := env.ReplyTo
	if len(replyTo) == 0 {
		replyTo = env.From
	}
	e.addressList(replyTo)
	e.addressList(env.To)
	e.addressList(env.Cc)
	e.addressList(env.Bcc)
	e.NString(env.InReplyTo)
	e.NString(env.MessageID)
	return e.EndList()
}

// addressList writes "(" 1*address ")" or NIL. The addresses follow each
// other without a space (RFC 9051 §9 env-from).
func (e *Encoder) addressList(list []message.Address) {
	if len(list) == 0 {
		e.Nil()
		return
	}
	e.BeginList()
	for i := range list {
		e.sep = false
		e.address(&list[i])
	}
	e.EndList()
}

// address writes "(" addr-name SP addr-adl SP addr-mailbox SP addr-host
// ")". Group syntax (RFC 9051 §7.5.2): a start marker has the group name
// as mailbox and NIL host; an end marker is all NIL. A plain address
// always has a non-NIL mailbox and host, so that it is never taken for a
// group marker.
func (e *Encoder) address(a *message.Address) {
	e.BeginList()
	switch {
	case a.IsGroupEnd:
		e.Nil().Nil().Nil().Nil()
	case a.IsGroupStart:
		e.Nil().Nil().String(a.Mailbox).Nil()
	default:
		e.NString(a.Name).NString(a.Adl).String(a.Mailbox).String(a.Host)
	}
	e.EndList()
}
