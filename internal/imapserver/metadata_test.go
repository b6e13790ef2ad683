package imapserver

import (
	"strings"
	"testing"
)

// TestMetadata is a transcript of METADATA (RFC 5464): server and mailbox
// annotations, /private and /shared, DEPTH, MAXSIZE and LONGENTRIES, NIL
// deletes, name validation, limits, and the entries the server provides.
func TestMetadata(t *testing.T) {
	ts := newTestServer(t, func(o *Options) {
		o.Postmaster = "postmaster@example.org"
		o.MetadataMaxValue = 100
		o.MetadataMaxEntries = 6
	})
	ts.addUser("alice@example.org")
	ts.addUser("bob@example.org")
	c := ts.login("alice@example.org")
	if caps := strings.Join(c.ok("a0 CAPABILITY"), " "); !strings.Contains(caps, " METADATA METADATA-SERVER ") {
		t.Fatalf("capabilities: %s", caps)
	}

	// RFC 5464 §3.2.1: /shared/admin is the server's, and read-only.
	c.expect(`a1 GETMETADATA "" /shared/admin`, `* METADATA "" (/shared/admin "mailto:postmaster@example.org")`, "a1 OK GETMETADATA completed")
	c.expect(`a2 SETMETADATA "" (/shared/admin "mailto:me@example.org")`, "a2 NO [NOPERM] /shared/admin is set by the server")
	c.expect(`a3 SETMETADATA "" (/shared/comment "Alice's server notes" /private/vendor/example/theme "dark")`, "a3 OK SETMETADATA completed")
	c.expect(`a4 GETMETADATA "" (/shared/comment /private/comment)`, `* METADATA "" (/shared/comment "Alice's server notes")`, "a4 OK GETMETADATA completed")
	// Entry names are case-insensitive.
	c.expect(`a5 GETMETADATA (DEPTH infinity) "" /PRIVATE`, `* METADATA "" (/private/vendor/example/theme "dark")`, "a5 OK GETMETADATA completed")
	c.expect(`a6 GETMETADATA (DEPTH 1) "" /private/vendor`, "a6 OK GETMETADATA completed")
	c.expect(`a7 GETMETADATA (DEPTH 1) "" /private/vendor/example`, `* METADATA "" (/private/vendor/example/theme "dark")`, "a7 OK GETMETADATA completed")

	// Mailbox annotations.
	c.ok(`b1 SETMETADATA INBOX (/private/comment "mine" /shared/comment {12+}` + "\r\nline1\r\nline2)")
	c.expect(`b2 GETMETADATA INBOX (/shared/comment /private/comment)`,
		"* METADATA INBOX (/private/comment \"mine\" /shared/comment {12}\r\nline1\r\nline2)", "b2 OK GETMETADATA completed")
	// MAXSIZE leaves out longer values and says how long the longest was.
	c.expect(`b3 GETMETADATA (MAXSIZE 5) INBOX (/shared/comment /private/comment)`,
		`* METADATA INBOX (/private/comment "mine")`, "b3 OK [METADATA LONGENTRIES 12] GETMETADATA completed")
	// NIL deletes; an entry that does not exist is not reported.
	c.expect(`b4 SETMETADATA INBOX (/private/comment NIL)`, "b4 OK SETMETADATA completed")
	c.expect(`b5 GETMETADATA INBOX /private/comment`, "b5 OK GETMETADATA completed")
	c.expect(`b6 GETMETADATA nosuch /private/comment`, "b6 NO [NONEXISTENT] No such mailbox")
	// RFC 6154 §4: /private/specialuse is the special-use attributes.
	c.expect(`b7 GETMETADATA Sent /private/specialuse`, `* METADATA Sent (/private/specialuse "\\Sent")`, "b7 OK GETMETADATA completed")
	c.ok(`b8 CREATE Receipts`)
	c.expect(`b9 SETMETADATA Receipts (/private/specialuse "\\archive")`, "b9 OK SETMETADATA completed")
	c.expect(`b10 LIST "" Receipts`, `* LIST (\HasNoChildren \Archive) "/" Receipts`, "b10 OK LIST completed")
	c.expect(`b11 SETMETADATA Receipts (/private/specialuse "\\Important")`, "b11 NO [USEATTR] Unsupported special-use attribute")

	// RFC 5464 §3.2: entry names.
	for i, name := range []string{"/comment", "/private", "/private/", "/private//x", "/shared/a*", "/shared/vendor/acme", "private/comment", "/shared/\x7f"} {
		tag := "v" + string(rune('a'+i))
		got := c.do(tag + ` SETMETADATA "" (` + imapQuote(name) + ` "x")`)
		if last := got[len(got)-1]; !strings.HasPrefix(last, tag+" BAD") {
			t.Errorf("SETMETADATA %q: %s", name, last)
		}
	}

	// Limits: one value, and the number of entries of the account.
	c.expect(`c1 SETMETADATA "" (/private/big "`+strings.Repeat("x", 101)+`")`, "c1 NO [METADATA MAXSIZE 100] Annotation value too large")
	c.expect(`c2 SETMETADATA "" (/private/a "1" /private/b "2" /private/c "3" /private/d "4")`, "c2 NO [METADATA TOOMANY] Too many annotations for this account")
	c.expect(`c3 SETMETADATA "" (/private/a "1" /private/b "2")`, "c3 OK SETMETADATA completed")

	// Another account sees none of it, /shared included.
	b := ts.login("bob@example.org")
	b.expect(`d1 GETMETADATA (DEPTH infinity) "" (/shared /private)`, `* METADATA "" (/shared/admin "mailto:postmaster@example.org")`, "d1 OK GETMETADATA completed")
	b.expect(`d2 GETMETADATA (DEPTH infinity) INBOX (/shared /private)`, "d2 OK GETMETADATA completed")
}

// imapQuote quotes s as an IMAP quoted string.
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
