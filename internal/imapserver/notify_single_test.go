package imapserver

import "testing"

// TestNotifyOneMessageEvent: for mailboxes other than the selected one,
// NOTIFY accepts MessageExpunge, MessageNew or FlagChange alone (RFC
// 5465 §5 asks for them together; Dovecot accepts one alone and clients
// rely on it, see docs/imap.md) and reports only what was asked for.
func TestNotifyOneMessageEvent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	b := ts.login("alice@example.org")
	b.ok("b1 SELECT INBOX")
	a := ts.login("alice@example.org")
	a.ok("a1 SELECT Sent")

	b.expect("b2 NOTIFY SET STATUS (MAILBOXES Sent (MessageExpunge))",
		"* STATUS Sent (MESSAGES 0 UIDNEXT 1 UIDVALIDITY … UNSEEN 0)",
		"b2 OK NOTIFY completed")
	// New messages and flag changes are not reported; the expunge is
	// (the STATUS shows that the appends before it were not).
	a.ok("a2 APPEND Sent {3+}\r\none")
	a.ok("a3 APPEND Sent {3+}\r\ntwo")
	a.ok(`a4 STORE 1 +FLAGS.SILENT (\Deleted \Seen)`)
	a.ok("a5 EXPUNGE")
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 3 UIDVALIDITY … UNSEEN 1)")

	b.expect("b3 NOTIFY SET (MAILBOXES Sent (MessageNew))", "b3 OK NOTIFY completed")
	a.ok(`a6 STORE 1 +FLAGS.SILENT (\Deleted)`)
	a.ok("a7 EXPUNGE")
	a.ok("a8 APPEND Sent {5+}\r\nthree")
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 4 UIDVALIDITY … UNSEEN 1)")

	b.expect("b4 NOTIFY SET (MAILBOXES Sent (FlagChange))", "b4 OK NOTIFY completed")
	a.ok(`a9 STORE 1 +FLAGS.SILENT (\Seen)`)
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 4 UIDVALIDITY … UNSEEN 0)")

	// The selected mailbox still needs both (its message numbers).
	b.expect("b5 NOTIFY SET (selected (MessageExpunge))", "b5 BAD MessageNew and MessageExpunge must be given together")
	b.expect("b6 NOTIFY NONE", "b6 OK NOTIFY completed")
}
