package store

import "context"

// AccessKeySize is the size in bytes of a mailbox access key: 256 bits,
// above the 128 that RFC 4467 §2.2 asks for at least.
const AccessKeySize = 32

// AccessKeys is implemented by stores that keep mailbox access keys for
// URLAUTH (RFC 4467 §2.2, §3; internal/imapurl): one random secret per
// account and mailbox, with which the IMAP server signs the URLs that
// GENURLAUTH hands out and checks those that URLFETCH, CATENATE and BURL
// present. A key is made the first time a URL of the mailbox is signed,
// and is never shown to anyone. It belongs to the mailbox, not its name:
// it follows a rename, and goes when the mailbox is deleted (a mailbox
// created later under the same name gets a new one), so URLs signed for
// a mailbox never reach another. Methods fail with ErrNotFound for an
// unknown account, and for a mailbox that does not exist or is not the
// account's.
type AccessKeys interface {
	// AccessKey returns the key of the mailbox; ErrNotFound when it has
	// none (none was made yet, or it was reset).
	AccessKey(ctx context.Context, acct AccountID, mailbox MailboxID) ([]byte, error)
	// EnsureAccessKey returns the key of the mailbox, making a random
	// one of AccessKeySize bytes when it has none; of concurrent calls
	// for a mailbox without a key, all get the one key made. A \Noselect
	// name (Mailbox.NoSelect) has no messages to sign URLs for:
	// ErrNoSelect.
	EnsureAccessKey(ctx context.Context, acct AccountID, mailbox MailboxID) ([]byte, error)
	// ResetAccessKeys removes the key of the mailbox, or every key of
	// the account when mailbox is 0, so that every URL signed with it
	// fails from then on (RESETKEY, RFC 4467 §6.1); the next
	// EnsureAccessKey makes a new one. Durable when it returns.
	ResetAccessKeys(ctx context.Context, acct AccountID, mailbox MailboxID) error
}
