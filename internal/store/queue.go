package store

import (
	"context"
	"time"
)

// QueueEntry is one message in the outbound queue (internal/queue): one
// entry per message, whatever its number of recipients, each of which has
// its own state.
type QueueEntry struct {
	// ID names the entry; never reused.
	ID int64
	// Account is the sending account (delivery status notifications go to
	// it); 0 for mail the server made itself, such as a DSN.
	Account AccountID
	// From is the reverse-path; "" is the null sender.
	From string
	// SMTPUTF8 and EightBit: the message needs SMTPUTF8 (RFC 6531), its
	// body is 8-bit (RFC 6152).
	SMTPUTF8, EightBit bool
	// BlobID names the body for OpenBody; Size is its size.
	BlobID string
	Size   int64
	// Created is when the entry was made; NextAttempt when it is due.
	Created, NextAttempt time.Time
	// Attempts counts the delivery attempts made.
	Attempts int
	// LastError is the latest temporary failure, for queue show.
	LastError string
	// DelayNotified: the delay notice (a DSN with action delayed) went
	// out for the pending recipients.
	DelayNotified bool
	// Recipients in the order given.
	Recipients []QueueRecipient
}

// RecipientState is where a queued recipient stands.
type RecipientState int

// Recipient states.
const (
	// RcptPending: still to be delivered.
	RcptPending RecipientState = iota
	// RcptDelivered: the next hop accepted it.
	RcptDelivered
	// RcptFailed: refused for good, or given up on.
	RcptFailed
)

func (s RecipientState) String() string {
	switch s {
	case RcptPending:
		return "pending"
	case RcptDelivered:
		return "delivered"
	case RcptFailed:
		return "failed"
	}
	return "unknown"
}

// QueueRecipient is one recipient of a QueueEntry.
type QueueRecipient struct {
	Address string
	State   RecipientState
	// Status is the enhanced status code of the last answer ("5.1.1",
	// RFC 3463), Diagnostic that answer ("550 5.1.1 no such user"),
	// Remote the host that gave it.
	Status, Diagnostic, Remote string
	// DSNDone: a delivery status notification reported this recipient's
	// final state (or none is owed: delivered, or a null sender).
	DSNDone bool
	// Updated is when State last changed.
	Updated time.Time
}

// Queue is implemented by stores that keep the outbound queue. Bodies
// live with the message bodies (Stage; OpenBody with the entry's BlobID)
// and stay until the entry is deleted. Every write is durable when it
// returns.
//
// A runner takes due entries with ClaimQueue, which leases them (they are
// not due again until the lease ends, so two runners never send the same
// entry at once), and ends the lease with UpdateQueueEntry or
// DeleteQueueEntry.
type Queue interface {
	// Enqueue adds an entry with body (which it consumes like Append: the
	// caller still Discards it) and returns the new entry's ID. It uses
	// e's Account, From, SMTPUTF8, EightBit, Created, NextAttempt and the
	// recipients' addresses; the recipients start pending.
	Enqueue(ctx context.Context, e *QueueEntry, body Staged) (int64, error)
	// QueueEntry returns one entry; ErrNotFound when there is none.
	QueueEntry(ctx context.Context, id int64) (*QueueEntry, error)
	// QueueEntries returns every entry, by ID.
	QueueEntries(ctx context.Context) ([]QueueEntry, error)
	// ClaimQueue returns up to limit entries whose NextAttempt is at or
	// before now and that are not leased, earliest first, and leases each
	// until now+lease.
	ClaimQueue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]QueueEntry, error)
	// UpdateQueueEntry writes e's NextAttempt, Attempts, LastError,
	// DelayNotified and the recipients' State, Status, Diagnostic,
	// Remote, DSNDone and Updated (matched by position), and ends its
	// lease. ErrNotFound when the entry is gone (dropped meanwhile).
	UpdateQueueEntry(ctx context.Context, e *QueueEntry) error
	// RetryQueue makes entries due at now: the one with the ID, or every
	// entry for id 0, leased or not. It returns how many it changed;
	// ErrNotFound for an ID that does not exist.
	RetryQueue(ctx context.Context, id int64, now time.Time) (int, error)
	// DeleteQueueEntry removes an entry; its body goes with the sweep
	// unless a message shares it. ErrNotFound when there is none.
	DeleteQueueEntry(ctx context.Context, id int64) error
	// ReleaseQueueLeases ends every lease: for a store used by one server
	// only, whose leases at start-up are those of a run that ended.
	ReleaseQueueLeases(ctx context.Context) error
}
