package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSelectFetchStore(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("first", "hello"))
	ts.deliver(acct, "INBOX", msg("second", "world"), `\Seen`)
	c := ts.login("alice@example.org")
	c.expect("a1 SELECT INBOX",
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted`,
		"* 2 EXISTS",
		"* 2 RECENT",
		"* OK [UNSEEN 1] First unseen",
		"* OK [UIDVALIDITY …",
		"* OK [UIDNEXT 3] Predicted next UID",
		"* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"a1 OK [READ-WRITE] SELECT completed")
	c.expect("a2 FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)",
		`* 1 FETCH (FLAGS (\Recent) UID 1 RFC822.SIZE 156 INTERNALDATE " 1-Mar-2024 10:00:00 +0000")`,
		`* 2 FETCH (FLAGS (\Seen \Recent) UID 2 RFC822.SIZE 158 INTERNALDATE " 1-Mar-2024 10:00:00 +0000")`,
		"a2 OK FETCH completed")
	c.expect("a3 FETCH 1 (ENVELOPE)",
		`* 1 FETCH (ENVELOPE ("Fri, 1 Mar 2024 10:00:00 +0000" "first" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Bob" NIL "bob" "example.org")) NIL NIL NIL "<first@example.org>"))`,
		"a3 OK FETCH completed")
	c.expect("a4 FETCH 1 (BODYSTRUCTURE)",
		`* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1 NIL NIL NIL NIL))`,
		"a4 OK FETCH completed")
	c.expect("a5 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT] BODY.PEEK[]<0.4>)",
		"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: first\r\n\r\n BODY[TEXT] {7}\r\nhello\r\n BODY[]<0> {4}\r\nFrom)",
		"a5 OK FETCH completed")
	// A non-PEEK body fetch sets \Seen and reports it.
	c.expect("a6 FETCH 1 (BODY[TEXT])",
		"* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[TEXT] {7}\r\nhello\r\n)",
		"a6 OK FETCH completed")
	c.expect("a7 UID FETCH 2 (FLAGS)", `* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`, "a7 OK UID FETCH completed")
	c.expect("a8 FETCH 3 FLAGS", "a8 BAD [CLIENTBUG] Invalid message sequence number")
	c.expect("a9 UID FETCH 7 FLAGS", "a9 OK UID FETCH completed")
	c.expect("a10 FETCH 1 (PREVIEW BINARY.SIZE[1] BINARY[1])",
		"* 1 FETCH (PREVIEW \"hello\" BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\nhello\r\n)",
		"a10 OK FETCH completed")
	// A new keyword is announced with FLAGS before a response shows it
	// (RFC 9051 §7.3.5).
	c.expect(`b1 STORE 1 +FLAGS (\Flagged $Important)`,
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Important)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Important \*)] Flags permitted`,
		`* 1 FETCH (UID 1 FLAGS ($Important \Flagged \Seen \Recent))`, "b1 OK STORE completed")
	c.expect(`b2 STORE 1:2 -FLAGS.SILENT (\Seen)`, "b2 OK STORE completed")
	c.expect(`b3 UID STORE 2 FLAGS (\Deleted)`, `* 2 FETCH (UID 2 FLAGS (\Deleted \Recent))`, "b3 OK UID STORE completed")
	c.expect(`b4 STORE 1 +FLAGS (\Bogus)`, `b4 BAD Invalid system flag \Bogus`)
	c.expect("b5 NOOP", "b5 OK NOOP completed")
	// EXPUNGE reports what it removed.
	c.expect("c1 EXPUNGE", "* 2 EXPUNGE", "c1 OK EXPUNGE completed")
	c.expect("c2 FETCH 1:* (UID FLAGS)", `* 1 FETCH (UID 1 FLAGS ($Important \Flagged \Recent))`, "c2 OK FETCH completed")
	// EXAMINE is read-only and sees no \Recent (claimed by the SELECT);
	// its FLAGS lists the keywords in use (RFC 9051 §7.3.5).
	c.expect("c3 EXAMINE INBOX",
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Important)`,
		`* OK [PERMANENTFLAGS ()] No permanent flags permitted`,
		"* 1 EXISTS",
		"* 0 RECENT",
		"* OK [UNSEEN 1] First unseen",
		"* OK [UIDVALIDITY …",
		"* OK [UIDNEXT 3] Predicted next UID",
		"* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"c3 OK [READ-ONLY] EXAMINE completed")
	c.expect(`c4 STORE 1 +FLAGS (\Seen)`, "c4 NO [READ-ONLY] Mailbox is read-only")
	c.expect("c5 FETCH 1 BODY[TEXT]", "* 1 FETCH (BODY[TEXT] {7}\r\nhello\r\n)", "c5 OK FETCH completed")
	c.expect("c6 CLOSE", "c6 OK CLOSE completed")
	c.expect("c7 FETCH 1 FLAGS", "c7 BAD Select a mailbox first")
}

func TestCopyMoveAppend(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	for i := range 4 {
		ts.deliver(acct, "INBOX", msg("m"+string(rune('1'+i)), "body"))
	}
	c := ts.login("alice@example.org")
	c.send("a0 ENABLE IMAP4rev2")
	c.until("a0")
	lines := c.ok("a1 SELECT INBOX")
	uv := ""
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "* OK [UIDVALIDITY "); ok {
			uv, _, _ = strings.Cut(v, "]")
		}
	}
	if !equalLines(lines, []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted`,
		"* 4 EXISTS",
		`* LIST () "/" INBOX`,
		"* OK [UIDVALIDITY …",
		"* OK [UIDNEXT 5] Predicted next UID",
		"* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
	}) {
		t.Fatalf("rev2 select:\n%s", strings.Join(lines, "\n"))
	}
	c.expect("a2 COPY 1:2 Nosuch", "a2 NO [TRYCREATE] No such mailbox")
	c.expect("a3 COPY 1:2 Archive", "a3 OK [COPYUID … 1:2 1:2] COPY completed")
	c.expect("a4 UID MOVE 2:3 Trash", "* OK [COPYUID … 2:3 1:2] Moved", "* 3 EXPUNGE", "* 2 EXPUNGE", "a4 OK UID MOVE completed")
	c.expect("a5 MOVE 2 Trash", "* OK [COPYUID … 4 3] Moved", "* 2 EXPUNGE", "a5 OK MOVE completed")
	c.expect("a6 STATUS Trash (MESSAGES UIDNEXT)", "* STATUS Trash (MESSAGES 3 UIDNEXT 4)", "a6 OK STATUS completed")
	// APPEND, with a synchronizing literal, to the selected mailbox: EXISTS follows.
	m := strings.ReplaceAll(msg("appended", "text"), "\n", "\r\n")
	c.send("b1 APPEND INBOX (\\Seen) \"05-Mar-2024 12:00:00 +0100\" {" + itoa64(int64(len(m))) + "}")
	c.expectLine("+ Ready for literal data")
	c.send(m)
	c.expectLine("* 2 EXISTS")
	c.expectLine("b1 OK [APPENDUID " + uv + " 5] APPEND completed")
	c.expect("b2 FETCH 2 (FLAGS INTERNALDATE)", `* 2 FETCH (FLAGS (\Seen) INTERNALDATE " 5-Mar-2024 12:00:00 +0100")`, "b2 OK FETCH completed")
	// MULTIAPPEND with non-synchronizing literals, all or nothing.
	c.send("b3 APPEND Drafts {5+}\r\nabc\r\n {5+}\r\nxyz\r\n")
	c.expectLine("b3 OK [APPENDUID … 1:2] APPEND completed")
	c.expect("b4 APPEND Nosuch {1+}\r\nx", "b4 NO [TRYCREATE] No such mailbox")
	c.expect("b5 APPEND INBOX {99999999999}", "b5 NO [TOOBIG] message too big")
	c.expect("b6 NOOP", "b6 OK NOOP completed")
	// CATENATE from a stored message and text.
	c.expect("b7 APPEND Drafts CATENATE (TEXT {21+}\r\nSubject: combined\r\n\r\n URL \"/INBOX;UIDVALIDITY="+uv+"/;UID=1/;SECTION=TEXT\")",
		"b7 OK [APPENDUID … 3] APPEND completed")
	c.expect("b8 APPEND Drafts CATENATE (URL \"/INBOX/;UID=99\")", `b8 NO [BADURL "/INBOX/;UID=99"] Invalid or unknown message URL`)
	c.expect("b9 NOOP", "b9 OK NOOP completed")
	c.expect("c1 EXAMINE Drafts", "* OK [CLOSED] Previous mailbox closed", "* FLAGS …", "* OK [PERMANENTFLAGS …", "* 3 EXISTS", `* LIST () "/" Drafts`, "* OK [UIDVALIDITY …", "* OK [UIDNEXT 4] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …", "c1 OK [READ-ONLY] EXAMINE completed")
	c.expect("c2 FETCH 3 BODY.PEEK[]", "* 3 FETCH (BODY[] {27}\r\nSubject: combined\r\n\r\nbody\r\n)", "c2 OK FETCH completed")
	// UNSELECT keeps \Deleted messages.
	c.ok("c3 SELECT Drafts")
	c.ok(`c4 STORE 1 +FLAGS.SILENT (\Deleted)`)
	c.expect("c5 UNSELECT", "c5 OK UNSELECT completed")
	c.expect("c6 STATUS Drafts (MESSAGES DELETED)", "* STATUS Drafts (MESSAGES 3 DELETED 1)", "c6 OK STATUS completed")
	c.ok("c7 SELECT Drafts")
	c.expect("c8 CLOSE", "c8 OK CLOSE completed")
	c.expect("c9 STATUS Drafts (MESSAGES DELETED)", "* STATUS Drafts (MESSAGES 2 DELETED 0)", "c9 OK STATUS completed")
	// REPLACE (RFC 8508).
	c.ok("d1 SELECT Drafts")
	c.expect("d2 REPLACE 1 Drafts {3+}\r\nnew", "* OK [APPENDUID … 4] Replacement appended", "* 3 EXISTS", "* 1 EXPUNGE", "d2 OK REPLACE completed")
	c.expect("d3 UID FETCH 1:* (UID)", "* 1 FETCH (UID 3)", "* 2 FETCH (UID 4)", "d3 OK UID FETCH completed")
}

func TestTwoSessionsSeeEachOther(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	ts.deliver(acct, "INBOX", msg("two", "2"))
	a := ts.login("alice@example.org")
	b := ts.login("alice@example.org")
	a.ok("a1 SELECT INBOX")
	b.ok("b1 SELECT INBOX")
	// A flags a message: B sees the FETCH at its next command.
	a.expect(`a2 STORE 1 +FLAGS (\Flagged)`, `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))`, "a2 OK STORE completed")
	b.expect("b2 NOOP", `* 1 FETCH (UID 1 FLAGS (\Flagged))`, "b2 OK NOOP completed")
	// .SILENT is silent for A but not for B.
	a.expect(`a3 STORE 2 +FLAGS.SILENT (\Seen)`, "a3 OK STORE completed")
	a.expect("a4 NOOP", "a4 OK NOOP completed")
	b.expect("b3 NOOP", `* 2 FETCH (UID 2 FLAGS (\Seen))`, "b3 OK NOOP completed")
	// A expunges: B gets no EXPUNGE during FETCH, STORE or SEARCH by number...
	a.ok(`a5 STORE 1 +FLAGS.SILENT (\Deleted)`)
	a.expect("a6 EXPUNGE", "* 1 EXPUNGE", "a6 OK EXPUNGE completed")
	// (the expunged message keeps its number; it has no data any more)...
	b.expect("b4 FETCH 1:2 (UID)", "* 2 FETCH (UID 2)", "b4 OK FETCH completed")
	b.expect(`b5 STORE 2 +FLAGS (\Answered)`, `* 2 FETCH (UID 2 FLAGS (\Answered \Seen))`, "b5 OK STORE completed")
	// ...but at NOOP, and after a UID command.
	b.expect("b6 NOOP", "* 1 EXPUNGE", "b6 OK NOOP completed")
	b.expect("b7 FETCH 1 (UID FLAGS)", `* 1 FETCH (UID 2 FLAGS (\Answered \Seen))`, "b7 OK FETCH completed")
	// A appends: B sees EXISTS even during FETCH.
	ts.deliver(acct, "INBOX", msg("three", "3"))
	b.expect("b8 FETCH 1 (UID)", "* 1 FETCH (UID 2)", "* 2 EXISTS", "* 1 RECENT", "b8 OK FETCH completed")
	a.expect("a7 UID SEARCH ALL", "* SEARCH 2", `* 1 FETCH (UID 2 FLAGS (\Answered \Seen \Recent))`, "* 2 EXISTS", "* 1 RECENT", "a7 OK UID SEARCH completed")
	a.expect("a8 UID SEARCH ALL", "* SEARCH 2 3", "a8 OK UID SEARCH completed")
}

func TestIdlePush(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	c := ts.login("alice@example.org")
	c.ok("a1 SELECT INBOX")
	c.send("a2 IDLE")
	c.expectLine("+ idling")
	ts.deliver(acct, "INBOX", msg("two", "2"))
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.expectLine("* 2 EXISTS")
	c.expectLine("* 2 RECENT")
	other := ts.login("alice@example.org")
	other.ok("o1 SELECT INBOX")
	other.ok(`o2 STORE 1 +FLAGS (\Answered)`)
	c.expectLine(`* 1 FETCH (UID 1 FLAGS (\Answered \Recent))`)
	other.ok(`o3 STORE 1 +FLAGS.SILENT (\Deleted)`)
	other.ok("o4 EXPUNGE")
	c.expectLine(`* 1 FETCH (UID 1 FLAGS (\Answered \Deleted \Recent))`)
	c.expectLine("* 1 EXPUNGE")
	c.send("DONE")
	c.expectLine("a2 OK IDLE terminated")
	c.expect("a3 NOOP", "a3 OK NOOP completed")
}

// TestAppendToSelected: an APPEND to the selected mailbox is announced
// before its OK (RFC 9051 §6.3.12: EXISTS; IMAP4rev1 RECENT), whether the
// view takes it in directly (nothing else changed) or catches up with
// another session's changes first; the appending IMAP4rev1 session claims
// \Recent, so a later session does not see the message as recent.
func TestAppendToSelected(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	a := ts.login("alice@example.org")
	b := ts.login("alice@example.org")
	a.ok("a1 SELECT INBOX")
	a.expect("a2 APPEND INBOX {3+}\r\none", "* 1 EXISTS", "* 1 RECENT", "a2 OK [APPENDUID … 1] APPEND completed")
	a.expect("a3 APPEND INBOX {3+}\r\ntwo {5+}\r\nthree", "* 3 EXISTS", "* 3 RECENT", "a3 OK [APPENDUID … 2:3] APPEND completed")
	// Another session's change in between: the view catches up first.
	b.ok("b1 SELECT INBOX")
	b.ok(`b2 STORE 1 +FLAGS.SILENT (\Flagged)`)
	a.expect("a4 APPEND INBOX {4+}\r\nfour", `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))`, "* 4 EXISTS", "* 4 RECENT", "a4 OK [APPENDUID … 4] APPEND completed")
	a.expect("a5 UID SEARCH RECENT", "* SEARCH 1 2 3 4", "a5 OK UID SEARCH completed")
	b.expect("b3 NOOP", "* 4 EXISTS", "* 0 RECENT", "b3 OK NOOP completed")
	c := ts.login("alice@example.org")
	c.expect("c1 STATUS INBOX (MESSAGES RECENT UIDNEXT)", "* STATUS INBOX (MESSAGES 4 RECENT 0 UIDNEXT 5)", "c1 OK STATUS completed")
	a.expect("a6 FETCH 4 (UID BODY.PEEK[])", "* 4 FETCH (UID 4 BODY[] {4}\r\nfour)", "a6 OK FETCH completed")
	// The same for EXPUNGE: directly, then after another session's change.
	a.ok(`a7 STORE 2:4 +FLAGS.SILENT (\Deleted)`)
	a.expect("a8 UID EXPUNGE 4", "* 4 EXPUNGE", "a8 OK UID EXPUNGE completed")
	b.ok(`b4 STORE 1 -FLAGS.SILENT (\Flagged)`)
	a.expect("a9 EXPUNGE", `* 1 FETCH (UID 1 FLAGS (\Recent))`, "* 3 EXPUNGE", "* 2 EXPUNGE", "a9 OK EXPUNGE completed")
	a.expect("a10 UID SEARCH ALL", "* SEARCH 1", "a10 OK UID SEARCH completed")
	b.expect("b5 NOOP", "* 4 EXPUNGE", "* 3 EXPUNGE", "* 2 EXPUNGE", "b5 OK NOOP completed")
}

// TestEventOverflow: a session that does not read its events for a while
// (selected, between commands, neither IDLE nor NOTIFY) while another
// session creates hundreds of mailboxes gets its queue replaced by an
// overflow marker (store.EventOverflow); a delivery whose event was
// dropped with it still shows at the next command, because the session
// then reads the mailbox's changes from the store.
func TestEventOverflow(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	b := ts.login("alice@example.org")
	b.ok("b1 SELECT INBOX")
	ts.deliver(acct, "INBOX", msg("early", "x"))
	ctx := context.Background()
	for i := range 1200 {
		if _, err := ts.st.CreateMailbox(ctx, acct, fmt.Sprintf("box%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	b.expect("b2 NOOP", "* 1 EXISTS", "* 1 RECENT", "b2 OK NOOP completed")
	b.expect("b3 UID SEARCH ALL", "* SEARCH 1", "b3 OK UID SEARCH completed")
}

// TestEventOverflowMailboxDeleted: when the selected mailbox's deletion
// was among the dropped events, the session still learns of it: its
// catch-up reads the store itself rather than an answer another session
// of the mailbox got a moment earlier.
func TestEventOverflowMailboxDeleted(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ctx := context.Background()
	work, err := ts.st.CreateMailbox(ctx, acct, "Work", nil)
	if err != nil {
		t.Fatal(err)
	}
	ts.deliver(acct, "Work", msg("one", "x"))
	a := ts.login("alice@example.org")
	b := ts.login("alice@example.org")
	a.ok("a1 SELECT Work")
	b.ok("b1 SELECT Work")
	ts.deliver(acct, "Work", msg("two", "x"))
	b.expect("b2 NOOP", "* 2 EXISTS", "* 1 RECENT", "b2 OK NOOP completed") // leaves a shared answer
	if err := ts.st.DeleteMailbox(ctx, acct, work.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 1200 {
		if _, err := ts.st.CreateMailbox(ctx, acct, fmt.Sprintf("box%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	a.expect("a2 NOOP", "* 1 EXPUNGE", "a2 OK NOOP completed")
}

// TestFetchLargeBodySendfile: a large body kept in a file goes out with
// sendfile(2) on a plain connection, for the whole message and for a
// partial range; under COMPRESS and over TLS it goes through the
// compressor or the TLS layer. All give the stored bytes.
func TestFetchLargeBodySendfile(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	var b strings.Builder
	for i := 0; b.Len() < 300<<10; i++ {
		fmt.Fprintf(&b, "line %d of a large body, long enough to be kept in a file\n", i)
	}
	raw := strings.ReplaceAll(msg("large", b.String()), "\n", "\r\n")
	ts.deliver(acct, "INBOX", msg("large", b.String()))
	check := func(c *client, wantFile bool) {
		t.Helper()
		before := ts.srv.sentByFile.Load()
		lines := c.ok("f1 UID FETCH 1 (BODY.PEEK[] BODY.PEEK[]<1000.200000>)")
		want := fmt.Sprintf("BODY[] {%d}\r\n%s", len(raw), raw)
		wantPart := fmt.Sprintf("BODY[]<1000> {200000}\r\n%s", raw[1000:201000])
		if len(lines) != 1 || !strings.Contains(lines[0], want) || !strings.Contains(lines[0], wantPart) {
			t.Fatalf("FETCH: %d lines, the literals differ from the stored body", len(lines))
		}
		if used := ts.srv.sentByFile.Load()-before == 2; used != wantFile {
			t.Errorf("sent with sendfile: %v, want %v", used, wantFile)
		}
	}
	c := ts.login("alice@example.org")
	c.ok("s1 SELECT INBOX")
	check(c, true)
	c.expect("z1 COMPRESS DEFLATE", "z1 OK DEFLATE active")
	c.compressed()
	check(c, false)

	raw2, err := tls.Dial("tcp", ts.tlsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer raw2.Close()
	raw2.SetDeadline(time.Now().Add(time.Minute))
	tc := &client{t: t, c: raw2, r: bufio.NewReader(raw2)}
	tc.line() // greeting
	tc.ok("l1 LOGIN alice@example.org \"" + testPassword + "\"")
	tc.ok("s1 SELECT INBOX")
	check(tc, false)
}
