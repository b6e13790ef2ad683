package imapserver

import (
	"testing"
)

// TestSelectListsKeywordsInUse: SELECT and EXAMINE list the keywords set
// on the mailbox's messages in FLAGS and PERMANENTFLAGS (RFC 9051
// §7.3.5, RFC 3501 §7.2.6: the flags applicable in the mailbox; Dovecot
// does the same), whether the mailbox cache is loaded or not; keywords
// of other mailboxes are not listed. (Before, only the system flags were,
// and the keywords came with the first FETCH that showed one.)
func TestSelectListsKeywordsInUse(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"), "$Work", `\Seen`)
	ts.deliver(acct, "INBOX", msg("two", "x"))
	ts.deliver(acct, "INBOX", msg("three", "x"), "$Label1", "$Work")
	ts.deliver(acct, "Archive", msg("old", "x"), "$Elsewhere")

	flags := `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Work)`
	perm := `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Work \*)] Flags permitted`
	// Not cached yet: from the store.
	a := ts.login("alice@example.org")
	lines := a.ok("a1 SELECT INBOX")
	if lines[0] != flags || lines[1] != perm {
		t.Fatalf("SELECT from the store: %q", lines)
	}
	// A SEARCH loads the mailbox cache; now from the cache.
	a.ok("a2 SEARCH ALL")
	b := ts.login("alice@example.org")
	if lines := b.ok("b1 EXAMINE INBOX"); lines[0] != flags || lines[1] != `* OK [PERMANENTFLAGS ()] No permanent flags permitted` {
		t.Fatalf("EXAMINE from the cache: %q", lines)
	}
	// A keyword set meanwhile is in the next SELECT's list, and is not
	// announced again by FETCH.
	a.ok(`a3 STORE 2 +FLAGS.SILENT ($New)`)
	c := ts.login("alice@example.org")
	lines = c.ok("c1 SELECT INBOX")
	if want := `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $New $Work)`; lines[0] != want {
		t.Fatalf("after STORE: %q", lines)
	}
	c.expect("c2 FETCH 2 (FLAGS)", `* 2 FETCH (FLAGS ($New))`, "c2 OK FETCH completed")
	// An empty mailbox, and one without keywords.
	if lines := c.ok("c3 SELECT Drafts"); lines[0] != `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)` {
		t.Fatalf("Drafts: %q", lines)
	}
}
