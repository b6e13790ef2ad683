package imapserver

import "testing"

// TestRev2WithoutRecent: a session that enabled IMAP4rev2 gets BAD for
// what RFC 9051 removed with \Recent (Appendix E): the STATUS item RECENT
// (§6.3.11), also in LIST RETURN (STATUS), and the search keys RECENT,
// NEW and OLD (§6.4.4) in SEARCH, SORT and THREAD, however nested; its
// other commands work. A session that did not enable it keeps them all
// (RFC 3501). (Before, the rev2 session got answers computed as for
// IMAP4rev1: a RECENT count, and NEW/OLD against a \Recent it never has.)
func TestRev2WithoutRecent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	ts.deliver(acct, "INBOX", msg("two", "2"))

	r2 := ts.login("alice@example.org")
	r2.expect("b1 ENABLE IMAP4rev2", "* ENABLED IMAP4rev2", "b1 OK ENABLE completed")
	const badStatus = "BAD [CLIENTBUG] RECENT is not a STATUS item in IMAP4rev2 (RFC 9051 section 6.3.11)"
	const badSearch = "BAD [CLIENTBUG] RECENT, NEW and OLD are not search keys in IMAP4rev2 (RFC 9051 appendix E)"
	r2.expect("b2 STATUS INBOX (MESSAGES RECENT)", "b2 "+badStatus)
	r2.expect("b3 STATUS INBOX (MESSAGES UNSEEN)", "* STATUS INBOX (MESSAGES 2 UNSEEN 2)", "b3 OK STATUS completed")
	r2.expect(`b4 LIST "" INBOX RETURN (STATUS (RECENT))`, "b4 "+badStatus)
	r2.ok("b5 SELECT INBOX")
	for i, key := range []string{"RECENT", "NEW", "OLD", "NOT OLD", "OR SEEN (UNSEEN NEW)", "1:* OR ALL RECENT"} {
		tag := "s" + string(rune('a'+i))
		r2.expect(tag+" SEARCH "+key, tag+" "+badSearch)
	}
	r2.expect("t1 UID SORT (DATE) UTF-8 NEW", "t1 "+badSearch)
	r2.expect("t2 THREAD REFERENCES UTF-8 RECENT", "t2 "+badSearch)
	r2.expect("t3 SEARCH UNSEEN", `* ESEARCH (TAG "t3") ALL 1:2`, "t3 OK SEARCH completed")
	r2.expect("t4 FETCH 1:* (FLAGS)", "* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())", "t4 OK FETCH completed")

	// IMAP4rev1 (no ENABLE): all of it works.
	r1 := ts.login("alice@example.org")
	r1.expect("a1 STATUS INBOX (MESSAGES RECENT)", "* STATUS INBOX (MESSAGES 2 RECENT 2)", "a1 OK STATUS completed")
	r1.ok(`a2 LIST "" INBOX RETURN (STATUS (RECENT))`)
	r1.ok("a3 SELECT INBOX")
	r1.expect("a4 SEARCH NEW", "* SEARCH 1 2", "a4 OK SEARCH completed")
	r1.expect("a5 SEARCH OLD", "* SEARCH", "a5 OK SEARCH completed")
	r1.expect("a6 SEARCH RECENT", "* SEARCH 1 2", "a6 OK SEARCH completed")
	r1.ok("a7 UID SORT (DATE) UTF-8 NOT OLD")
}
