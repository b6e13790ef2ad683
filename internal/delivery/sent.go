package delivery

import (
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// SentWindow is how long a submitted message's Sent copy stands in for a
// copy the client APPENDs of the same message (SentCopies).
const SentWindow = 10 * time.Minute

// maxSentCopies bounds what SentCopies remembers in all; past it the
// oldest entries go first. Submission's hourly limits keep it far below
// this in practice.
const maxSentCopies = 100_000

// SentCopies remembers, for SentWindow, the copies that submission saved
// in its users' Sent mailboxes, so that IMAP can recognise the copy a
// client APPENDs of the same message (same Message-ID and From, same
// account and mailbox) and keep one: the server's, which has the Bcc
// recipients (docs/sending.md). It is in memory: a restart forgets it,
// and a client's copy that comes after a restart is stored as a second
// one. It is safe for concurrent use; the zero value is not usable, use
// NewSentCopies.
type SentCopies struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[sentKey]SentCopy // guarded by mu
	order   []sentKey            // guarded by mu; in the order added, for expiry
}

// SentCopy is where a Sent copy is stored.
type SentCopy struct {
	Mailbox     store.MailboxID
	UIDValidity uint32
	UID         mail.UID
	// Added is when it was stored.
	Added time.Time
}

type sentKey struct {
	acct      store.AccountID
	mailbox   store.MailboxID
	messageID string // without brackets, as parsed
	from      string // the From addresses, lower case, comma-separated
}

// NewSentCopies returns an empty SentCopies; now is its clock (nil:
// time.Now).
func NewSentCopies(now func() time.Time) *SentCopies {
	if now == nil {
		now = time.Now
	}
	return &SentCopies{now: now, entries: map[sentKey]SentCopy{}}
}

// SentKey returns the Message-ID and the From addresses of a message
// envelope in the form SentCopies compares, and false when the message
// has no Message-ID or no From address: such a message is never taken
// for another.
func SentKey(env *message.Envelope) (messageID, from string, ok bool) {
	if env == nil {
		return "", "", false
	}
	id := message.ParseMessageID(env.MessageID)
	var addrs []string
	for _, a := range env.From {
		if a.IsGroupStart || a.IsGroupEnd || a.Host == "" {
			continue
		}
		addrs = append(addrs, strings.ToLower(message.AddrSpec(a)))
	}
	if id == "" || len(addrs) == 0 {
		return "", "", false
	}
	return id, strings.Join(addrs, ","), true
}

// Add records a Sent copy of the message with messageID and from (as
// SentKey gives them) in the account's mailbox.
func (c *SentCopies) Add(acct store.AccountID, messageID, from string, cp SentCopy) {
	if c == nil || messageID == "" || from == "" {
		return
	}
	k := sentKey{acct: acct, mailbox: cp.Mailbox, messageID: messageID, from: from}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if cp.Added.IsZero() {
		cp.Added = now
	}
	c.expireLocked(now)
	if _, ok := c.entries[k]; !ok {
		c.order = append(c.order, k)
	}
	c.entries[k] = cp
	for len(c.order) > maxSentCopies {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
}

// Find returns the Sent copy of a message with messageID and from in the
// account's mailbox, when one was added within SentWindow.
func (c *SentCopies) Find(acct store.AccountID, mailbox store.MailboxID, messageID, from string) (SentCopy, bool) {
	if c == nil || messageID == "" || from == "" {
		return SentCopy{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.expireLocked(now)
	cp, ok := c.entries[sentKey{acct: acct, mailbox: mailbox, messageID: messageID, from: from}]
	if !ok || now.Sub(cp.Added) > SentWindow {
		return SentCopy{}, false
	}
	return cp, true
}

// expireLocked drops the entries older than SentWindow; c.mu must be
// held.
func (c *SentCopies) expireLocked(now time.Time) {
	n := 0
	for n < len(c.order) {
		cp, ok := c.entries[c.order[n]]
		if ok && now.Sub(cp.Added) <= SentWindow {
			break
		}
		delete(c.entries, c.order[n])
		n++
	}
	if n > 0 {
		c.order = append(c.order[:0], c.order[n:]...)
	}
}
