package imapserver

import (
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
