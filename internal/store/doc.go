// Package store is the contract between postfach's protocol servers and its
// mail store backends (SQLite by default, PostgreSQL for scale-out).
//
// # Model
//
// An account owns mailboxes; a mailbox owns messages. Every mailbox has a
// UIDVALIDITY, a UIDNEXT and a HIGHESTMODSEQ. Message bodies are immutable
// blobs named by their SHA-256, shared by copies and identical deliveries.
//
// # Invariants (checked by storetest for every backend)
//
//  1. UIDs in a mailbox strictly increase and are never reused under one
//     UIDVALIDITY.
//  2. Every change to a message, or to a mailbox's set of messages, gets a
//     new per-mailbox MODSEQ larger than any before. One operation (one
//     STORE, one EXPUNGE, one APPEND of several messages) may give all the
//     messages it changes the same MODSEQ. Expunged UIDs are remembered
//     with the MODSEQ of their expunge (tombstones), so Changes costs
//     O(changes), not O(mailbox).
//  3. A write returns only after it is durable (fsync of blob and
//     metadata). Concurrent writes may share one commit.
//  4. Events are published after commit, to every subscriber of the account.
//  5. A body is written once and never changed.
//  6. Expunged messages stay recoverable for the retention window.
//  7. An account's usage (Usage) is the sum of the sizes and the number of
//     the messages in its mailboxes after every write, kept as a counter
//     (quota.go).
//
// # Events
//
// Events are hints: "mailbox M of account A changed, its HIGHESTMODSEQ is
// now N". A session that receives one asks Changes for what changed since
// the MODSEQ it last saw. This keeps sessions correct however events are
// batched, coalesced or carried between nodes.
//
// # Backups
//
// Snapshotter and Restorer (backup.go) are optional abilities: a backup
// reads the whole store as of one moment, a full restore writes it back
// with its UIDVALIDITY, UIDs and MODSEQs, into a store no session uses
// yet.
//
// # Isolation
//
// Every method that touches mail takes the AccountID, and backends scope
// every query by it: a MailboxID of another account is ErrNotFound.
package store
