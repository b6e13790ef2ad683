package store

import (
	"context"
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// Backups and restores (docs/backup.md, internal/backup). A backup reads
// the whole store as of one moment through a Snapshot; a restore writes
// it back through a Restorer, which keeps what the protocols promised
// the devices: UIDVALIDITY, UIDs, MODSEQs, flags, POP3 UIDLs. Both are
// optional abilities of a backend, like BodyFile: the backup package
// checks for them with a type assertion.

// AccountRecord is an account with the secrets and limits that go with
// it, as a backup holds it.
type AccountRecord struct {
	Account
	// SCRAM holds the SCRAM-SHA-256 keys of the account password ("" when
	// none; see Credentials.AccountSCRAM).
	SCRAM string
	// Quota is the account's own quota, with QuotaDefault in a field that
	// follows the store's default (Usage.Own).
	Quota Quota
}

// MetadataEntry is one annotation (RFC 5464) of an account: of a mailbox,
// or of the server when Mailbox is 0.
type MetadataEntry struct {
	Mailbox MailboxID
	Name    string
	Value   []byte
}

// AccessKey is the URLAUTH key of one mailbox (AccessKeys).
type AccessKey struct {
	Mailbox MailboxID
	Key     []byte
}

// SnapshotMessage is a message as a Snapshot reads it: its metadata and
// the SHA-256 of its body.
type SnapshotMessage struct {
	Message
	// Hash is the lower-case hex SHA-256 of the body, the name a backup
	// gives it. It is what the store recorded when the body arrived; a
	// reader of the body checks it.
	Hash string
}

// ExpungedMessage is a message that was expunged and is still kept for
// the retention window (invariant 6): a tombstone with its body.
type ExpungedMessage struct {
	SnapshotMessage
	// Mailbox is the mailbox it was expunged from; it may no longer
	// exist (a deleted mailbox), and MailboxName is its name then.
	Mailbox     MailboxID
	MailboxName string
	// Expunged is when; Message.ModSeq is the MODSEQ of the expunge.
	Expunged time.Time
}

// Snapshotter is implemented by stores that can read everything they hold
// as it was at one moment, for backups.
type Snapshotter interface {
	// Snapshot returns a read-only view of the whole store: every write
	// acknowledged before the call is in it, nothing written after. The
	// store goes on serving writes meanwhile, and the bodies the snapshot
	// names stay readable through it until Close.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is a consistent read-only view of a store (Snapshotter). Its
// methods read the same moment whatever their order; it is used by one
// goroutine at a time.
type Snapshot interface {
	// Accounts lists every account, ordered by name.
	Accounts(ctx context.Context) ([]AccountRecord, error)
	// Mailboxes lists the account's mailboxes by name, \Noselect names
	// included.
	Mailboxes(ctx context.Context, acct AccountID) ([]Mailbox, error)
	// Subscriptions lists the subscribed names, existing or not.
	Subscriptions(ctx context.Context, acct AccountID) ([]string, error)
	// Devices lists the account's devices, POP3-only ones included (their
	// records of sign-ins and revocation).
	Devices(ctx context.Context, acct AccountID) ([]Device, error)
	// POP3Views lists the account's POP3 views.
	POP3Views(ctx context.Context, acct AccountID) ([]POP3View, error)
	// Metadata lists the account's annotations.
	Metadata(ctx context.Context, acct AccountID) ([]MetadataEntry, error)
	// AccessKeys lists the account's URLAUTH keys.
	AccessKeys(ctx context.Context, acct AccountID) ([]AccessKey, error)
	// Messages yields the messages of a mailbox in UID order.
	Messages(ctx context.Context, acct AccountID, mailbox MailboxID) func(yield func(*SnapshotMessage, error) bool)
	// Expunged yields the account's retained expunged messages, by
	// mailbox and UID.
	Expunged(ctx context.Context, acct AccountID) func(yield func(*ExpungedMessage, error) bool)
	// Aliases lists every alias.
	Aliases(ctx context.Context) ([]Alias, error)
	// SetupLinks lists the device setup links that are still pending
	// (not used, not expired at the snapshot's moment).
	SetupLinks(ctx context.Context) ([]SetupLink, error)
	// OpenBody opens the body of a message of the snapshot by its
	// BlobID (ErrNotFound, ErrDamaged as Store.OpenBody).
	OpenBody(ctx context.Context, blobID string) (Body, error)
	// Close releases the snapshot.
	Close() error
}

// RestoreMessage is a message to write with the identity it had: its UID
// and MODSEQ as a backup or a migration recorded them.
type RestoreMessage struct {
	Body         Staged
	UID          mail.UID
	ModSeq       mail.ModSeq
	Flags        mail.Flags
	InternalDate time.Time
	// SaveDate; zero means now.
	SaveDate time.Time
	// EmailID keeps the RFC 8474 EMAILID; "" makes a new one.
	EmailID string
	// POPUID keeps a POP3 UIDL; "" derives one as for any message.
	POPUID string
	// Expunged, when not zero, restores the message as expunged at that
	// time and kept for the retention window (a tombstone with its body),
	// ModSeq being the MODSEQ of its expunge.
	Expunged time.Time
}

// Restorer is implemented by stores that can write accounts, mailboxes
// and messages with the identity a backup recorded, for a full restore
// into an empty store (postfach restore). It bypasses the rules that keep
// live sessions right (a new MODSEQ for every change; UIDs handed out by
// the store), so it is for a store that no session uses yet, or for
// accounts and mailboxes it has just created. Methods fail with
// ErrNotFound for an unknown account or mailbox.
type Restorer interface {
	// RestoreAccount creates an account as recorded: name, password hash,
	// settings, creation time, SCRAM keys and own quota, without any
	// mailbox (RestoreMailbox creates them). ErrExists if the name is
	// taken.
	RestoreAccount(ctx context.Context, a AccountRecord) (*Account, error)
	// RestoreMailbox creates a mailbox with m's name, special use,
	// NoSelect, UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ (m.ID, m.Account
	// and m.Subscribed are ignored; SetSubscribed subscribes). Parents are
	// not created. No message is recent in it. Changes since a MODSEQ
	// below its HIGHESTMODSEQ report VanishedComplete false: the store
	// cannot know what a device that saw a later state of the mailbox
	// has that is gone now. A later CreateMailbox never hands out its
	// UIDVALIDITY again. ErrExists, ErrInvalidName.
	RestoreMailbox(ctx context.Context, acct AccountID, m Mailbox) (*Mailbox, error)
	// RestoreMessages writes messages into a mailbox with their UIDs,
	// MODSEQs, flags and dates, in one transaction: all or none. Each UID
	// must be below the mailbox's UIDNEXT and unused in it (ErrExists for
	// a UID that is a message or a tombstone already), each MODSEQ at
	// least 1 and at most its HIGHESTMODSEQ; UIDNEXT and HIGHESTMODSEQ do
	// not change. The account's usage counts them (not the expunged
	// ones); the quota is not enforced.
	RestoreMessages(ctx context.Context, acct AccountID, mailbox MailboxID, msgs []RestoreMessage) error
	// RestoreDevice writes a device as recorded (password, SCRAM keys,
	// revocation, last sign-in), replacing one of the same name.
	RestoreDevice(ctx context.Context, acct AccountID, d Device) error
	// RestorePOP3View writes a POP3 view as recorded (v.Mailbox is the
	// mailbox in this store), replacing one of the same device and
	// mailbox.
	RestorePOP3View(ctx context.Context, acct AccountID, v POP3View) error
	// RestoreAccessKey sets the URLAUTH key of a mailbox, so that the
	// URLs signed before the backup work after the restore.
	RestoreAccessKey(ctx context.Context, acct AccountID, mailbox MailboxID, key []byte) error
}
