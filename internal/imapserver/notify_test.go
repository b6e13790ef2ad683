package imapserver

import (
	"strings"
	"testing"
	"time"
)

// pushed reads the next line, which the server must send on its own (the
// client sends nothing meanwhile), within a generous bound.
func (c *client) pushed(want string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.expectLine(want)
	c.c.SetReadDeadline(time.Now().Add(60 * time.Second))
}

// TestNotifySyntax: what NOTIFY refuses (RFC 5465 §3.1, §8): BAD for
// syntax and the rules of the event lists, NO [BADEVENT] for events
// postfach does not support.
func TestNotifySyntax(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")
	if caps := strings.Join(c.ok("a0 CAPABILITY"), " "); !strings.Contains(caps, " NOTIFY ") {
		t.Fatalf("capabilities: %s", caps)
	}
	for _, cmd := range []string{
		"NOTIFY", "NOTIFY BOGUS", "NOTIFY SET", "NOTIFY SET STATUS", "NOTIFY SET ()",
		"NOTIFY SET (bogus (MessageNew MessageExpunge))",
		"NOTIFY SET (personal MessageNew)",
		"NOTIFY SET (selected (MailboxName))",
		"NOTIFY SET (selected (MessageNew))",
		"NOTIFY SET (selected-delayed (FlagChange))",
		"NOTIFY SET (selected (MessageExpunge))",
		"NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))",
		"NOTIFY SET (personal (MailboxName (UID)))",
	} {
		got := c.do("x " + cmd)
		if last := got[len(got)-1]; !strings.HasPrefix(last, "x BAD") {
			t.Errorf("%s: %s", cmd, last)
		}
	}
	bad := "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)] Unsupported event"
	c.expect("b1 NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))", "b1 "+bad)
	c.expect("b2 NOTIFY SET (personal (MailboxName SomethingNew))", "b2 "+bad)
	c.expect("b3 NOTIFY NONE", "b3 OK NOTIFY completed")
}

// TestNotifyOtherMailboxes is issue 4's scenario 2 with NOTIFY, and the
// other events of mailboxes that are not selected: device B, selected on
// INBOX and idle between commands (not in IDLE), hears at once about a
// message device A puts in Sent, flag changes there, folders created,
// renamed and deleted, subscriptions and annotations.
func TestNotifyOtherMailboxes(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	b := ts.login("alice@example.org")
	b.ok("b1 SELECT INBOX")
	b.expect("b2 NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange))",
		"* STATUS Archive (MESSAGES 0 UIDNEXT 1 UIDVALIDITY … UNSEEN 0)",
		"* STATUS Drafts (MESSAGES 0 UIDNEXT 1 UIDVALIDITY … UNSEEN 0)",
		"* STATUS Junk (MESSAGES 0 UIDNEXT 1 UIDVALIDITY … UNSEEN 0)",
		"* STATUS Sent (MESSAGES 0 UIDNEXT 1 UIDVALIDITY … UNSEEN 0)",
		"* STATUS Trash (MESSAGES 0 UIDNEXT 1 UIDVALIDITY … UNSEEN 0)",
		"b2 OK NOTIFY completed")

	a := ts.login("alice@example.org")
	a.ok("a1 APPEND Sent (\\Seen) {27+}\r\nSubject: sent at work\r\n\r\nhi")
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 0)")
	// B fetches it.
	// EXAMINE shows the new message as \Recent without claiming it
	// (RFC 3501 §6.3.2).
	b.expect("b3 EXAMINE Sent", "* FLAGS …", "* OK [PERMANENTFLAGS …", "* 1 EXISTS", "* 1 RECENT",
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 2] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …", "b3 OK [READ-ONLY] EXAMINE completed")
	b.expect("b4 FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]", "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {25}\r\nSubject: sent at work\r\n\r\n)", "b4 OK FETCH completed")
	b.ok("b5 SELECT INBOX")

	// FlagChange elsewhere: STATUS with the new UNSEEN.
	a.ok("a2 SELECT Sent")
	a.ok(`a3 STORE 1 -FLAGS.SILENT (\Seen)`)
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 1)")

	// MailboxName: created, renamed (with OLDNAME), deleted.
	a.ok("a4 CREATE Projects")
	b.pushed(`* LIST () "/" Projects`)
	a.ok("a5 RENAME Projects Work")
	b.pushed(`* LIST () "/" Work ("OLDNAME" (Projects))`)
	a.ok("a6 DELETE Work")
	b.pushed(`* LIST (\NonExistent) "/" Work`)

	// SubscriptionChange, also for names that do not exist.
	a.ok("a7 SUBSCRIBE Later")
	b.pushed(`* LIST (\NonExistent \Subscribed) "/" Later`)
	a.ok("a8 UNSUBSCRIBE Later")
	b.pushed(`* LIST (\NonExistent) "/" Later`)

	// MailboxMetadataChange and ServerMetadataChange name the entries.
	a.ok(`a9 SETMETADATA Archive (/private/comment "old mail")`)
	b.pushed(`* METADATA Archive /private/comment`)
	a.ok(`a10 SETMETADATA "" (/shared/comment "x" /private/vendor/example/y "z")`)
	b.pushed(`* METADATA "" /private/vendor/example/y /shared/comment`)
	// Of the selected mailbox too (it is not a message event).
	a.ok(`a11 SETMETADATA INBOX (/private/comment NIL)`)
	b.pushed(`* METADATA INBOX /private/comment`)

	// NOTIFY NONE: nothing more.
	b.expect("b6 NOTIFY NONE", "b6 OK NOTIFY completed")
	a.ok("a12 CREATE Quiet")
	a.ok("a13 APPEND Sent {10+}\r\nSubject: x")
	b.expect("b7 NOOP", "b7 OK NOOP completed")
}

// TestNotifyFilters: which mailboxes each filter covers (RFC 5465 §6);
// the first group that covers a mailbox decides, NONE included.
func TestNotifyFilters(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	a := ts.login("alice@example.org")
	a.ok("a1 CREATE Projects/x")
	a.ok("a2 CREATE Lists/go")
	a.ok("a3 UNSUBSCRIBE Junk")
	b := ts.login("alice@example.org")
	b.ok("b1 NOTIFY SET (subtree Projects (MessageNew MessageExpunge)) (mailboxes Sent (MessageNew MessageExpunge)) (inboxes (MessageNew MessageExpunge)) (mailboxes Trash NONE) (subscribed (MessageNew MessageExpunge))")
	for _, mb := range []string{"Lists/go", "Trash", "Junk", "Projects/x", "Sent", "INBOX", "Drafts"} {
		ts.deliver(acct, mb, msg("to "+mb, "x"))
	}
	// Lists/go (not subscribed: CREATE does not subscribe), Trash (NONE)
	// and Junk (unsubscribed) are left out.
	b.pushed("* STATUS Projects/x (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 1)")
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 1)")
	b.pushed("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 1)")
	b.pushed("* STATUS Drafts (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 1)")
	b.expect("b2 NOOP", "b2 OK NOOP completed")
	// CONDSTORE sessions also get HIGHESTMODSEQ.
	b.ok("b3 ENABLE CONDSTORE")
	ts.deliver(acct, "Sent", msg("again", "x"))
	b.pushed("* STATUS Sent (MESSAGES 2 UIDNEXT 3 UIDVALIDITY … UNSEEN 2 HIGHESTMODSEQ …)")
}

// TestNotifySelected: the selected filter pushes the selected mailbox's
// changes between commands, expunges included, with the MessageNew fetch
// attributes; selected-delayed keeps them for the next command (or
// IDLE); without either, others' changes of the selected mailbox are not
// reported (RFC 5465 §5, §6.1).
func TestNotifySelected(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("first", "x"))
	b := ts.login("alice@example.org")
	b.ok("b0 ENABLE IMAP4rev2")
	b.ok("b1 SELECT INBOX")
	b.ok("b2 NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge))")
	a := ts.login("alice@example.org")
	a.ok("a1 SELECT INBOX")

	// MessageNew with its fetch attributes, at once.
	ts.deliver(acct, "INBOX", msg("second", "x"))
	b.pushed("* 2 EXISTS")
	b.pushed("* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: second\r\n\r\n)")
	// FlagChange.
	a.ok("a1b NOOP")
	a.ok(`a2 UID STORE 2 +FLAGS.SILENT (\Flagged)`)
	b.pushed(`* 2 FETCH (UID 2 FLAGS (\Flagged))`)
	// MessageExpunge: pushed between commands too.
	a.ok(`a3 STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.pushed(`* 1 FETCH (UID 1 FLAGS (\Deleted))`)
	a.ok("a4 EXPUNGE")
	b.pushed("* 1 EXPUNGE")
	b.expect("b3 FETCH 1 UID", "* 1 FETCH (UID 2)", "b3 OK FETCH completed")

	// selected-delayed: the expunge waits for a command; the STATUS of
	// Sent, caused after it, comes first.
	b.ok("b4 NOTIFY SET (selected-delayed (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))")
	a.ok(`a5 STORE 1 +FLAGS.SILENT (\Deleted)`)
	a.ok("a6 EXPUNGE")
	a.ok("a7 APPEND Sent {10+}\r\nSubject: x")
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 1)")
	b.expect("b5 NOOP", "* 1 EXPUNGE", "b5 OK NOOP completed")
	// ... and in IDLE it comes at once.
	b.send("b6 IDLE")
	b.expectLine("+ idling")
	ts.deliver(acct, "INBOX", msg("third", "x"))
	b.pushed("* 1 EXISTS")
	b.send("DONE")
	b.expectLine("b6 OK IDLE terminated")

	// Neither: others' changes of INBOX are not reported, not even at
	// NOOP; the session's own changes are (with what came before them).
	b.ok("b7 NOTIFY SET (personal (MessageNew MessageExpunge))")
	ts.deliver(acct, "INBOX", msg("fourth", "x"))
	a.ok("a8 APPEND Sent {10+}\r\nSubject: y")
	b.pushed("* STATUS Sent (MESSAGES 2 UIDNEXT 3 UIDVALIDITY … UNSEEN 2)")
	b.expect("b8 NOOP", "b8 OK NOOP completed")
	b.expect("b9 APPEND INBOX {10+}\r\nSubject: z", "* 3 EXISTS", "b9 OK [APPENDUID … 5] APPEND completed")
}

// TestNotifyOverflow: a session that collects more notifications than the
// server keeps gets [NOTIFICATIONOVERFLOW] (RFC 5465 §5.8), and NOTIFY is
// off until it is set again.
func TestNotifyOverflow(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) { s.notifyMax = 3 })
	ts.addUser("alice@example.org")
	b := ts.login("alice@example.org")
	b.ok("b1 NOTIFY SET (personal (MailboxName))")
	// B is busy (in the middle of an APPEND) while A makes five folders.
	b.send("b2 APPEND INBOX {10}")
	b.expectLine("+ Ready for literal data")
	a := ts.login("alice@example.org")
	for _, name := range []string{"f1", "f2", "f3", "f4", "f5"} {
		a.ok("a CREATE " + name)
	}
	b.send("Subject: x")
	b.expectLine("* OK [NOTIFICATIONOVERFLOW] Too many notifications, NOTIFY is off")
	b.expectLine("b2 OK [APPENDUID … 1] APPEND completed")
	a.ok("a CREATE f6")
	b.expect("b3 NOOP", "b3 OK NOOP completed")
	b.ok("b4 NOTIFY SET (personal (MailboxName))")
	a.ok("a CREATE f7")
	b.pushed(`* LIST () "/" f7`)
}

// TestNotifyCompressed: NOTIFY pushes between commands on a COMPRESS
// session are flushed at once too.
func TestNotifyCompressed(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	b := ts.login("alice@example.org")
	b.ok("b1 COMPRESS DEFLATE")
	b.compressed()
	b.ok("b2 NOTIFY SET (inboxes (MessageNew MessageExpunge))")
	for i := range 3 {
		ts.deliver(acct, "INBOX", msg("m", "x"))
		b.pushed("* STATUS INBOX (MESSAGES " + itoa64(int64(i+1)) + " UIDNEXT " + itoa64(int64(i+2)) + " UIDVALIDITY … UNSEEN " + itoa64(int64(i+1)) + ")")
	}
	b.expect("b3 NOOP", "b3 OK NOOP completed")
}
