package store

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrOverQuota    = errors.New("over quota")
	ErrTooBig       = errors.New("message too big")
	ErrDiskFull     = errors.New("no space left on device")
	ErrInvalidName  = errors.New("invalid mailbox name")
	ErrInbox        = errors.New("operation not allowed on INBOX")
	ErrHasChildren  = errors.New("mailbox has children")
	ErrNoSelect     = errors.New("mailbox cannot hold messages")
	ErrClosed       = errors.New("store closed")
	ErrEmptyMessage = errors.New("empty message")
	// ErrNotDelivered: DeliverAll stored nothing because another target
	// failed.
	ErrNotDelivered = errors.New("not delivered: the delivery to another recipient failed")
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("store is locked by another process")
	// ErrMailboxLimit: the account has as many mailboxes (or
	// subscriptions) as the store allows.
	ErrMailboxLimit = errors.New("too many mailboxes")
	// ErrDamaged: a message's stored body is damaged (its file is missing,
	// has the wrong size, or does not match its hash). Other messages are
	// not affected; the store logs the damage once.
	ErrDamaged = errors.New("message body damaged")
)

// AccountID identifies an account within a store.
type AccountID int64

// MailboxID identifies a mailbox within a store. IDs are never reused.
type MailboxID int64

// Account is a user of the mail server.
type Account struct {
	ID AccountID
	// Name is the login name and primary address, as created
	// ("Alice@Example.org"); lookups are case-insensitive.
	Name string
	// PasswordHash is the encoded hash from the auth package.
	PasswordHash string
	// Settings are per-account overrides of config keys ("pop3.delete").
	Settings map[string]string
	Created  time.Time
}

// Mailbox describes one mailbox.
type Mailbox struct {
	ID      MailboxID
	Account AccountID
	// Name is the full UTF-8 name with "/" as hierarchy separator; the
	// inbox is always "INBOX".
	Name string
	// SpecialUse holds RFC 6154 attributes such as `\Sent`.
	SpecialUse []string
	Subscribed bool
	// NoSelect is set for a name kept only because it has children after
	// its mailbox was deleted (RFC 9051 §6.3.5): it holds no messages.
	NoSelect bool

	UIDValidity   uint32
	UIDNext       mail.UID
	HighestModSeq mail.ModSeq
}

// Special-use attributes (RFC 6154 §2).
const (
	UseAll     = `\All`
	UseArchive = `\Archive`
	UseDrafts  = `\Drafts`
	UseFlagged = `\Flagged`
	UseJunk    = `\Junk`
	UseSent    = `\Sent`
	UseTrash   = `\Trash`
)

// CreateOptions say how CreateMailboxWith creates a mailbox.
type CreateOptions struct {
	// SpecialUse holds RFC 6154 attributes for the new mailbox.
	SpecialUse []string
	// Parents creates the missing superior levels of the name too ("a"
	// and "a/b" for "a/b/c"), in the same transaction: all are created or
	// none (RFC 9051 §6.3.4).
	Parents bool
	// Subscribe subscribes every mailbox created, so that clients that
	// show only subscribed folders show it on every device.
	Subscribe bool
}

// DefaultMailboxes are created with every account.
var DefaultMailboxes = []struct {
	Name       string
	SpecialUse string
}{
	{"INBOX", ""},
	{"Drafts", UseDrafts},
	{"Sent", UseSent},
	{"Trash", UseTrash},
	{"Junk", UseJunk},
	{"Archive", UseArchive},
}

// Status is the STATUS of a mailbox (RFC 9051 §6.3.11), all computed in one
// consistent read.
type Status struct {
	Mailbox       MailboxID
	Messages      int
	Unseen        int
	Deleted       int   // messages with \Deleted
	Size          int64 // sum of message sizes (STATUS=SIZE)
	DeletedSize   int64 // sum of the sizes of the messages with \Deleted
	UIDNext       mail.UID
	UIDValidity   uint32
	HighestModSeq mail.ModSeq
	// FirstRecent is the first UID not yet claimed by ClaimRecent (RFC 3501
	// \Recent); messages with UID >= FirstRecent are recent.
	FirstRecent mail.UID
}

// Message is the metadata of one message in a mailbox.
type Message struct {
	UID          mail.UID
	ModSeq       mail.ModSeq
	Flags        mail.Flags
	InternalDate time.Time
	SaveDate     time.Time
	Size         int64
	// BlobID identifies the stored body for OpenBody. It is opaque: the
	// same for copies and moves of a message and for the targets of one
	// delivery, not derived from the content. A BlobID is never given to
	// another body, so what is derived from a body may be kept by its
	// BlobID (see SummaryRefresher for the one exception).
	BlobID string
	// EmailID is a stable identifier of the body across mailboxes (RFC 8474
	// OBJECTID EMAILID); copies and moves keep it.
	EmailID string
	// POPUID is the POP3 UIDL; when empty the POP3 server derives one from
	// UIDVALIDITY and UID.
	POPUID string
	// Summary is set only when requested (ListOptions.Summary).
	Summary *message.Summary
}

// ListOptions selects what Messages returns.
type ListOptions struct {
	// Summary loads and decodes the parse results.
	Summary bool
	// ChangedSince, when non-zero, limits the result to messages whose
	// MODSEQ is greater.
	ChangedSince mail.ModSeq
}

// FlagOp says how StoreFlags combines the given flags with the current ones.
type FlagOp int

// Flag operations of STORE (RFC 9051 §6.4.6).
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// FlagUpdate is the state of one message after a flag change.
type FlagUpdate struct {
	UID    mail.UID
	ModSeq mail.ModSeq
	Flags  mail.Flags
}

// StoreFlagsRequest is one STORE.
type StoreFlagsRequest struct {
	UIDs  mail.UIDSet
	Op    FlagOp
	Flags mail.Flags
	// UnchangedSince, when non-zero, makes the change conditional (RFC 7162
	// §3.1.3): a message whose MODSEQ is greater is not changed and is
	// reported in StoreFlagsResult.Modified.
	UnchangedSince mail.ModSeq
}

// StoreFlagsResult reports what StoreFlags did.
type StoreFlagsResult struct {
	// ModSeq is the MODSEQ given to every changed message (0 if none).
	ModSeq mail.ModSeq
	// Updated lists, in UID order, every message that exists and was not
	// refused, with its flags after the operation. Messages whose flags did
	// not change keep their MODSEQ and are listed with it.
	Updated []FlagUpdate
	// Changed is the subset of Updated whose flags actually changed.
	Changed mail.UIDSet
	// Modified holds the UIDs refused by UnchangedSince.
	Modified mail.UIDSet
}

// AppendResult reports an append or delivery to one mailbox.
type AppendResult struct {
	Mailbox     MailboxID
	UIDValidity uint32
	UIDs        []mail.UID
	ModSeq      mail.ModSeq
}

// CopyResult reports a COPY or MOVE (RFC 4315 COPYUID).
type CopyResult struct {
	UIDValidity uint32 // of the destination
	Source      []mail.UID
	Dest        []mail.UID
	// ModSeq of the destination after the copy.
	DestModSeq mail.ModSeq
	// ExpungeModSeq is the source MODSEQ of a MOVE's expunge.
	ExpungeModSeq mail.ModSeq
}

// ExpungeResult reports an expunge.
type ExpungeResult struct {
	UIDs   mail.UIDSet
	ModSeq mail.ModSeq
}

// ChangeSet is the answer of Changes.
type ChangeSet struct {
	// HighestModSeq of the mailbox when the changes were read.
	HighestModSeq mail.ModSeq
	UIDNext       mail.UID
	// Changed are the messages (new or with changed flags) whose MODSEQ is
	// greater than the one asked for, in UID order, without Summary.
	Changed []Message
	// Vanished are UIDs expunged after the MODSEQ asked for.
	Vanished mail.UIDSet
	// VanishedComplete is false when tombstones older than the MODSEQ asked
	// for have been pruned: Vanished may then miss UIDs, and the caller must
	// fall back to comparing UID lists (RFC 7162 §3.2.5.2 allows reporting
	// every UID that no longer exists).
	VanishedComplete bool
}

// NewMessage is a message to append: a staged body and its metadata.
type NewMessage struct {
	Body  Staged
	Flags mail.Flags
	// InternalDate; zero means now.
	InternalDate time.Time
	// POPUID keeps a UIDL from a migration; empty derives one.
	POPUID string
}

// Staged is a message body written to durable storage but not yet part of
// any mailbox. Stage returns one; Append and Deliver consume it (a staged
// body may be appended several times, and to several accounts). A Staged
// body that is never used is cleaned up by Discard, or at the latest by the
// start-up sweep.
type Staged interface {
	// BlobID is the hex SHA-256 of the body (for logs and checks; it is
	// not the Message.BlobID the body gets once appended).
	BlobID() string
	// Size is the body's size in bytes.
	Size() int64
	// Summary is the parse result.
	Summary() *message.Summary
	// Discard releases temporary resources. It is safe to call after the
	// body was appended, and more than once.
	Discard()
}

// Body is a stored message body.
type Body interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// BodyBytes is implemented by a Body that is held in memory: Bytes returns
// its whole content without a copy. Callers must not modify it. Protocol
// servers use it to send a small body without reading it in chunks.
type BodyBytes interface {
	Bytes() []byte
}

// BodyFile is implemented by a Body kept in a local file. A server can
// then have the kernel send the file's bytes straight to a socket
// (sendfile(2)) instead of reading them into the process: IMAP a literal,
// and POP3, which must dot-stuff the body (RFC 1939 §3), the pieces
// between the lines that begin with "." when the store knows where they
// are.
type BodyFile interface {
	Body
	// File returns the body's open file. It stays owned by the Body: the
	// caller must not close it, but may move its offset.
	File() *os.File
	// DotLines returns the offsets of the lines that begin with "."
	// (offset 0, or one after a line feed), in increasing order, and
	// whether the body ends with a line feed. ok is false when the store
	// does not know them; the caller must then scan the body itself.
	DotLines() (offsets []int64, endsLF, ok bool)
}

// MailboxKeywords is an optional ability of a Store: the keywords set on
// the messages of a mailbox, so that IMAP SELECT can list them in its
// FLAGS response (RFC 9051 §7.3.5, RFC 3501 §7.2.6: the flags applicable
// in the mailbox). The result is sorted and holds each keyword once.
type MailboxKeywords interface {
	MailboxKeywords(ctx context.Context, acct AccountID, id MailboxID) ([]string, error)
}

// BodyNUL is implemented by a Body that knows, without reading it,
// whether it contains a NUL byte. IMAP must not send NUL in an ordinary
// literal (RFC 9051 §4.3): it sends such a body as is (sendfile(2)) only
// when it holds none, and replaces NUL on the way otherwise.
type BodyNUL interface {
	// HasNUL reports whether the body contains a NUL byte; known is
	// false when the store does not know, and the caller must scan.
	HasNUL() (has, known bool)
}

// SummaryRefresher is implemented by a store that parses stored messages
// again after an upgrade, when a newer postfach makes more of them: their
// Summary changes, without an event or a new MODSEQ (the message is the
// same). SummariesCurrent reports whether that is over; until then, a
// caller that keeps decoded summaries by BlobID must not keep those it
// reads. A store without the interface never changes a summary.
type SummaryRefresher interface {
	SummariesCurrent() bool
}

// DeliveryTarget is one recipient mailbox of a delivery.
type DeliveryTarget struct {
	Account AccountID
	// Mailbox is the name of the destination; "" means INBOX. A missing
	// mailbox falls back to INBOX.
	Mailbox string
	Flags   mail.Flags
}

// DeliveryResult is the outcome for one DeliveryTarget.
type DeliveryResult struct {
	AppendResult
	Err error
}

// Event is a change notification, sent after commit (see the package doc).
type Event struct {
	Account AccountID
	// Mailbox is the mailbox that changed; 0 for account-level events.
	Mailbox MailboxID
	Kind    EventKind
	// ModSeq is the mailbox's HIGHESTMODSEQ after the change.
	ModSeq mail.ModSeq
	// Name is the mailbox name for mailbox-level events (the new name after a
	// rename), the device for EventDeviceRevoked, and OldName the previous
	// name of a rename.
	Name, OldName string
	// Origin is the value of WithOrigin in the context of the call that
	// caused the event, so a session can recognise its own changes.
	Origin uint64
	// Entries are the annotation names an EventMetadata changed (RFC 5464
	// entry names, such as "/private/comment"), set or removed; nil when
	// the backend does not say which (readers then assume any).
	Entries []string
}

// EventKind says what an Event is about.
type EventKind int

// Event kinds.
const (
	// EventMessages: messages were added, changed or expunged.
	EventMessages EventKind = iota + 1
	EventMailboxCreated
	EventMailboxDeleted
	EventMailboxRenamed
	EventSubscription
	// EventAccountDeleted: the account is gone; sessions must end.
	EventAccountDeleted
	// EventPassword: credentials changed; cached verifications are stale.
	EventPassword
	// EventMetadata: mailbox or server annotations changed.
	EventMetadata
	// EventOverflow: the subscriber fell so far behind that events were
	// dropped; anything of the account may have changed. Only an
	// EventAccountDeleted is never dropped.
	EventOverflow
	// EventDeviceRevoked: the password of the device named by Event.Name
	// was revoked (Credentials.RevokeDevice); the device's sessions must
	// end. Never dropped.
	EventDeviceRevoked
)

type originKey struct{}

// WithOrigin returns a context whose store calls tag their events with id.
func WithOrigin(ctx context.Context, id uint64) context.Context {
	return context.WithValue(ctx, originKey{}, id)
}

// Origin returns the id set by WithOrigin, or 0.
func Origin(ctx context.Context) uint64 {
	id, _ := ctx.Value(originKey{}).(uint64)
	return id
}

// Subscription receives the events of one account. Events are queued
// without blocking the publisher; C is signalled (capacity 1) whenever the
// queue becomes non-empty.
type Subscription interface {
	// C is signalled when events are waiting.
	C() <-chan struct{}
	// Drain returns and clears the queued events, in commit order.
	Drain() []Event
	// Close ends the subscription.
	Close()
}

// POP3View is what one POP3 client (a device, or the plain maildrop) has
// finished with in one mailbox.
type POP3View struct {
	Device  string
	Mailbox MailboxID
	// UIDValidity of the mailbox when Hidden was recorded; a view whose
	// UIDVALIDITY no longer matches starts afresh.
	UIDValidity uint32
	// Hidden are the UIDs the view no longer offers.
	Hidden   mail.UIDSet
	Created  time.Time
	LastUsed time.Time
}

// Problem is one inconsistency found by Check. Account, Mailbox and UID
// are 0 when the problem is not about one (the database as a whole, a body
// no message uses); the names are filled in when known.
type Problem struct {
	Account     AccountID `json:"account,omitempty"`
	Mailbox     MailboxID `json:"mailbox,omitempty"`
	UID         mail.UID  `json:"uid,omitempty"`
	AccountName string    `json:"account_name,omitempty"`
	MailboxName string    `json:"mailbox_name,omitempty"`
	What        string    `json:"what"`
}

// Store is a mail store backend. All methods are safe for concurrent use.
// Methods that take an AccountID fail with ErrNotFound for an unknown
// account, and for a mailbox that does not belong to that account.
//
// MODSEQ steps by one: every operation that changes a mailbox's messages
// (Append, Deliver, StoreFlags, Expunge, Copy and Move on each side) gives
// that mailbox's HIGHESTMODSEQ exactly the next value, and reports it. So a
// caller whose last look at a mailbox was at MODSEQ n and whose own change
// got n+1 knows nothing else changed in between (the IMAP server takes its
// own writes into its view that way, without reading the changes).
type Store interface {
	// CreateAccount creates an account with the DefaultMailboxes.
	// ErrExists if the name is taken (case-insensitively).
	CreateAccount(ctx context.Context, name, passwordHash string) (*Account, error)
	// Account looks an account up by name, case-insensitively.
	Account(ctx context.Context, name string) (*Account, error)
	// AccountByID returns an account.
	AccountByID(ctx context.Context, id AccountID) (*Account, error)
	// Accounts lists all accounts ordered by name.
	Accounts(ctx context.Context) ([]Account, error)
	// SetPassword replaces an account's password hash and publishes
	// EventPassword.
	SetPassword(ctx context.Context, id AccountID, hash string) error
	// SetAccountSetting sets (value != "") or clears a per-account setting.
	SetAccountSetting(ctx context.Context, id AccountID, key, value string) error
	// DeleteAccount removes the account and its mail and publishes
	// EventAccountDeleted. Bodies are removed later by the sweep.
	DeleteAccount(ctx context.Context, id AccountID) error

	// Mailboxes lists the account's mailboxes ordered by name.
	Mailboxes(ctx context.Context, acct AccountID) ([]Mailbox, error)
	// Mailbox looks a mailbox up by name ("INBOX" case-insensitively).
	Mailbox(ctx context.Context, acct AccountID, name string) (*Mailbox, error)
	// MailboxByID returns a mailbox.
	MailboxByID(ctx context.Context, acct AccountID, id MailboxID) (*Mailbox, error)
	// CreateMailbox creates a mailbox with a fresh UIDVALIDITY. Missing
	// parent levels are not created here (the IMAP layer decides).
	// ErrExists, ErrInvalidName, ErrMailboxLimit.
	CreateMailbox(ctx context.Context, acct AccountID, name string, specialUse []string) (*Mailbox, error)
	// CreateMailboxWith is CreateMailbox with options (see CreateOptions).
	// A store may limit the mailboxes of an account: a create that would
	// pass the limit, counting the parents it creates, fails with
	// ErrMailboxLimit and creates nothing. Concurrent creates never pass
	// the limit together.
	CreateMailboxWith(ctx context.Context, acct AccountID, name string, opt CreateOptions) (*Mailbox, error)
	// DeleteMailbox deletes a mailbox and expunges its messages (they stay
	// recoverable for the retention window). ErrInbox for INBOX.
	DeleteMailbox(ctx context.Context, acct AccountID, id MailboxID) error
	// RenameMailbox renames a mailbox and every mailbox below it
	// ("a" to "b" also renames "a/x" to "b/x"), keeping their UIDVALIDITY.
	// Renaming INBOX creates the new mailbox with a new UIDVALIDITY and moves
	// every INBOX message into it; INBOX stays, empty (RFC 9051 §6.3.6);
	// that create counts against a mailbox limit (ErrMailboxLimit).
	// Subscriptions of the renamed mailboxes move with them.
	RenameMailbox(ctx context.Context, acct AccountID, oldName, newName string) error
	// SetSubscribed subscribes or unsubscribes a name, which need not exist
	// (RFC 9051 §6.3.7). A store with a mailbox limit refuses a new
	// subscription past the same number (ErrMailboxLimit).
	SetSubscribed(ctx context.Context, acct AccountID, name string, on bool) error
	// Subscriptions lists subscribed names, existing or not.
	Subscriptions(ctx context.Context, acct AccountID) ([]string, error)
	// SetSpecialUse replaces a mailbox's special-use attributes.
	SetSpecialUse(ctx context.Context, acct AccountID, id MailboxID, uses []string) error

	// Status reads a mailbox's counters.
	Status(ctx context.Context, acct AccountID, id MailboxID) (*Status, error)
	// UIDs returns every UID in the mailbox and the HIGHESTMODSEQ they
	// reflect, read in one snapshot.
	UIDs(ctx context.Context, acct AccountID, id MailboxID) (mail.UIDSet, mail.ModSeq, error)
	// Messages yields the messages of the mailbox whose UID is in uids, in
	// UID order. Implementations read in chunks and do not hold a read
	// transaction open while the caller processes results. Stop early by
	// returning false from the loop body.
	Messages(ctx context.Context, acct AccountID, id MailboxID, uids mail.UIDSet, opt ListOptions) func(yield func(*Message, error) bool)
	// Changes reports what changed in the mailbox after MODSEQ since: new
	// and changed messages and vanished UIDs (RFC 7162).
	Changes(ctx context.Context, acct AccountID, id MailboxID, since mail.ModSeq) (*ChangeSet, error)
	// ClaimRecent marks the messages below upTo (the first UID the
	// claiming session has not seen; at most UIDNEXT) as no longer recent
	// for later sessions and returns the previous first recent UID
	// (RFC 3501 \Recent: only one session sees a message as recent).
	// Claims are serialised with every other write but need not be durable
	// when it returns: a claim is lost when its commit fails or the server
	// crashes, and a message may then be recent once more.
	ClaimRecent(ctx context.Context, acct AccountID, id MailboxID, upTo mail.UID) (mail.UID, error)

	// Stage writes a message body to durable storage and parses it. It reads
	// r to EOF; more than maxSize bytes (if > 0) is ErrTooBig, an empty body
	// ErrEmptyMessage. The body is stored as read: callers normalise line
	// endings first.
	Stage(ctx context.Context, r io.Reader, maxSize int64) (Staged, error)
	// Append adds messages to a mailbox atomically: all or none
	// (MULTIAPPEND, RFC 3502). They get consecutive UIDs and one MODSEQ.
	// ErrOverQuota when the account would be over its quota (quota.go).
	Append(ctx context.Context, acct AccountID, id MailboxID, msgs []NewMessage) (*AppendResult, error)
	// Deliver appends one staged body to several accounts' mailboxes; each
	// target succeeds or fails on its own. Concurrent calls share commits.
	Deliver(ctx context.Context, body Staged, targets []DeliveryTarget) ([]DeliveryResult, error)
	// DeliverAll is Deliver where the targets succeed or fail together:
	// when one fails, none is stored, and the results of the others carry
	// ErrNotDelivered. SMTP needs it: it has one reply for all recipients,
	// so after a partial delivery any failure reply would make the client
	// send the message again to the recipients that already have it.
	DeliverAll(ctx context.Context, body Staged, targets []DeliveryTarget) ([]DeliveryResult, error)
	// StoreFlags changes flags.
	StoreFlags(ctx context.Context, acct AccountID, id MailboxID, req StoreFlagsRequest) (*StoreFlagsResult, error)
	// Copy copies messages (which keep their flags, RFC 9051 §6.4.7) to
	// another mailbox of the same account; the bodies are shared.
	// ErrOverQuota when the account would be over its quota (quota.go).
	Copy(ctx context.Context, acct AccountID, src MailboxID, uids mail.UIDSet, dst MailboxID) (*CopyResult, error)
	// Move copies and then expunges, atomically (RFC 6851). A move into
	// the source mailbox itself gives the messages new UIDs: the copies
	// get one MODSEQ (DestModSeq) and the expunge of the originals the
	// next (ExpungeModSeq).
	Move(ctx context.Context, acct AccountID, src MailboxID, uids mail.UIDSet, dst MailboxID) (*CopyResult, error)
	// Expunge removes messages for good from the mailbox's view: those in
	// uids (nil means every message), and when onlyDeleted is set only those
	// with \Deleted. They become tombstones, recoverable for the retention
	// window.
	Expunge(ctx context.Context, acct AccountID, id MailboxID, uids mail.UIDSet, onlyDeleted bool) (*ExpungeResult, error)
	// OpenBody opens a stored body for reading. ErrNotFound for an unknown
	// blobID; ErrDamaged when the body is known to be damaged (its file is
	// missing or has the wrong size, or a check found its content does not
	// match its hash).
	OpenBody(ctx context.Context, blobID string) (Body, error)

	// POP3View returns the state of a POP3 view of a mailbox: device ""
	// is the plain maildrop (its hidden set holds messages deleted in
	// pop3.delete=hide mode), any other name a per-device view. A view
	// that does not exist yet is returned empty, with Created zero.
	POP3View(ctx context.Context, acct AccountID, device string, mailbox MailboxID) (*POP3View, error)
	// HidePOP3 adds UIDs to a view's hidden set and records the time of
	// use, creating the view if needed. Durable when it returns.
	HidePOP3(ctx context.Context, acct AccountID, device string, mailbox MailboxID, uids mail.UIDSet) error
	// POP3Views lists the account's views of every mailbox.
	POP3Views(ctx context.Context, acct AccountID) ([]POP3View, error)
	// ForgetPOP3View removes every view of the device (ErrNotFound if it
	// has none).
	ForgetPOP3View(ctx context.Context, acct AccountID, device string) error

	// Metadata returns the account's annotations (RFC 5464) of a mailbox,
	// or of the server when mailbox is 0, keyed by entry name
	// ("/private/comment"). Entries of a mailbox follow it through renames
	// and go with it when it is deleted.
	Metadata(ctx context.Context, acct AccountID, mailbox MailboxID) (map[string][]byte, error)
	// SetMetadata sets entries (a nil value deletes one) atomically and
	// publishes EventMetadata. When the account would then hold more than
	// maxEntries entries or more than maxBytes bytes of values (for limits
	// > 0), nothing changes and the error wraps ErrOverQuota.
	SetMetadata(ctx context.Context, acct AccountID, mailbox MailboxID, entries map[string][]byte, maxEntries int, maxBytes int64) error

	// Usage returns what the account's messages take and its quota
	// (quota.go). It reads a counter, not the messages.
	Usage(ctx context.Context, acct AccountID) (*Usage, error)
	// SetQuota sets the account's own quota; a field QuotaDefault makes
	// that resource follow the store's default, 0 means no limit.
	SetQuota(ctx context.Context, acct AccountID, q Quota) error

	// Subscribe starts receiving the account's events.
	Subscribe(acct AccountID) Subscription

	// Check verifies the store: the database's own integrity check and the
	// invariants above. It returns the problems found; err is for failures
	// to run the check at all.
	Check(ctx context.Context) ([]Problem, error)
	// Close flushes and closes the store. Pending writes finish first.
	Close() error
}
