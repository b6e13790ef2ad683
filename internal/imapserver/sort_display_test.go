package imapserver

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sortDisplayAppend appends msg (LF line endings) to mailbox with a
// non-synchronizing literal (RFC 7888) and the given internal date.
func sortDisplayAppend(c *client, tag, mailbox, date, msg string) {
	c.t.Helper()
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	c.send(tag + " APPEND " + mailbox + ` "` + date + `" {` + strconv.Itoa(len(msg)) + "+}\r\n" + msg)
	lines := c.until(tag)
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, tag+" OK") {
		c.t.Fatalf("APPEND: %q", lines)
	}
}

// TestAddressCommentEnvelope: ENVELOPE over the address forms of RFC 5322
// §3.4 and §4.4. An addr-spec without a phrase takes its display name
// from its comment (Dovecot and Cyrus do; clients expect it), comments
// inside an address are dropped from it, groups keep their markers (RFC
// 9051 §7.5.2), and SEARCH FROM/TO/CC/BCC match the names so found.
func TestAddressCommentEnvelope(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("kim@example.net")
	c := ts.login("kim@example.net")
	sortDisplayAppend(c, "a1", "INBOX", "04-Mar-2024 10:00:00 +0000",
		"From: kim@example.net (Kim Lee)\n"+
			"Sender: <kim (desk)@ (main) example.net>\n"+
			"Reply-To: Kim Lee <kim@example.net> (the phrase wins)\n"+
			"To: team: lou@example.com (Lou (the boss) Ng), max@example.com;,\n undisclosed:;\n"+
			"Cc: < @relay1.example, @relay2.example : cc @ example . org >\n"+
			"Bcc: \"quoted local\"@example.org (first) (=?UTF-8?Q?J=C3=B6rg?=)\n"+
			"Subject: one\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <1@example.net>\n\nbody\n")
	sortDisplayAppend(c, "a2", "INBOX", "04-Mar-2024 11:00:00 +0000",
		"From: pete(his account)@silly.test(his\n host)\n"+
			"To: john . doe @ example . org\n"+
			"Cc: nobody@example.org ()\n"+
			"Subject: two\nMessage-ID: <2@example.net>\n\nbody\n")
	c.ok("a3 SELECT INBOX")
	c.expect("a4 FETCH 1:2 ENVELOPE",
		`* 1 FETCH (ENVELOPE ("Mon, 4 Mar 2024 10:00:00 +0000" "one" `+
			`(("Kim Lee" NIL "kim" "example.net")) `+
			`((NIL NIL "kim" "example.net")) `+
			`(("Kim Lee" NIL "kim" "example.net")) `+
			`((NIL NIL "team" NIL)("Lou (the boss) Ng" NIL "lou" "example.com")(NIL NIL "max" "example.com")(NIL NIL NIL NIL)(NIL NIL "undisclosed" NIL)(NIL NIL NIL NIL)) `+
			`((NIL "@relay1.example,@relay2.example" "cc" "example.org")) `+
			`(("=?UTF-8?Q?J=C3=B6rg?=" NIL "quoted local" "example.org")) `+
			`NIL "<1@example.net>"))`,
		`* 2 FETCH (ENVELOPE (NIL "two" `+
			`(("his host" NIL "pete" "silly.test")) `+
			`(("his host" NIL "pete" "silly.test")) `+
			`(("his host" NIL "pete" "silly.test")) `+
			`((NIL NIL "john.doe" "example.org")) `+
			`((NIL NIL "nobody" "example.org")) `+
			`NIL NIL "<2@example.net>"))`,
		"a4 OK FETCH completed")

	// SEARCH: the address, the name from a comment (decoded), groups.
	for _, tc := range []struct{ cmd, want string }{
		{"FROM kim@example.net", "* SEARCH 1"},
		{`FROM "kim lee"`, "* SEARCH 1"},
		{`FROM "HIS HOST"`, "* SEARCH 2"},
		{"FROM account", "* SEARCH"},
		{"TO lou@example.com", "* SEARCH 1"},
		{`TO "lou (the boss)"`, "* SEARCH 1"},
		{"TO undisclosed", "* SEARCH 1"},
		{"TO john.doe@example.org", "* SEARCH 2"},
		{"CC cc@example.org", "* SEARCH 1"},
		{"CC relay1", "* SEARCH"},
		{"BCC {5+}\r\njörg", "* SEARCH 1"},
		{`BCC "quoted local@"`, "* SEARCH 1"},
		{"BCC first", "* SEARCH"},
	} {
		c.expect("s1 SEARCH CHARSET UTF-8 "+tc.cmd, tc.want, "s1 OK SEARCH completed")
	}
}

// TestSortDisplay: SORT by the address keys (RFC 5256 §3: FROM, TO and CC
// by the addr-mailbox of the first address) and by DISPLAYFROM and
// DISPLAYTO (RFC 5957: the display name, a comment's included, else the
// addr-spec; a group by its name), compared by i;unicode-casemap, ties
// in sequence order, REVERSE inverting only its own key; and SUBJECT
// (base subject), DATE (the Date header in UTC, else the internal date),
// ARRIVAL and SIZE. A SORT context places a new message by the same keys.
func TestSortDisplay(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("kim@example.net")
	c := ts.login("kim@example.net")
	c.expect("a0 CAPABILITY", "* CAPABILITY …SORT SORT=DISPLAY…", "a0 OK CAPABILITY completed")
	pad := func(n int) string { return strings.Repeat("x", n) + "\n" }
	msgs := []struct{ internal, msg string }{
		{"05-Mar-2024 09:00:00 +0000", "From: zoe@example.org (Adam Ant)\nTo: Yuri <quinn@example.org>\nCc: Omar <omar@example.org>\n" +
			"Subject: Re: lemons\nDate: Mon, 4 Mar 2024 01:00:00 +0200\n\n" + pad(2000)},
		{"01-Mar-2024 09:00:00 +0000", "From: Bert <bert@example.org>\nTo: pat@example.org (Zed)\nCc: nina@example.org, adam@example.org\n" +
			"Subject: apples\nDate: Sun, 3 Mar 2024 23:30:00 +0000\n\n" + pad(5000)},
		{"03-Mar-2024 23:00:00 +0100", "From: <carl (x)@example.org>\nTo: undisclosed-recipients:;\n" +
			"Subject: [list] Fwd: cherries\n\n" + pad(1000)},
		{"02-Mar-2024 09:00:00 +0000", "From: ALMA@example.org\nTo: team: xena@example.org (Bob);\nCc: (nobody) omar@example.org\n" +
			"Subject: LEMONS (fwd)\nDate: Sun, 3 Mar 2024 18:00:00 -0500\n\n" + pad(4000)},
		{"04-Mar-2024 09:00:00 +0000", "From: =?UTF-8?Q?=C3=89mile?= <emile@example.org>\nTo: pat@example.org (zed)\nCc: Nina <NINA@example.org>\n" +
			"Subject: =?UTF-8?Q?=C3=A4pples?=\nDate: Wed, 6 Mar 2024 08:00:00 +0100\n\n" + pad(3000)},
	}
	for i, m := range msgs {
		sortDisplayAppend(c, "p"+strconv.Itoa(i), "INBOX", m.internal, m.msg)
	}
	c.ok("a1 SELECT INBOX")
	for _, tc := range []struct{ criteria, want string }{
		// The address keys.
		{"FROM", "4 2 3 5 1"},
		{"REVERSE FROM", "1 5 3 2 4"},
		{"TO", "2 5 1 4 3"},
		{"REVERSE TO", "3 4 1 2 5"},
		{"CC", "3 2 5 1 4"},
		{"REVERSE CC", "1 4 2 5 3"},
		{"REVERSE CC ARRIVAL", "4 1 2 5 3"},
		{"CC REVERSE SIZE", "3 2 5 4 1"},
		{"DISPLAYFROM", "1 4 2 3 5"},
		{"REVERSE DISPLAYFROM", "5 3 2 4 1"},
		{"DISPLAYTO", "4 3 1 2 5"},
		{"REVERSE DISPLAYTO", "2 5 1 3 4"},
		{"DISPLAYTO REVERSE DATE", "4 3 1 5 2"},
		// The others: base subjects (ÄPPLES after APPLES in
		// i;unicode-casemap), dates in UTC (1 and 4 are both 23:00Z;
		// 3 has no Date and sorts by its internal date, 22:00Z),
		// internal dates, sizes.
		{"SUBJECT", "2 5 3 1 4"},
		{"REVERSE SUBJECT", "1 4 3 5 2"},
		{"DATE", "3 1 4 2 5"},
		{"REVERSE DATE", "5 2 1 4 3"},
		{"ARRIVAL", "2 4 3 5 1"},
		{"SIZE", "3 1 5 4 2"},
		{"SUBJECT ARRIVAL", "2 5 3 4 1"},
		// 1 and 4 tie on both keys: sequence order, not reversed.
		{"SUBJECT REVERSE DATE", "2 5 3 1 4"},
	} {
		c.expect("s1 SORT ("+tc.criteria+") UTF-8 ALL", "* SORT "+tc.want, "s1 OK SORT completed")
	}
	c.expect("s2 UID SORT (DISPLAYFROM) us-ascii FROM adam", "* SORT 1", "s2 OK UID SORT completed")
	c.expect("s3 SORT RETURN (ALL) (REVERSE DISPLAYTO) UTF-8 TO zed", `* ESEARCH (TAG "s3") ALL 2,5`, "s3 OK SORT completed")
	c.expect("s4 SORT (DISPLAYFROM NOPE) UTF-8 ALL", "s4 BAD …")
	c.expect("s5 SORT (REVERSE) UTF-8 ALL", "s5 BAD …")

	// CONTEXT=SORT (RFC 5267 §4): a message named by a comment that
	// sorts first is added at position 1.
	c.expect("C1 SORT RETURN (UPDATE ALL) (DISPLAYFROM) UTF-8 ALL", `* ESEARCH (TAG "C1") ALL 1,4,2:3,5`, "C1 OK SORT completed")
	ts.deliver(acct, "INBOX", "From: aaron@example.org (Aaron Aal)\nSubject: six\n\nbody\n")
	lines := c.ok("n1 NOOP")
	if !slices.Contains(lines, "* 6 EXISTS") || !slices.Contains(lines, `* ESEARCH (TAG "C1") ADDTO (1 6)`) {
		t.Fatalf("NOOP after a delivery: %q", lines)
	}
}
