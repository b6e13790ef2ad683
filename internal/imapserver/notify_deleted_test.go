package imapserver

import "testing"

// TestNotifyDeletedSubscribedMailbox: NOTIFY's MailboxName event for a
// deleted mailbox whose name stays subscribed (RFC 3501 §6.3.6: DELETE
// does not unsubscribe) says so: "\NonExistent \Subscribed" (RFC 5465
// §5.4 with RFC 5258 §3's LIST attributes); a deleted mailbox that was
// not subscribed is "\NonExistent" alone, and a rename of a subscribed
// one shows the new name as the store has it. (Before, the deleted
// subscribed mailbox lacked \Subscribed.)
func TestNotifyDeletedSubscribedMailbox(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	b := ts.login("alice@example.org")
	b.ok("b1 NOTIFY SET (personal (MailboxName))")
	a := ts.login("alice@example.org")
	a.ok("a1 CREATE Kept")
	b.pushed(`* LIST () "/" Kept`)
	a.ok("a2 SUBSCRIBE Kept")
	a.ok("a3 DELETE Kept")
	b.pushed(`* LIST (\NonExistent \Subscribed) "/" Kept`)
	a.ok("a4 CREATE Gone")
	b.pushed(`* LIST () "/" Gone`)
	a.ok("a5 DELETE Gone")
	b.pushed(`* LIST (\NonExistent) "/" Gone`)
	// LIST agrees.
	b.expect(`b2 LIST (SUBSCRIBED) "" "K*"`, `* LIST (\NonExistent \Subscribed) "/" Kept`, "b2 OK LIST completed")
}
