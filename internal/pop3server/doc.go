// Package pop3server is postfach's POP3 server: RFC 1939 with CAPA
// (RFC 2449), SASL (RFC 5034), STLS (RFC 2595), the response codes of
// RFC 2449 §8 and RFC 3206, and PIPELINING, on the same store IMAP uses.
//
// # The maildrop
//
// The maildrop is the account's INBOX. At login the session takes a
// snapshot of it (UID, size, body and UIDL of every message offered) and
// numbers the messages 1..n; the numbers stay fixed for the session, as
// RFC 1939 §4 requires. Mail that arrives during the session is offered in
// the next one. A message that another client (IMAP) expunges during the
// session is noticed through the store's change events before each command;
// from then on it is treated like a message DELEd in this session that RSET
// cannot bring back: LIST and UIDL leave it out, STAT does not count it, and
// RETR, TOP, LIST n, UIDL n and DELE n answer "-ERR message n was removed by
// another client".
//
// Which messages are offered depends on the login:
//   - "ADDRESS" (the plain maildrop): INBOX minus the plain maildrop's
//     hidden set (messages DELEd in pop3.delete=hide mode), minus messages
//     flagged \Deleted when HideDeleted is set.
//   - "ADDRESS#DEVICE" (a device view, when DeviceViews is on): INBOX minus
//     that device's hidden set, minus \Deleted messages as above.
//
// What DELE does is decided at QUIT (the UPDATE state, RFC 1939 §6): in a
// device view the DELEd messages join the device's hidden set; on the plain
// maildrop pop3.delete says hide (the plain maildrop's hidden set; the
// default, so that POP3 never takes mail away from IMAP devices), expunge
// (Store.Expunge, the path IMAP uses) or trash (Store.Move to the \Trash
// special-use mailbox; expunge when the account has none).
//
// # UIDLs
//
// A message's UIDL (RFC 1939 §7) is the POPUID stored with it when that is
// a valid unique-id (1 to 70 characters 0x21..0x7E; a migration keeps the
// UIDL a message had on its old server), else it is derived from the UID and
// the UIDVALIDITY of INBOX: 16 upper-case hexadecimal digits, the UID in
// the first 8 and the UIDVALIDITY in the last 8 (the format Dovecot uses by
// default, so mail migrated from Dovecot with its UIDs keeps its UIDLs).
// Neither UID nor UIDVALIDITY ever changes for a message in INBOX, so
// neither does its UIDL. Should a stored POPUID equal another message's
// UIDL, the later message (by UID) gets its derived UIDL instead.
//
// # Sessions and locks
//
// One goroutine per connection runs the session; commands run serially.
// Seen flags set by RETR are written by a helper goroutine owned by the
// session, in batches (collected for a few milliseconds), so a download
// does not wait for one commit per message; QUIT waits until every flag is
// stored before it answers. Server.mu guards the in-use set (one session per maildrop or
// device view in this process, RFC 2449 §8.1.1 [IN-USE]) and the
// last-login times for LOGIN-DELAY. No lock is held during network I/O or
// store calls.
//
// # Sending a message
//
// RETR streams the body from the store: a body kept in the database is
// stuffed from memory, one kept in a file with few dot lines goes from the
// page cache to the socket with sendfile(2) on a plain connection (the
// stuffing dots written between its pieces), anything else is scanned in
// 256 KiB chunks. A reply that takes more than one write to the socket (a
// message larger than the write buffer, every sendfile reply, under TLS
// one larger than a record) is corked (TCP_CORK, netserve.Cork): the
// client receives full segments instead of a lone status line, the
// octets left over from every 64 KiB splice, each stuffing dot and the
// terminator as segments of their own, each of which costs it a wakeup.
// The session releases the cork when it has written everything and waits
// for the next command; pipelined replies stay corked together.
//
// # Listeners
//
// Serve takes plain listeners (STLS upgrades a connection when TLSConfig is
// set), ServeTLS implicit-TLS ones; ImplicitTLS adapts the Server for
// callers that start every listener with Serve. Both kinds share one Server
// and so one in-use set.
//
// # Shutdown
//
// Server.Shutdown stops accepting and drains: a session waiting for a
// command gets "-ERR [SYS/TEMP]" and is closed without entering the UPDATE
// state; a response being written (a RETR) is finished first. The idle
// timeout closes a connection without a response and without UPDATE
// (RFC 1939 §3).
package pop3server
