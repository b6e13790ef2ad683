package delivery

import (
	"context"
	"io"

	"github.com/postfach/postfach/internal/store"
)

// Outbound is a message for recipients on other servers, handed from
// submission (or the server itself, for a bounce) to the outbound queue.
// The queue owns the message once Enqueue returns.
type Outbound struct {
	// Account is the sending account: delivery status notifications for
	// it go to its INBOX. Zero for mail the server makes itself (a DSN),
	// which is never bounced again (RFC 3464 §2, RFC 5321 §6.1).
	Account store.AccountID
	// From is the reverse-path; "" is the null sender.
	From string
	// To are the remote recipients, each once.
	To []string
	// SMTPUTF8: the envelope or the header needs SMTPUTF8 (RFC 6531).
	SMTPUTF8 bool
	// EightBit: the body was declared or found 8BITMIME (RFC 6152); a
	// hop without 8BITMIME gets it converted to 7 bits.
	EightBit bool
}

// Enqueuer takes outbound messages durably. Enqueue returns only once
// the message and its envelope are on stable storage, so that an SMTP
// 250 after it is a promise kept across a crash; the id names the queue
// entry (postfach queue show ID).
type Enqueuer interface {
	Enqueue(ctx context.Context, m *Outbound, body io.Reader) (id string, err error)
}

// Signer adds DKIM signatures (RFC 6376) to outgoing mail.
type Signer interface {
	// Sign reads the whole message and returns the header fields to put
	// in front of it (DKIM-Signature fields, each ending in CRLF), or
	// nil when domain (the From: header's) has no signing keys.
	Sign(ctx context.Context, domain string, msg io.Reader) ([]byte, error)
}
