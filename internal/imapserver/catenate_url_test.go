package imapserver

import (
	"fmt"
	"strings"
	"testing"
)

// TestCatenateURLOtherUser: CATENATE takes stored messages only from the
// session's own account; a URL that names another user or another server
// gets NO [BADURL] (RFC 4469 §3, §4.1; RFC 5092 for the syntax), where it
// used to read the session's own message of that UID. Relative URLs and
// URLs that name the user themself, or no user, work.
func TestCatenateURLOtherUser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	bob := ts.addUser("bob@example.org")
	ts.deliver(alice, "INBOX", "Subject: alice\n\nalice's own\n")
	ts.deliver(bob, "INBOX", "Subject: bob\n\nbob's secret\n")
	c := ts.login("alice@example.org")
	local := strings.Split(ts.addr, ":")[0]

	for i, u := range []string{
		"imap://bob@imap.test/INBOX/;UID=1",
		"imap://bob%40example.org@imap.test/INBOX/;UID=1",
		"imap://bob%40example.org;AUTH=*@imap.test/INBOX/;UID=1",
		"imap://alice%40example.org@other.example/INBOX/;UID=1",
		"imap://other.example/INBOX/;UID=1",
		"imap://alice%40example.org;URLAUTH=x@imap.test/INBOX/;UID=1",
		"imap://alice%40example.org@imap.test/INBOX/;UID=1;URLAUTH=anonymous:internal:0123",
		"imap://@/INBOX/;UID=1",
	} {
		tag := fmt.Sprintf("a%d", i)
		c.expect(fmt.Sprintf("%s APPEND Drafts CATENATE (URL %q)", tag, u),
			fmt.Sprintf("%s NO [BADURL %q] Invalid or unknown message URL", tag, u))
	}
	c.expect("b0 STATUS Drafts (MESSAGES)", "* STATUS Drafts (MESSAGES 0)", "b0 OK STATUS completed")

	ok := []string{
		"/INBOX/;UID=1",
		"imap://imap.test/INBOX/;UID=1",
		"imap://alice%40example.org@IMAP.TEST:143/INBOX/;UID=1",
		"imap://ALICE%40example.org;AUTH=*@imap.test/INBOX/;UID=1",
		"imap://alice%40example.org@" + local + "/INBOX/;UID=1",
	}
	for i, u := range ok {
		c.ok(fmt.Sprintf("b%d APPEND Drafts CATENATE (URL %q)", i+1, u))
	}
	c.ok("c1 SELECT Drafts")
	lines := c.ok("c2 FETCH 1:* (BODY.PEEK[TEXT])")
	if len(lines) != len(ok) {
		t.Fatalf("%d messages: %q", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, "alice's own") || strings.Contains(l, "bob") {
			t.Fatalf("CATENATE stored %q", l)
		}
	}
}
