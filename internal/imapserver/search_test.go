package imapserver

import (
	"fmt"
	"testing"
)

func TestSearchSortThread(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", "From: Carol <carol@example.org>\nSubject: banana\nDate: Sat, 2 Mar 2024 10:00:00 +0000\nMessage-ID: <a@x>\n\nyellow fruit\n")
	ts.deliver(acct, "INBOX", "From: Alice <alice@example.org>\nSubject: Re: banana\nDate: Sun, 3 Mar 2024 10:00:00 +0000\nMessage-ID: <b@x>\nIn-Reply-To: <a@x>\nReferences: <a@x>\n\nI like it\n", `\Seen`)
	ts.deliver(acct, "INBOX", "From: Bob <bob@example.org>\nSubject: apple\nDate: Fri, 1 Mar 2024 10:00:00 +0000\nMessage-ID: <c@x>\n\nred fruit, longer body text here\n", `\Flagged`)
	c := ts.login("alice@example.org")
	c.ok("a0 SELECT INBOX")
	c.expect("a1 SEARCH UNSEEN", "* SEARCH 1 3", "a1 OK SEARCH completed")
	c.expect("a2 UID SEARCH BODY fruit NOT FLAGGED", "* SEARCH 1", "a2 OK UID SEARCH completed")
	c.expect("a3 SEARCH FROM bob", "* SEARCH 3", "a3 OK SEARCH completed")
	c.expect("a4 SEARCH OR SUBJECT apple SEEN", "* SEARCH 2 3", "a4 OK SEARCH completed")
	c.expect("a5 SEARCH CHARSET KOI8-R SUBJECT x", "* SEARCH", "a5 OK SEARCH completed")
	c.expect("a6 SEARCH CHARSET NOPE-1 SUBJECT x", "a6 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
	c.expect("a7 SEARCH RETURN (MIN MAX COUNT) ALL", `* ESEARCH (TAG "a7") MIN 1 MAX 3 COUNT 3`, "a7 OK SEARCH completed")
	c.expect("a8 UID SEARCH RETURN () 2:*", `* ESEARCH (TAG "a8") UID ALL 2:3`, "a8 OK UID SEARCH completed")
	// SEARCHRES (RFC 5182).
	c.expect("b1 SEARCH RETURN (SAVE) FLAGGED", "b1 OK SEARCH completed")
	c.expect("b2 FETCH $ (UID)", "* 3 FETCH (UID 3)", "b2 OK FETCH completed")
	c.expect("b3 UID SEARCH UID $", "* SEARCH 3", "b3 OK UID SEARCH completed")
	// SORT and THREAD (RFC 5256), ESORT (RFC 5267).
	c.expect("c1 SORT (SUBJECT) UTF-8 ALL", "* SORT 3 1 2", "c1 OK SORT completed")
	c.expect("c2 SORT (REVERSE DATE) UTF-8 ALL", "* SORT 2 1 3", "c2 OK SORT completed")
	c.expect("c3 UID SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 2 3 1", "c3 OK UID SORT completed")
	c.expect("c4 SORT RETURN (MIN COUNT) (ARRIVAL) UTF-8 ALL", `* ESEARCH (TAG "c4") MIN 1 COUNT 3`, "c4 OK SORT completed")
	c.expect("c5 THREAD REFERENCES UTF-8 ALL", "* THREAD (3)(1 2)", "c5 OK THREAD completed")
	c.expect("c6 THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (3)(1 2)", "c6 OK THREAD completed")
	c.expect("c7 THREAD NOPE UTF-8 ALL", "c7 BAD Unsupported threading algorithm")
	// MODSEQ search (RFC 7162 §3.1.5) enables CONDSTORE.
	lines := c.ok(`d1 STORE 2 +FLAGS (\Answered)`)
	var ms uint64
	fmt.Sscanf(lines[0], "* 2 FETCH (UID 2 FLAGS (\\Answered \\Seen \\Recent) MODSEQ (%d))", &ms)
	if ms == 0 {
		// CONDSTORE is not enabled yet: no MODSEQ in the FETCH.
		if lines[0] != `* 2 FETCH (UID 2 FLAGS (\Answered \Seen \Recent))` {
			t.Fatalf("store: %q", lines)
		}
	}
	// The first CONDSTORE-enabling command reports HIGHESTMODSEQ too.
	lines = c.ok("d2 SEARCH MODSEQ 1")
	if !equalLines(lines, []string{"* SEARCH 1 2 3 (MODSEQ …)", "* OK [HIGHESTMODSEQ …] Highest"}) {
		t.Fatalf("search modseq: %q", lines)
	}
	c.expect(`d3 STORE 1 +FLAGS (\Answered)`, `* 1 FETCH (UID 1 FLAGS (\Answered \Recent) MODSEQ (…))`, "d3 OK STORE completed")
}
