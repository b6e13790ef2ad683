package store

// Quotas (RFC 9208). An account's usage is what its messages take, kept
// by the backend as a counter of bytes and messages that every write
// updates in the same transaction as the change it makes (append,
// delivery, copy, move, expunge, mailbox and account deletion, and any
// later restore), so that it is exact at all times and costs one row to
// read, whatever the size of the account.
//
// What counts:
//   - the size (RFC822.SIZE) of every message in every mailbox of the
//     account: the STORAGE resource (RFC 9208 §5.1) as their sum; a
//     copy counts its size again although the copies share one stored
//     body (as Dovecot counts), so the usage does not depend on how a
//     backend stores bodies;
//   - not the messages expunged but kept recoverable for the retention
//     window: an expunge frees its quota at once, and the retention purge
//     changes nothing.
//
// Where the quota is enforced:
//   - Append and Copy fail with ErrOverQuota, and change nothing, when the
//     account would be over a limit afterwards (RFC 9208 §4.3.1 OVERQUOTA);
//   - Move never changes the usage and is never refused for it, nor is
//     anything that removes mail;
//   - Deliver and DeliverAll do not look at the quota: the delivery path
//     checks it when it accepts a recipient, and a recipient accepted
//     under its quota takes the message even if that message takes it
//     over (see smtpserver), so one full mailbox never holds the other
//     recipients of a message back.

// Quota is a limit on an account's mail, per RFC 9208 resource; 0 means
// no limit on that resource.
type Quota struct {
	// Bytes limits the STORAGE resource: the sum of the sizes of the
	// account's messages, in octets (IMAP reports it in units of 1024).
	Bytes int64
	// Messages limits the MESSAGE resource (RFC 9208 §5.2): the number
	// of messages.
	Messages int64
}

// QuotaDefault in a field of an account's own quota (SetQuota) means that
// the store's default limit for that resource applies.
const QuotaDefault = -1

// Over reports whether usage of bytes and messages is over a limit of q.
func (q Quota) Over(bytes, messages int64) bool {
	return q.Bytes > 0 && bytes > q.Bytes || q.Messages > 0 && messages > q.Messages
}

// Usage is what an account's messages take, and its quota.
type Usage struct {
	// Bytes is the sum of the sizes of the account's messages (see the
	// rules at the top of this file) and Messages their number.
	Bytes    int64
	Messages int64
	// Limit is the quota that applies: the account's own where it has
	// one, else the store's default; 0 in a field means no limit.
	Limit Quota
	// Own is the account's own quota as SetQuota set it, with
	// QuotaDefault in a field that follows the default.
	Own Quota
}
