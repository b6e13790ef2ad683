package imapserver

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Transcript tests of search contexts (RFC 5267 §4, CONTEXT=SEARCH and
// CONTEXT=SORT): one device keeps a search, another device (or a
// delivery) changes the mailbox.

// TestContextSearch follows the RFC 5267 §4.3 examples: new mail that
// matches (ADDTO), a flag change by another device that makes a message
// stop matching or start matching, an expunge (REMOVEFROM before the
// EXPUNGE), the session's own STORE, updates pushed in IDLE, and
// CANCELUPDATE.
func TestContextSearch(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"), `\Seen`)
	ts.deliver(acct, "INBOX", msg("two", "x"))
	ts.deliver(acct, "INBOX", msg("three", "x"))
	c := ts.login("alice@example.org")
	if caps := strings.Join(c.ok("a0 CAPABILITY"), " "); !strings.Contains(caps, " ESORT CONTEXT=SEARCH CONTEXT=SORT ") {
		t.Fatalf("capabilities: %s", caps)
	}
	c.ok("a1 ENABLE IMAP4rev2")
	c.ok("a2 SELECT INBOX")
	c.expect("B01 UID SEARCH RETURN (UPDATE ALL) UNSEEN", `* ESEARCH (TAG "B01") UID ALL 2:3`, "B01 OK UID SEARCH completed")

	// New mail that matches.
	ts.deliver(acct, "INBOX", msg("four", "x"))
	c.expect("n1 NOOP", "* 4 EXISTS", `* ESEARCH (TAG "B01") UID ADDTO (0 4)`, "n1 OK NOOP completed")

	// Another device reads message 2, and marks 1 unread.
	d := ts.login("alice@example.org")
	d.ok("d1 SELECT INBOX")
	d.ok(`d2 UID STORE 2 +FLAGS.SILENT (\Seen)`)
	c.expect("n2 NOOP", `* 2 FETCH (UID 2 FLAGS (\Seen))`, `* ESEARCH (TAG "B01") UID REMOVEFROM (0 2)`, "n2 OK NOOP completed")
	d.ok(`d3 UID STORE 1 -FLAGS.SILENT (\Seen)`)
	c.expect("n3 NOOP", `* 1 FETCH (UID 1 FLAGS ())`, `* ESEARCH (TAG "B01") UID ADDTO (0 1)`, "n3 OK NOOP completed")

	// It deletes message 3: REMOVEFROM comes before the EXPUNGE.
	d.ok(`d4 UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	d.ok("d5 UID EXPUNGE 3")
	c.expect("n4 NOOP", `* ESEARCH (TAG "B01") UID REMOVEFROM (0 3)`, "* 3 EXPUNGE", "n4 OK NOOP completed")

	// The session's own change is reported too, after its FETCH.
	c.expect(`s1 UID STORE 4 +FLAGS (\Seen)`, `* 3 FETCH (UID 4 FLAGS (\Seen))`, `* ESEARCH (TAG "B01") UID REMOVEFROM (0 4)`, "s1 OK UID STORE completed")

	// In IDLE the updates are pushed as they happen.
	c.send("i1 IDLE")
	c.expectLine("+ idling")
	ts.deliver(acct, "INBOX", msg("five", "x"))
	c.pushed("* 4 EXISTS")
	c.pushed(`* ESEARCH (TAG "B01") UID ADDTO (0 5)`)
	d.ok("d6 NOOP") // d learns of message 5
	d.ok(`d7 UID STORE 5 +FLAGS.SILENT (\Seen)`)
	c.pushed(`* 4 FETCH (UID 5 FLAGS (\Seen))`)
	c.pushed(`* ESEARCH (TAG "B01") UID REMOVEFROM (0 5)`)
	c.send("DONE")
	c.expectLine("i1 OK IDLE terminated")

	// CANCELUPDATE ends the updates; the same tag may then be used
	// again.
	c.expect(`c1 CANCELUPDATE "B01"`, "c1 OK Updates cancelled")
	ts.deliver(acct, "INBOX", msg("six", "x"))
	c.expect("n5 NOOP", "* 5 EXISTS", "n5 OK NOOP completed")
	c.expect(`c2 CANCELUPDATE "B01"`, "c2 NO No search context has that tag")
	c.expect("B01 UID SEARCH RETURN (UPDATE COUNT) UNSEEN", `* ESEARCH (TAG "B01") UID COUNT 2`, "B01 OK UID SEARCH completed")
}

// TestContextSortPositions: a SORT context reports positions in sort
// order (RFC 5267 §4.3.3, §4.3.4), with sequence numbers for SORT
// without UID.
func TestContextSortPositions(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	sized := func(subject string, n int) string { return msg(subject, strings.Repeat("x", n)) }
	ts.deliver(acct, "INBOX", sized("m1", 30))
	ts.deliver(acct, "INBOX", sized("m2", 10))
	ts.deliver(acct, "INBOX", sized("m3", 20))
	c := ts.login("alice@example.org")
	c.ok("a1 ENABLE IMAP4rev2")
	c.ok("a2 SELECT INBOX")
	c.expect("C01 SORT RETURN (UPDATE ALL) (SIZE) UTF-8 UNDELETED", `* ESEARCH (TAG "C01") ALL 2:3,1`, "C01 OK SORT completed")
	c.expect("C02 UID SORT RETURN (UPDATE MIN) (REVERSE SIZE) UTF-8 ALL", `* ESEARCH (TAG "C02") UID MIN 1`, "C02 OK UID SORT completed")

	// Sizes now 10 (2), 15 (4), 20 (3), 30 (1): the new one is second;
	// largest first for C02, it is third there.
	ts.deliver(acct, "INBOX", sized("m4", 15))
	c.expect("n1 NOOP", "* 4 EXISTS", `* ESEARCH (TAG "C01") ADDTO (2 4)`, `* ESEARCH (TAG "C02") UID ADDTO (3 4)`, "n1 OK NOOP completed")
	// Two at once: the smallest and the largest.
	ts.deliver(acct, "INBOX", sized("m5", 5))
	ts.deliver(acct, "INBOX", sized("m6", 40))
	c.expect("n2 NOOP", "* 6 EXISTS", `* ESEARCH (TAG "C01") ADDTO (1 5 6 6)`, `* ESEARCH (TAG "C02") UID ADDTO (1 6 6 5)`, "n2 OK NOOP completed")
	c.expect("n3 SORT RETURN (ALL) (SIZE) UTF-8 UNDELETED", `* ESEARCH (TAG "n3") ALL 5,2,4,3,1,6`, "n3 OK SORT completed")

	// Another device deletes message 3 (fourth by size) and expunges 2
	// (second): REMOVEFROM at their positions, the expunged one before
	// its EXPUNGE, with its sequence number still valid.
	d := ts.login("alice@example.org")
	d.ok("d1 SELECT INBOX")
	d.ok(`d2 UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	c.expect("n4 NOOP", `* 3 FETCH (UID 3 FLAGS (\Deleted))`, `* ESEARCH (TAG "C01") REMOVEFROM (4 3)`, "n4 OK NOOP completed")
	d.ok(`d3 UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	d.ok("d4 UID EXPUNGE 2")
	c.expect("n5 NOOP", `* ESEARCH (TAG "C01") REMOVEFROM (2 2)`, `* ESEARCH (TAG "C02") UID REMOVEFROM (5 2)`, "* 2 EXPUNGE", "n5 OK NOOP completed")
	// What the client kept is what a new SORT says.
	c.expect("n6 SORT RETURN (ALL) (SIZE) UTF-8 UNDELETED", `* ESEARCH (TAG "n6") ALL 4,3,1,5`, "n6 OK SORT completed")
	c.expect("n7 UID SORT RETURN () (REVERSE SIZE) UTF-8 ALL", `* ESEARCH (TAG "n7") UID ALL 6,1,3:5`, "n7 OK UID SORT completed")
	// Undeleting 3 brings it back at its place.
	d.ok(`d5 UID STORE 3 -FLAGS.SILENT (\Deleted)`)
	c.expect("n8 NOOP", `* 2 FETCH (UID 3 FLAGS ())`, `* ESEARCH (TAG "C01") ADDTO (3 2)`, "n8 OK NOOP completed")
}

// TestContextSortBySubject: a SORT context whose criteria need the parse
// results, and a SEARCH context whose program reads the bodies: both
// load them for the changed messages.
func TestContextSortBySubject(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("banana", "no match"))
	ts.deliver(acct, "INBOX", msg("cherry", "a needle here"))
	c := ts.login("alice@example.org")
	c.ok("a1 ENABLE IMAP4rev2")
	c.ok("a2 SELECT INBOX")
	c.expect("C01 UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN", `* ESEARCH (TAG "C01") UID ALL 1:2`, "C01 OK UID SORT completed")
	c.expect("C02 UID SEARCH RETURN (UPDATE ALL) BODY needle UNSEEN", `* ESEARCH (TAG "C02") UID ALL 2`, "C02 OK UID SEARCH completed")
	ts.deliver(acct, "INBOX", msg("apple", "needle too"))
	ts.deliver(acct, "INBOX", msg("date", "haystack"))
	c.expect("n1 NOOP", "* 4 EXISTS", `* ESEARCH (TAG "C01") UID ADDTO (1 3 4 4)`, `* ESEARCH (TAG "C02") UID ADDTO (0 3)`, "n1 OK NOOP completed")
	c.expect(`s1 UID STORE 2 +FLAGS.SILENT (\Seen)`, `* ESEARCH (TAG "C01") UID REMOVEFROM (3 2)`, `* ESEARCH (TAG "C02") UID REMOVEFROM (0 2)`, "s1 OK UID STORE completed")
}

// TestContextLimits: the tag of a living context cannot be used again
// (BAD, RFC 5267 §4.3); over the limits, and for OLDER/YOUNGER, the
// search is answered with NOUPDATE and no updates (§4.3.1).
func TestContextLimits(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.SearchContexts = 2; o.SearchContextBytes = 16 })
	acct := ts.addUser("alice@example.org")
	for _, s := range []string{"a", "b", "c"} {
		ts.deliver(acct, "INBOX", msg(s, "x"))
	}
	c := ts.login("alice@example.org")
	c.ok("a1 SELECT INBOX")
	c.expect("s1 SEARCH RETURN (UPDATE COUNT) ALL", `* ESEARCH (TAG "s1") COUNT 3`, "s1 OK SEARCH completed")
	c.expect("s1 SEARCH RETURN (UPDATE) SEEN", "s1 BAD [CLIENTBUG] Tag is in use by a search context")
	c.expect("s1 SEARCH RETURN (COUNT) SEEN", `* ESEARCH (TAG "s1") COUNT 0`, "s1 OK SEARCH completed")
	c.expect("s2 UID SORT RETURN (UPDATE COUNT) (SIZE) UTF-8 ALL", `* ESEARCH (TAG "s2") UID COUNT 3`,
		`* NO [NOUPDATE "s2"] Result too large to keep up to date`, "s2 OK UID SORT completed")
	c.expect("s3 SEARCH RETURN (UPDATE) YOUNGER 60", `* ESEARCH (TAG "s3")`,
		`* NO [NOUPDATE "s3"] A search with OLDER or YOUNGER is not kept up to date`, "s3 OK SEARCH completed")
	c.expect("s4 SEARCH RETURN (CONTEXT UPDATE MIN) SEEN", `* ESEARCH (TAG "s4")`, "s4 OK SEARCH completed")
	c.expect("s5 SEARCH RETURN (UPDATE ALL) ALL", `* ESEARCH (TAG "s5") ALL 1:3`,
		`* NO [NOUPDATE "s5"] Too many search contexts, cancel one with CANCELUPDATE`, "s5 OK SEARCH completed")
	// An unknown tag: NO, the known one is still cancelled.
	c.expect(`c1 CANCELUPDATE "nope" "s1"`, "c1 NO No search context has that tag")
	// UPDATE alone returns no result data (RFC 4731 §3.1 makes only the
	// empty list ALL).
	c.expect("s6 UID SEARCH RETURN (UPDATE) UNSEEN", `* ESEARCH (TAG "s6") UID`, "s6 OK UID SEARCH completed")
	// Without UPDATE a context is only a hint: nothing is kept.
	c.expect("s7 SEARCH RETURN (CONTEXT) ALL", `* ESEARCH (TAG "s7") ALL 1:3`, "s7 OK SEARCH completed")
	c.expect(`c2 CANCELUPDATE "s7"`, "c2 NO No search context has that tag")

	// s6 grows past twice the limit (5 ranges of UIDs): it ends with
	// NOUPDATE after its last update. s4 (4 ranges) goes on.
	for i, seen := range []bool{true, false, true, false, true, false, true, false} {
		var flags []string
		if seen {
			flags = []string{`\Seen`}
		}
		ts.deliver(acct, "INBOX", msg(string(rune('d'+i)), "x"), flags...)
	}
	c.expect("n1 NOOP", "* 11 EXISTS", "* 11 RECENT", `* ESEARCH (TAG "s4") ADDTO (0 4,6,8,10)`,
		`* ESEARCH (TAG "s6") UID ADDTO (0 5,7,9,11)`, `* NO [NOUPDATE "s6"] Search context ended: result too large to keep up to date`,
		"n1 OK NOOP completed")
	c.expect(`c3 CANCELUPDATE "s6"`, "c3 NO No search context has that tag")
	c.expect(`c4 CANCELUPDATE "s4"`, "c4 OK Updates cancelled")
}

// TestContextEndsWithSelection: SELECT, EXAMINE, CLOSE and UNSELECT end
// every context (RFC 5267 §4.3: updates cease when the mailbox is no
// longer selected).
func TestContextEndsWithSelection(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"))
	c := ts.login("alice@example.org")
	c.ok("a1 ENABLE IMAP4rev2")
	for i, end := range []string{"SELECT INBOX", "EXAMINE INBOX", "CLOSE", "UNSELECT"} {
		c.ok("b1 SELECT INBOX")
		c.expect("B01 UID SEARCH RETURN (UPDATE COUNT) ALL", `* ESEARCH (TAG "B01") UID COUNT …`, "B01 OK UID SEARCH completed")
		c.ok("b2 " + end)
		ts.deliver(acct, "INBOX", msg("more", "x"))
		if i < 2 {
			c.expect("b3 NOOP", "* … EXISTS", "b3 OK NOOP completed")
			c.expect(`b4 CANCELUPDATE "B01"`, "b4 NO No search context has that tag")
		} else {
			c.expect(`b4 CANCELUPDATE "B01"`, "b4 BAD Select a mailbox first")
		}
	}
}

// TestContextPositional: a program with sequence numbers follows the
// positions: after an expunge and after new mail it is run again and
// the difference reported.
func TestContextPositional(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	for _, s := range []string{"a", "b", "c", "d"} {
		ts.deliver(acct, "INBOX", msg(s, "x"))
	}
	c := ts.login("alice@example.org")
	c.ok("a1 ENABLE IMAP4rev2")
	c.ok("a2 SELECT INBOX")
	c.expect("p1 SEARCH RETURN (UPDATE ALL) 2:3", `* ESEARCH (TAG "p1") ALL 2:3`, "p1 OK SEARCH completed")
	c.expect("p2 UID SEARCH RETURN (ALL UPDATE) UID 3:*", `* ESEARCH (TAG "p2") UID ALL 3:4`, "p2 OK UID SEARCH completed")
	d := ts.login("alice@example.org")
	d.ok("d1 SELECT INBOX")
	d.ok(`d2 UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	d.ok("d3 UID EXPUNGE 1")
	// Messages 2:3 are now UIDs 3 and 4.
	c.expect("n1 NOOP", "* 1 EXPUNGE", `* ESEARCH (TAG "p1") REMOVEFROM (0 1) ADDTO (0 3)`, "n1 OK NOOP completed")
	ts.deliver(acct, "INBOX", msg("e", "x"))
	// "*" is now UID 5.
	c.expect("n2 NOOP", "* 4 EXISTS", `* ESEARCH (TAG "p2") UID ADDTO (0 5)`, "n2 OK NOOP completed")
	c.expect("n3 SEARCH RETURN () 2:3", `* ESEARCH (TAG "n3") ALL 2:3`, "n3 OK SEARCH completed")
}

// TestContextNotifyQresyncModseq: with NOTIFY's selected filter the
// updates come between commands; with QRESYNC the REMOVEFROM precedes the
// VANISHED; a program with MODSEQ adds the highest MODSEQ of what it adds.
func TestContextNotifyQresyncModseq(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("a", "x"))
	ts.deliver(acct, "INBOX", msg("b", "x"))
	c := ts.login("alice@example.org")
	c.ok("a1 ENABLE QRESYNC IMAP4rev2")
	c.ok("a2 SELECT INBOX")
	c.expect("q1 UID SEARCH RETURN (UPDATE ALL) UNSEEN MODSEQ 1", `* ESEARCH (TAG "q1") UID ALL 1:2 MODSEQ …`, "q1 OK UID SEARCH completed")
	c.ok("a3 NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))")
	d := ts.login("alice@example.org")
	d.ok("d1 SELECT INBOX")
	d.ok(`d2 UID STORE 2 +FLAGS.SILENT (\Deleted \Seen)`)
	c.pushed(`* 2 FETCH (UID 2 FLAGS (\Deleted \Seen) MODSEQ (…))`)
	c.pushed(`* ESEARCH (TAG "q1") UID REMOVEFROM (0 2)`)
	d.ok("d3 EXPUNGE")
	c.pushed("* VANISHED 2")
	ts.deliver(acct, "INBOX", msg("c", "x"))
	c.pushed("* 2 EXISTS")
	c.pushed(`* ESEARCH (TAG "q1") UID ADDTO (0 3) MODSEQ …`)
	d.ok(`d4 UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	c.pushed(`* 1 FETCH (UID 1 FLAGS (\Deleted) MODSEQ (…))`)
	d.ok("d5 EXPUNGE")
	c.pushed(`* ESEARCH (TAG "q1") UID REMOVEFROM (0 1)`)
	c.pushed("* VANISHED 1")
	c.expect("a4 NOTIFY NONE", "a4 OK NOTIFY completed")
}

// contextCountingStore counts what the server reads of message bodies and
// metadata lists.
type contextCountingStore struct {
	store.Store
	bodies   atomic.Int64 // OpenBody calls
	listed   atomic.Int64 // UIDs asked of Messages
	listings atomic.Int64 // Messages calls
	fail     atomic.Bool  // Messages fails
}

func (cs *contextCountingStore) OpenBody(ctx context.Context, blobID string) (store.Body, error) {
	cs.bodies.Add(1)
	return cs.Store.OpenBody(ctx, blobID)
}

func (cs *contextCountingStore) Messages(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool) {
	cs.listings.Add(1)
	cs.listed.Add(int64(uids.Len()))
	if cs.fail.Load() {
		return func(yield func(*store.Message, error) bool) { yield(nil, errors.New("disk on fire")) }
	}
	return cs.Store.Messages(ctx, acct, id, uids, opt)
}

func (cs *contextCountingStore) reset() {
	cs.bodies.Store(0)
	cs.listed.Store(0)
	cs.listings.Store(0)
}

// TestContextCost: keeping a context up to date reads the changed
// messages only, not the mailbox: a BODY search opens the body of the new
// or changed message alone, a flag search reads nothing beyond
// store.Changes.
func TestContextCost(t *testing.T) {
	var cs *contextCountingStore
	ts := newTestServerWith(t, nil, func(o *Options) {
		cs = &contextCountingStore{Store: o.Store}
		o.Store = cs
	})
	acct := ts.addUser("alice@example.org")
	for i := 0; i < 30; i++ {
		ts.deliver(acct, "INBOX", msg("hay "+strconv.Itoa(i), "haystack"))
	}
	c := ts.login("alice@example.org")
	c.ok("a1 ENABLE IMAP4rev2")
	c.ok("a2 SELECT INBOX")
	c.expect("B01 UID SEARCH RETURN (UPDATE) BODY needle", `* ESEARCH (TAG "B01") UID`, "B01 OK UID SEARCH completed")
	c.expect("B02 UID SEARCH RETURN (UPDATE ALL) UNSEEN", `* ESEARCH (TAG "B02") UID ALL 1:30`, "B02 OK UID SEARCH completed")
	d := ts.login("alice@example.org")
	d.ok("d1 SELECT INBOX")

	cs.reset()
	ts.deliver(acct, "INBOX", msg("needle", "a needle"))
	c.expect("n1 NOOP", "* 31 EXISTS", `* ESEARCH (TAG "B01") UID ADDTO (0 31)`, `* ESEARCH (TAG "B02") UID ADDTO (0 31)`, "n1 OK NOOP completed")
	if b, l := cs.bodies.Load(), cs.listed.Load(); b != 1 || l != 1 {
		t.Fatalf("new message: %d bodies opened, %d messages listed; want 1 and 1", b, l)
	}

	cs.reset()
	d.ok(`d2 UID STORE 7 +FLAGS.SILENT (\Seen)`)
	c.expect("n2 NOOP", `* 7 FETCH (UID 7 FLAGS (\Seen))`, `* ESEARCH (TAG "B02") UID REMOVEFROM (0 7)`, "n2 OK NOOP completed")
	// (The changed message's summary and text may come from the server's
	// cache.)
	if b, l := cs.bodies.Load(), cs.listed.Load(); b > 1 || l > 1 {
		t.Fatalf("flag change: %d bodies opened, %d messages listed; want at most 1 of each", b, l)
	}

	// Without the BODY context, a flag change reads no message at all.
	c.ok(`c1 CANCELUPDATE "B01"`)
	cs.reset()
	d.ok(`d3 UID STORE 8 +FLAGS.SILENT (\Seen)`)
	c.expect("n3 NOOP", `* 8 FETCH (UID 8 FLAGS (\Seen))`, `* ESEARCH (TAG "B02") UID REMOVEFROM (0 8)`, "n3 OK NOOP completed")
	if b, n := cs.bodies.Load(), cs.listings.Load(); b != 0 || n != 0 {
		t.Fatalf("flag search: %d bodies opened, %d listings; want none", b, n)
	}
}

// TestContextReadFails: when an update cannot be computed (the store
// fails), the context ends with NOUPDATE instead of going wrong; the
// others go on.
func TestContextReadFails(t *testing.T) {
	var cs *contextCountingStore
	ts := newTestServerWith(t, nil, func(o *Options) {
		cs = &contextCountingStore{Store: o.Store}
		o.Store = cs
	})
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("a", "needle"))
	c := ts.login("alice@example.org")
	c.ok("a1 ENABLE IMAP4rev2")
	c.ok("a2 SELECT INBOX")
	c.expect("B01 UID SEARCH RETURN (UPDATE COUNT) BODY needle", `* ESEARCH (TAG "B01") UID COUNT 1`, "B01 OK UID SEARCH completed")
	c.expect("B02 UID SEARCH RETURN (UPDATE COUNT) UNSEEN", `* ESEARCH (TAG "B02") UID COUNT 1`, "B02 OK UID SEARCH completed")
	cs.fail.Store(true)
	ts.deliver(acct, "INBOX", msg("b", "needle"))
	c.expect("n1 NOOP", "* 2 EXISTS", `* NO [NOUPDATE "B01"] Search context ended: the update failed`,
		`* ESEARCH (TAG "B02") UID ADDTO (0 2)`, "n1 OK NOOP completed")
	c.expect(`c1 CANCELUPDATE "B01"`, "c1 NO No search context has that tag")
}
