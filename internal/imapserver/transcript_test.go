package imapserver

import (
	"strings"
	"testing"
)

func TestGreetingCapabilityLogin(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	c := ts.dial()
	c.expect("a1 CAPABILITY",
		"* CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS STATUS=SIZE MULTIAPPEND CATENATE BINARY UTF8=ACCEPT CONDSTORE QRESYNC PREVIEW UNAUTHENTICATE REPLACE APPENDLIMIT=67108864…",
		"a1 OK CAPABILITY completed")
	c.expect("a2 SELECT INBOX", "a2 BAD Log in first")
	c.expect("a3 LOGIN alice@example.org wrong", "a3 NO [AUTHENTICATIONFAILED] Authentication failed")
	c.expect("a4 LOGIN alice@example.org \""+testPassword+"\"", "a4 OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ID ENABLE IDLE …")
	c.expect("a5 LOGIN alice@example.org x", "a5 BAD Command not allowed in this state")
	c.expect("a6 NOOP", "a6 OK NOOP completed")
	c.expect("a7 BLURDYBLOOP", "a7 BAD unknown command")
	c.expect("a8 LOGOUT", "* BYE Logging out", "a8 OK LOGOUT completed")
}

func TestLoginDisabledWithoutTLS(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) { s.loopbackSec = false })
	ts.addUser("alice@example.org")
	c := ts.dial()
	lines := c.ok("a1 CAPABILITY")
	if !strings.Contains(lines[0], " LOGINDISABLED") || strings.Contains(lines[0], " AUTH=") {
		t.Fatalf("capabilities before TLS: %s", lines[0])
	}
	c.expect("a2 LOGIN alice@example.org x", "a2 NO [PRIVACYREQUIRED] Plaintext login disallowed on non-secure connections: use STARTTLS first")
	c.expect("a3 AUTHENTICATE PLAIN", "a3 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections: use STARTTLS first")
}

func TestMailboxCommands(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")
	c.expect(`a1 LIST "" ""`, `* LIST (\Noselect) "/" ""`, "a1 OK LIST completed")
	c.expect(`a2 LIST "" *`,
		`* LIST (\HasNoChildren \Archive) "/" Archive`,
		`* LIST (\HasNoChildren \Drafts) "/" Drafts`,
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren \Junk) "/" Junk`,
		`* LIST (\HasNoChildren \Sent) "/" Sent`,
		`* LIST (\HasNoChildren \Trash) "/" Trash`,
		"a2 OK LIST completed")
	c.expect("a3 CREATE work/projects/x", "a3 OK [MAILBOXID …] CREATE completed")
	c.expect("a4 CREATE work", "a4 NO [ALREADYEXISTS] Mailbox already exists")
	c.expect("a5 CREATE inbox", "a5 NO [ALREADYEXISTS] INBOX always exists")
	c.expect(`a6 LIST "" work/%`, `* LIST (\HasChildren) "/" work/projects`, "a6 OK LIST completed")
	c.expect(`a7 LIST "work/" *`, `* LIST (\HasChildren) "/" work/projects`, `* LIST (\HasNoChildren) "/" work/projects/x`, "a7 OK LIST completed")
	c.expect("a8 CREATE a//b", "a8 NO [CANNOT] Invalid mailbox name: empty hierarchy level")
	c.expect("a9 CREATE Memos (USE (\\Drafts))", "a9 OK [MAILBOXID …] CREATE completed")
	c.expect("a10 CREATE Other (USE (\\Important))", "a10 NO [USEATTR] Unsupported special-use attribute")
	c.expect(`a11 LIST (SPECIAL-USE) "" *`,
		`* LIST (\HasNoChildren \Archive) "/" Archive`,
		`* LIST (\HasNoChildren \Drafts) "/" Drafts`,
		`* LIST (\HasNoChildren \Junk) "/" Junk`,
		`* LIST (\HasNoChildren \Drafts) "/" Memos`,
		`* LIST (\HasNoChildren \Sent) "/" Sent`,
		`* LIST (\HasNoChildren \Trash) "/" Trash`,
		"a11 OK LIST completed")
	// DELETE of a mailbox with children keeps the name as \Noselect (RFC 9051 §6.3.5).
	c.expect("b1 DELETE work", "b1 OK DELETE completed")
	c.expect(`b2 LIST "" work*`, `* LIST (\Noselect \HasChildren) "/" work`, `* LIST (\HasChildren) "/" work/projects`, `* LIST (\HasNoChildren) "/" work/projects/x`, "b2 OK LIST completed")
	c.expect("b3 DELETE work", "b3 NO [HASCHILDREN] Mailbox has children")
	c.expect("b4 DELETE INBOX", "b4 NO [CANNOT] INBOX cannot be deleted")
	c.expect("b5 DELETE nosuch", "b5 NO [NONEXISTENT] No such mailbox")
	c.expect("b6 RENAME work/projects done", "b6 OK RENAME completed")
	c.expect(`b7 LIST "" done*`, `* LIST (\HasChildren) "/" done`, `* LIST (\HasNoChildren) "/" done/x`, "b7 OK LIST completed")
	c.expect("b8 RENAME done Sent", "b8 NO [ALREADYEXISTS] Mailbox already exists")
	c.expect("b9 RENAME nosuch x", "b9 NO [NONEXISTENT] No such mailbox")
	// Subscriptions, LSUB, LIST-EXTENDED.
	c.expect("c1 SUBSCRIBE done/x", "c1 OK SUBSCRIBE completed")
	c.expect("c2 SUBSCRIBE gone", "c2 OK SUBSCRIBE completed")
	// The default mailboxes are subscribed; "gone" does not exist.
	c.expect(`c3 LSUB "" *`, `* LSUB () "/" Archive`, `* LSUB () "/" Drafts`, `* LSUB () "/" INBOX`, `* LSUB () "/" Junk`,
		`* LSUB () "/" Sent`, `* LSUB () "/" Trash`, `* LSUB () "/" done/x`, `* LSUB (\Noselect) "/" gone`, "c3 OK LSUB completed")
	c.expect(`c4 LSUB "" d%`, `* LSUB (\Noselect) "/" done`, "c4 OK LSUB completed")
	c.expect(`c5 LIST (SUBSCRIBED) "" *o*`, `* LIST (\HasNoChildren \Subscribed) "/" INBOX`, `* LIST (\HasNoChildren \Subscribed) "/" done/x`, `* LIST (\NonExistent \Subscribed) "/" gone`, "c5 OK LIST completed")
	c.expect(`c6 LIST (SUBSCRIBED RECURSIVEMATCH) "" %o%`, `* LIST (\HasNoChildren \Subscribed) "/" INBOX`, `* LIST (\HasChildren) "/" done ("CHILDINFO" ("SUBSCRIBED"))`, `* LIST (\NonExistent \Subscribed) "/" gone`, "c6 OK LIST completed")
	c.expect(`c7 LIST "" INBOX RETURN (STATUS (MESSAGES UIDNEXT SIZE))`, `* LIST (\HasNoChildren) "/" INBOX`, `* STATUS INBOX (MESSAGES 0 UIDNEXT 1 SIZE 0)`, "c7 OK LIST completed")
	c.expect("c8 UNSUBSCRIBE gone", "c8 OK UNSUBSCRIBE completed")
	c.expect("c9 NAMESPACE", `* NAMESPACE (("" "/")) NIL NIL`, "c9 OK NAMESPACE completed")
	// Modified UTF-7 for rev1, UTF-8 after ENABLE UTF8=ACCEPT.
	c.expect("d1 CREATE &AMQ-pfel", "d1 OK [MAILBOXID …] CREATE completed")
	c.expect(`d2 LIST "" &AMQ-*`, `* LIST (\HasNoChildren) "/" &AMQ-pfel`, "d2 OK LIST completed")
	c.expect("d3 ENABLE UTF8=ACCEPT", "* ENABLED UTF8=ACCEPT", "d3 OK ENABLE completed")
	c.expect(`d4 LIST "" "Ä*"`, `* LIST (\HasNoChildren) "/" "Äpfel"`, "d4 OK LIST completed")
	c.expect(`d5 STATUS "Äpfel" (MESSAGES UNSEEN UIDVALIDITY HIGHESTMODSEQ APPENDLIMIT DELETED)`, `* STATUS "Äpfel" (MESSAGES 0 UIDVALIDITY …`, "d5 OK STATUS completed")
	// RENAME INBOX moves its messages and leaves INBOX empty (RFC 9051 §6.3.6).
	c.expect("e1 APPEND INBOX {3+}\r\nabc", "e1 OK [APPENDUID … 1] APPEND completed")
	c.expect("e2 RENAME INBOX Old", "e2 OK RENAME completed")
	c.expect("e3 STATUS INBOX (MESSAGES)", "* STATUS INBOX (MESSAGES 0)", "e3 OK STATUS completed")
	c.expect("e4 STATUS Old (MESSAGES)", "* STATUS Old (MESSAGES 1)", "e4 OK STATUS completed")
	c.expect("e5 SELECT Nosuch", "e5 NO [NONEXISTENT] No such mailbox")
	c.expect("e6 STATUS Nosuch (MESSAGES)", "e6 NO [NONEXISTENT] No such mailbox")
	c.expect("e7 SELECT work", "e7 NO [NONEXISTENT] No such mailbox")
	c.expect("e8 CREATE trailing/", "e8 OK [MAILBOXID …] CREATE completed")
	c.expect(`e9 LIST "" trailing`, `* LIST (\HasNoChildren) "/" trailing`, "e9 OK LIST completed")
}
