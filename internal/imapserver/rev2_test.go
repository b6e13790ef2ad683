package imapserver

import (
	"context"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// TestRev1AndRev2 shows the differences between the two revisions on one
// server: ESEARCH, no \Recent, LIST in SELECT, UTF-8 names.
func TestRev1AndRev2(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	ts.deliver(acct, "INBOX", msg("two", "2"))
	ts.st.CreateMailbox(context.Background(), acct, "Büro", nil)
	r1 := ts.login("alice@example.org")
	r1.ok("a1 SELECT INBOX")
	r1.expect("a2 SEARCH ALL", "* SEARCH 1 2", "a2 OK SEARCH completed")
	r1.expect("a3 FETCH 1 FLAGS", `* 1 FETCH (FLAGS (\Recent))`, "a3 OK FETCH completed")
	r1.expect(`a4 LIST "" B*`, `* LIST (\HasNoChildren) "/" B&APw-ro`, "a4 OK LIST completed")
	r1.expect("a5 CHECK", "a5 OK CHECK completed")

	r2 := ts.login("alice@example.org")
	r2.expect("b1 ENABLE IMAP4rev2", "* ENABLED IMAP4rev2", "b1 OK ENABLE completed")
	r2.expect("b2 SELECT INBOX", "* FLAGS …", "* OK [PERMANENTFLAGS …", "* 2 EXISTS", `* LIST () "/" INBOX`,
		"* OK [UIDVALIDITY …", "* OK [UIDNEXT 3] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …", "b2 OK [READ-WRITE] SELECT completed")
	r2.expect("b3 SEARCH ALL", `* ESEARCH (TAG "b3") ALL 1:2`, "b3 OK SEARCH completed")
	r2.expect("b4 UID SEARCH SUBJECT nothing", `* ESEARCH (TAG "b4") UID`, "b4 OK UID SEARCH completed")
	r2.expect("b5 FETCH 1 (FLAGS SAVEDATE)", `* 1 FETCH (FLAGS () SAVEDATE "…")`, "b5 OK FETCH completed")
	r2.expect(`b6 LIST "" "B*"`, `* LIST (\HasNoChildren) "/" "Büro"`, "b6 OK LIST completed")
	// UID EXPUNGE removes only the given \Deleted messages.
	r2.ok(`b7 STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	r2.expect("b8 UID EXPUNGE 2", "* 2 EXPUNGE", "b8 OK UID EXPUNGE completed")
	r2.expect("b9 UID FETCH 1:* (FLAGS)", `* 1 FETCH (UID 1 FLAGS (\Deleted))`, "b9 OK UID FETCH completed")
	// Line endings become CRLF, in a literal8 APPEND (outside binary
	// parts: it has none) as in a literal: a bare LF, and a lone CR like
	// the one ending the second literal.
	r2.send("c1 APPEND INBOX ~{8+}\r\na\nb\x00\r\ncd\r\nc2 APPEND INBOX {6+}\r\na\nb\nc\r\n")
	r2.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r2.expectLine("* 2 EXISTS")
	r2.expectLine("c1 OK [APPENDUID … 3] APPEND completed")
	r2.expectLine("* 3 EXISTS")
	r2.expectLine("c2 OK [APPENDUID … 4] APPEND completed")
	r2.expect("c3 UID FETCH 3:4 (RFC822.SIZE)", "* 2 FETCH (UID 3 RFC822.SIZE 9)", "* 3 FETCH (UID 4 RFC822.SIZE 9)", "c3 OK UID FETCH completed")
	// r1 (rev1) sees EXPUNGE, r2-style VANISHED is for QRESYNC only.
	// (UID 2 is expunged: its flag change is not reported, its EXPUNGE is.)
	r1.expect("a6 NOOP", `* 1 FETCH (UID 1 FLAGS (\Deleted \Recent))`, "* 4 EXISTS", "* 4 RECENT", "* 2 EXPUNGE", "a6 OK NOOP completed")
}

// panicStore panics in Status, to check that a panic ends only the
// session it happens in.
type panicStore struct{ store.Store }

func (panicStore) Status(context.Context, store.AccountID, store.MailboxID) (*store.Status, error) {
	panic("test panic in store")
}

func TestPanicEndsOnlyThatSession(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) { s.opt.Store = panicStore{s.opt.Store} })
	ts.addUser("alice@example.org")
	a := ts.login("alice@example.org")
	b := ts.login("alice@example.org")
	a.send("a1 STATUS INBOX (MESSAGES)")
	a.expectLine("* BYE [SERVERBUG] Internal server error, closing connection")
	if _, err := a.r.ReadString('\n'); err == nil {
		t.Fatal("connection still open after panic")
	}
	b.expect("b1 SELECT INBOX", "* FLAGS …", "* OK [PERMANENTFLAGS …", "* 0 EXISTS", "* 0 RECENT", "* OK [UIDVALIDITY …",
		"* OK [UIDNEXT 1] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …", "b1 OK [READ-WRITE] SELECT completed")
}

func TestStatusRecent(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	c := ts.login("alice@example.org")
	c.expect("a1 STATUS INBOX (MESSAGES RECENT)", "* STATUS INBOX (MESSAGES 1 RECENT 1)", "a1 OK STATUS completed")
	c.ok("a2 SELECT INBOX") // claims it
	ts.deliver(acct, "INBOX", msg("two", "2"))
	ts.deliver(acct, "INBOX", msg("three", "3"))
	other := ts.login("alice@example.org")
	other.expect("b1 STATUS INBOX (MESSAGES RECENT)", "* STATUS INBOX (MESSAGES 3 RECENT 2)", "b1 OK STATUS completed")
}
