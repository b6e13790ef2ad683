package imapserver

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSyncScenarios runs the multi-device scenarios of issue 4 that rest
// on CONDSTORE and QRESYNC.
func TestSyncScenarios(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	for i := range 5 {
		ts.deliver(acct, "INBOX", msg(fmt.Sprintf("m%d", i), "x"))
	}
	// Device C was in sync and went offline.
	c := ts.login("alice@example.org")
	c.ok("c1 ENABLE QRESYNC")
	uv, hms := selectState(t, c.ok("c2 SELECT INBOX"))
	c.ok("c3 LOGOUT")

	// 1. Read on one device, read on the other: A sets \Seen, B in IDLE
	// gets the FETCH at once, C resyncs and gets only that change.
	b := ts.login("alice@example.org")
	b.ok("b0 ENABLE CONDSTORE")
	b.ok("b1 SELECT INBOX")
	b.send("b2 IDLE")
	b.expectLine("+ idling")
	a := ts.login("alice@example.org")
	a.ok("a1 SELECT INBOX")
	a.ok(`a2 STORE 3 +FLAGS.SILENT (\Seen)`)
	b.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b.expectLine(`* 3 FETCH (UID 3 FLAGS (\Seen) MODSEQ (…))`)
	b.send("DONE")
	b.expectLine("b2 OK IDLE terminated")
	c = ts.login("alice@example.org")
	c.ok("c4 ENABLE QRESYNC")
	lines := c.ok("c5 SELECT INBOX (QRESYNC (" + uv + " " + hms + "))")
	var fetches []string
	for _, l := range lines {
		if strings.Contains(l, " FETCH ") || strings.HasPrefix(l, "* VANISHED") {
			fetches = append(fetches, l)
		}
	}
	if !equalLines(fetches, []string{`* 3 FETCH (UID 3 FLAGS (\Seen) MODSEQ (…))`}) {
		t.Fatalf("resync after one change:\n%s", strings.Join(lines, "\n"))
	}
	_, hms = selectState(t, lines)

	// 3. A draft begun on one device is finished on another: B replaces
	// it; A sees the old one vanish and the new one appear.
	a.ok("a3 SELECT Drafts")
	a.expect("a4 APPEND Drafts (\\Draft) {11+}\r\nversion one", "* 1 EXISTS", "* 1 RECENT", "a4 OK [APPENDUID … 1] APPEND completed")
	b.ok("b3 SELECT Drafts")
	b.expect("b4 UID REPLACE 1 Drafts (\\Draft) {11+}\r\nversion two",
		"* OK [APPENDUID … 2] Replacement appended", "* 2 EXISTS", "* 1 RECENT", "* 1 EXPUNGE", "b4 OK UID REPLACE completed")
	a.expect("a6 NOOP", "* 2 EXISTS", "* 1 RECENT", "* 1 EXPUNGE", "a6 OK NOOP completed")
	a.expect("a7 FETCH 1 (UID BODY[])", "* 1 FETCH (FLAGS (\\Draft \\Seen) UID 2 BODY[] {11}\r\nversion two)", "a7 OK FETCH completed")

	// 4. Folders made on one device appear on the other, with their
	// special use.
	a.ok("a8 CREATE Receipts (USE (\\Archive))")
	// (B also learns that A read the new draft.)
	b.expect(`b5 LIST "" Receipts`, `* LIST (\HasNoChildren \Archive) "/" Receipts`, `* 1 FETCH (UID 2 FLAGS (\Draft \Seen \Recent) MODSEQ (…))`, "b5 OK LIST completed")
	_ = hms
}
