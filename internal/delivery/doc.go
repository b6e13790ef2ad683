// Package delivery turns "a message and its recipients" into stored mail.
// It is the one delivery pipeline of postfach: SMTP (the MX) and LMTP use
// it, and so do `postfach deliver`, and later submission (local
// recipients, the copy in Sent), the outbound queue (bounces and delay
// notices into the sender's INBOX) and server-side filters. Protocol
// packages depend on it, never on each other. (Import and restore keep a
// message's flags, dates and folder and add no trace headers: they use the
// store's own interfaces, not this package.)
//
// The pipeline has three steps, each a method of Deliverer:
//
//   - Resolve maps an address to a Recipient: the accounts and mailboxes
//     it delivers to (Targets). Only the local domains are served. The
//     order is fixed, so that nothing can capture an account's mail: an
//     account (the address without its "+detail"), then an alias of that
//     address, then postmaster@ any local domain (RFC 5321 §4.5.1), then
//     the domain's catch-all alias ("@example.org"). An alias names
//     accounts only, never another alias, so there are no loops to break.
//   - CheckQuota refuses a recipient whose accounts cannot take the
//     message under their quota: at RCPT, never after DATA.
//   - Deliver prepends Return-Path: and Received: (and any header fields
//     the caller adds, such as Authentication-Results), normalises line
//     endings to CRLF, stages the body once and stores it for every
//     recipient in one store call. It returns only when the store made it
//     durable.
//
// SendAs answers the submission question "may this account use this
// sender address": its own, its "+detail" forms, the aliases that include
// it, and postmaster@ when it is the postmaster account; never an address
// that reaches it only through a catch-all.
//
// # Invariants
//
//   - One copy per mailbox: recipients of one message that resolve to the
//     same account and mailbox (carol+a@ and carol+b@, an address twice, a
//     family alias and one of its members) get the message once, and each
//     of those recipients gets the outcome of that copy.
//   - All or nothing where the protocol needs it (Envelope.AllOrNothing):
//     SMTP has one reply for the whole message, so the message is stored
//     for every recipient or for none. Without it each recipient succeeds
//     or fails on its own, except that the accounts of one alias are
//     still stored together, so that no retry gives a member a second copy.
//   - Errors say what failed with the sentinels below (ErrUnknownUser,
//     ErrNotLocal, ErrBadAddress, ErrMailboxFull, ErrQuotaTooSmall) or the
//     store's (store.ErrTooBig, store.ErrDiskFull, store.ErrEmptyMessage,
//     store.ErrNotDelivered, ...), wrapped; each protocol maps them to its
//     replies in one function.
//
// # Concurrency
//
// A Deliverer holds no mutable state; all its methods are safe for
// concurrent use. Concurrent deliveries share the store's commits.
package delivery
