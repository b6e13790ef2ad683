package imapserver

import (
	"fmt"
	"testing"
)

// Tests for behaviours an outside compliance suite checks (issue 12);
// each reads like the RFC's own examples.

// TestSelectExamineRecentUnseen: on IMAP4rev1, SELECT and EXAMINE both
// count the messages recent for the session (EXAMINE without claiming
// them), and name the first unseen message (RFC 3501 §6.3.1, §6.3.2,
// §7.3.2).
func TestSelectExamineRecentUnseen(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"), `\Seen`)
	ts.deliver(acct, "INBOX", msg("two", "x"))
	ts.deliver(acct, "INBOX", msg("three", "x"))

	a := ts.login("alice@example.org")
	a.expect("a1 EXAMINE INBOX",
		"* FLAGS …", "* OK [PERMANENTFLAGS …",
		"* 3 EXISTS",
		"* 3 RECENT",
		"* OK [UNSEEN 2] First unseen",
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 4] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"a1 OK [READ-ONLY] EXAMINE completed")
	a.expect("a2 FETCH 1:* (FLAGS)",
		`* 1 FETCH (FLAGS (\Seen \Recent))`,
		`* 2 FETCH (FLAGS (\Recent))`,
		`* 3 FETCH (FLAGS (\Recent))`,
		"a2 OK FETCH completed")

	// EXAMINE claimed nothing: the first SELECT still gets them.
	b := ts.login("alice@example.org")
	b.expect("b1 SELECT INBOX",
		"* FLAGS …", "* OK [PERMANENTFLAGS …",
		"* 3 EXISTS",
		"* 3 RECENT",
		"* OK [UNSEEN 2] First unseen",
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 4] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"b1 OK [READ-WRITE] SELECT completed")
	b.expect("b2 STORE 2 +FLAGS.SILENT (\\Seen)", "b2 OK STORE completed")

	// A message that arrives while a session EXAMINEs is recent there
	// too, until a read-write session claims it.
	ts.deliver(acct, "INBOX", msg("four", "x"))
	a.expect("a3 NOOP", `* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`, "* 4 EXISTS", "* 4 RECENT", "a3 OK NOOP completed")
	b.expect("b3 NOOP", "* 4 EXISTS", "* 4 RECENT", "b3 OK NOOP completed")

	c := ts.login("alice@example.org")
	c.expect("c1 EXAMINE INBOX",
		"* FLAGS …", "* OK [PERMANENTFLAGS …",
		"* 4 EXISTS",
		"* 0 RECENT",
		"* OK [UNSEEN 3] First unseen",
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 5] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"c1 OK [READ-ONLY] EXAMINE completed")

	// Everything seen: no UNSEEN response at all.
	b.expect("b4 STORE 1:* +FLAGS.SILENT (\\Seen)", "b4 OK STORE completed")
	c.expect("c2 SELECT INBOX",
		"* FLAGS …", "* OK [PERMANENTFLAGS …",
		"* 4 EXISTS",
		"* 0 RECENT",
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 5] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"c2 OK [READ-WRITE] SELECT completed")

	// IMAP4rev2 has neither RECENT nor UNSEEN (RFC 9051 §6.3.2).
	d := ts.login("alice@example.org")
	d.expect("d1 ENABLE IMAP4rev2", "* ENABLED IMAP4rev2", "d1 OK ENABLE completed")
	ts.deliver(acct, "INBOX", msg("five", "x"))
	d.expect("d2 EXAMINE INBOX",
		"* FLAGS …", "* OK [PERMANENTFLAGS …",
		"* 5 EXISTS",
		`* LIST () "/" INBOX`,
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 6] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"d2 OK [READ-ONLY] EXAMINE completed")
}

// TestMoveCopyIntoSelected: MOVE and COPY into the selected mailbox
// itself (neither RFC 6851 nor RFC 3501 §6.4.7 forbids it): the message
// gets a new UID, COPYUID says which, and a MOVE expunges the original;
// the session, and another one, keep consistent sequence numbers.
func TestMoveCopyIntoSelected(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	for _, s := range []string{"one", "two", "three"} {
		ts.deliver(acct, "INBOX", msg(s, "x"))
	}
	a := ts.login("alice@example.org")
	a.ok("a1 SELECT INBOX")
	b := ts.login("alice@example.org")
	b.ok("b1 SELECT INBOX")

	a.expect("a2 MOVE 1 INBOX",
		"* OK [COPYUID … 1 4] Moved",
		"* 1 EXPUNGE",
		"* 3 EXISTS",
		"* 3 RECENT",
		"a2 OK MOVE completed")
	a.expect("a3 FETCH 1:* (UID)", "* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)", "a3 OK FETCH completed")
	a.expect("a4 UID MOVE 2 INBOX",
		"* OK [COPYUID … 2 5] Moved",
		"* 1 EXPUNGE",
		"* 3 EXISTS",
		"* 3 RECENT",
		"a4 OK UID MOVE completed")
	a.expect("a5 COPY 3 INBOX", "* 4 EXISTS", "* 4 RECENT", "a5 OK [COPYUID … 5 6] COPY completed")
	a.expect("a6 UID FETCH 1:* (FLAGS)",
		`* 1 FETCH (UID 3 FLAGS (\Recent))`,
		`* 2 FETCH (UID 4 FLAGS (\Recent))`,
		`* 3 FETCH (UID 5 FLAGS (\Recent))`,
		`* 4 FETCH (UID 6 FLAGS (\Recent))`,
		"a6 OK UID FETCH completed")

	// The other session hears the same, in an order that keeps its
	// sequence numbers right.
	lines := b.ok("b2 NOOP")
	b.expect("b3 FETCH 1:* (UID)", "* 1 FETCH (UID 3)", "* 2 FETCH (UID 4)", "* 3 FETCH (UID 5)", "* 4 FETCH (UID 6)", "b3 OK FETCH completed")
	n := 3
	for _, l := range lines {
		var k int
		switch {
		case scan(l, "* %d EXPUNGE", &k):
			if k < 1 || k > n {
				t.Fatalf("EXPUNGE %d with %d messages: %q", k, n, lines)
			}
			n--
		case scan(l, "* %d EXISTS", &k):
			if k < n {
				t.Fatalf("EXISTS %d below %d: %q", k, n, lines)
			}
			n = k
		}
	}
	if n != 4 {
		t.Fatalf("session b counts %d messages after %q", n, lines)
	}

	// QRESYNC sessions get VANISHED.
	c := ts.login("alice@example.org")
	c.ok("c1 ENABLE QRESYNC")
	c.ok("c2 SELECT INBOX")
	c.expect("c3 UID MOVE 6 INBOX",
		"* OK [COPYUID … 6 7] Moved",
		"* VANISHED 6",
		"* 4 EXISTS",
		"* 1 RECENT",
		"c3 OK UID MOVE completed")
	// A read-only mailbox refuses MOVE, as before.
	c.ok("c4 EXAMINE INBOX")
	c.expect("c5 MOVE 1 INBOX", "c5 NO [READ-ONLY] Mailbox is read-only")
}

// scan reports whether line matches format (fmt.Sscanf) completely.
func scan(line, format string, args ...any) bool {
	n, err := fmt.Sscanf(line, format, args...)
	return err == nil && n == len(args)
}

// TestListPatternsNotMUTF7: a LIST or LSUB pattern that is not valid
// modified UTF-7 is not a syntax error (RFC 3501 §6.3.8, RFC 9051
// §6.3.9 say nothing of the kind): what does not decode stands for
// itself. A mailbox name argument that is not valid modified UTF-7 names
// no mailbox that can exist: NO [CANNOT], never BAD, for every command.
func TestListPatternsNotMUTF7(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"))
	u := ts.login("alice@example.org")
	u.ok("u1 ENABLE UTF8=ACCEPT")
	u.ok(`u2 CREATE "R&D"`)
	u.ok(`u3 CREATE "Büro"`)
	u.ok(`u4 SUBSCRIBE "R&D"`)

	c := ts.login("alice@example.org")
	odd := "!#$&'+,-.0123456789:;<=>?@^_`|[}"
	c.expect(`a1 LIST "" "`+odd+`%*"`, "a1 OK LIST completed")
	c.expect(`a2 LSUB "" "`+odd+`%*"`, "a2 OK LSUB completed")
	c.expect(`a3 LIST "" "R&D"`, `* LIST (\HasNoChildren) "/" R&-D`, "a3 OK LIST completed")
	c.expect(`a4 LIST "" "R&-D"`, `* LIST (\HasNoChildren) "/" R&-D`, "a4 OK LIST completed")
	c.expect(`a5 LIST "R&" "*"`, `* LIST (\HasNoChildren) "/" R&-D`, "a5 OK LIST completed")
	c.expect(`a6 LSUB "" "*&*"`, `* LSUB () "/" R&-D`, "a6 OK LSUB completed")
	// Valid runs still decode next to a bare "&".
	c.expect(`a7 LIST "" "B&APw-r%&"`, "a7 OK LIST completed")
	c.expect(`a8 LIST "" "B&APw-r%"`, `* LIST (\HasNoChildren) "/" B&APw-ro`, "a8 OK LIST completed")
	c.expect(`a9 LIST (SUBSCRIBED) "" ("&" "R&D" "&Jjo")`, `* LIST (\HasNoChildren \Subscribed) "/" R&-D`, "a9 OK LIST completed")

	// Mailbox arguments: NO, with the same code everywhere.
	for i, cmd := range []string{
		`SELECT "R&D"`, `EXAMINE "` + odd + `"`, `STATUS "R&D" (MESSAGES)`, `CREATE "` + odd + `"`,
		`DELETE "R&D"`, `RENAME "R&D" x`, `RENAME INBOX "a&b"`, `SUBSCRIBE "a&b"`, `UNSUBSCRIBE "a&b"`,
		"APPEND \"a&b\" {3+}\r\nabc", `GETMETADATA "a&b" /private/comment`,
	} {
		tag := fmt.Sprintf("b%d", i)
		c.expect(tag+" "+cmd, tag+" NO [CANNOT] Invalid mailbox name: not valid modified UTF-7")
	}
	c.ok("c1 SELECT INBOX")
	c.expect(`c2 COPY 1 "a&b"`, "c2 NO [CANNOT] Invalid mailbox name: not valid modified UTF-7")
	c.expect(`c3 MOVE 1 "`+odd+`"`, "c3 NO [CANNOT] Invalid mailbox name: not valid modified UTF-7")
	c.expect(`c4 SELECT "R&-D"`, "* FLAGS …", "* OK [PERMANENTFLAGS …", "* 0 EXISTS", "* 0 RECENT",
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 1] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …", "c4 OK [READ-WRITE] SELECT completed")
}
