package store

import (
	"context"
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// Undelete (docs/backup.md): expunged messages, and the messages of
// deleted mailboxes, stay in the store for the retention window
// (invariant 6); a store that can list them and bring them back
// implements Undeleter, an optional ability checked with a type
// assertion like Snapshotter.

// DeletedRef names one retained expunged message: the mailbox it was
// expunged from (which may no longer exist) and its UID there.
type DeletedRef struct {
	Mailbox MailboxID
	UID     mail.UID
}

// Undeleter is implemented by stores that can bring back retained
// expunged messages (postfach undelete).
type Undeleter interface {
	// Deleted yields the account's retained expunged messages (those of
	// deleted mailboxes included) whose expunge was not before since
	// (zero: all), by mailbox and UID, with their Summary and Hash.
	// A message whose EMAILID a message of the account has (the source
	// of a MOVE, an expunged copy, a message undeleted already) is left
	// out: nothing of it is lost. Several may share an EMAILID (a
	// message expunged, undeleted and expunged again); Undelete brings
	// back only one of them.
	Deleted(ctx context.Context, acct AccountID, since time.Time) func(yield func(*ExpungedMessage, error) bool)
	// Undelete brings the retained messages refs names back into the
	// mailbox dest, as new messages: consecutive new UIDs and one new
	// MODSEQ (as Append), their flags without \Deleted, keywords,
	// internal date and EMAILID, and the same body. A ref that is not
	// retained (unknown, or purged since), or whose EMAILID a message of
	// the account has by then (undeleted already, also by an earlier ref
	// of the same call), is left out, so running it twice adds nothing.
	// The expunged records stay, as tombstones for QRESYNC. The quota
	// is enforced: ErrOverQuota and nothing is added. ErrNoSelect for a
	// \Noselect dest. The result lists the UIDs given, in the order of
	// the refs brought back, and Refs those refs.
	Undelete(ctx context.Context, acct AccountID, dest MailboxID, refs []DeletedRef) (*UndeleteResult, error)
}

// UndeleteResult reports an Undelete.
type UndeleteResult struct {
	AppendResult
	// Refs are the refs brought back; Refs[i] got UIDs[i].
	Refs []DeletedRef
}
