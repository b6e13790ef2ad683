// Package imapurl reads IMAP URLs (RFC 5092) and carries out URLAUTH
// (RFC 4467): it signs URLs of a user's messages so that someone else —
// the message submission server acting for the user (BURL, RFC 4468), or
// another user the owner names — can read what they name without the
// owner's password, and it resolves such URLs to the bytes they name.
// The IMAP server uses it for GENURLAUTH, URLFETCH (with the BINARY and
// BODYPARTSTRUCTURE of RFC 5524) and CATENATE (RFC 4469); submission
// will use it for BURL. It imports no protocol package, so both can.
//
// # Keys and tokens
//
// Each mailbox has an access key (store.AccessKeys): 256 random bits,
// made when a URL of the mailbox is first signed, removed by RESETKEY
// and with the mailbox. The token of the INTERNAL mechanism (the only
// one) is HMAC-SHA-256 with that key over the rump URL exactly as the
// client wrote it and the mailbox's UIDVALIDITY (Sign), in hex. Anything
// that changes the rump (the user, mailbox, UID, section, partial range,
// expiry or access identifier) changes the token; a reset key, a deleted
// mailbox or a new UIDVALIDITY voids every URL signed before. Tokens are
// compared in constant time (Verify).
//
// # Who may use a URL
//
// Authorize signs only URLs of the requester's own mailboxes (the user
// in the URL must be the requester's account). Open admits a URL by its
// access identifier (RFC 4467 §3): "submit+USER" only for the
// submission server acting for USER (Requester.Submit; an IMAP session
// never is it), "user+USER" only for USER, "authuser" for any account of
// the server; "anonymous" is neither signed nor admitted. The data is
// then read from the owner's mailbox. Every failure is the one error
// ErrInvalid, which says nothing of why, so that trying URLs teaches an
// attacker nothing about other accounts. URLs without URLAUTH reach only
// the requester's own account (OpenOwn, for CATENATE).
//
// # Invariants
//
// The package has no mutable package-level state; a Resolver is safe for
// concurrent use. A URL never reads an account other than the one it
// names in its server part, and never that one without a valid token
// unless it is the requester's own.
package imapurl
