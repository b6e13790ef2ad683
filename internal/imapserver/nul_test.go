package imapserver

import (
	"fmt"
	"strings"
	"testing"
)

// TestFetchNeverSendsNUL: a message that holds NUL bytes (as delivered,
// or appended) goes out in ordinary literals with NUL as 0x80, the
// literal's size unchanged (RFC 9051 §4.3 and RFC 3501 §4.3 forbid NUL
// in a literal); BINARY gives the bytes as stored, in a literal8 (RFC
// 3516). A large body that holds NUL is not sent with sendfile(2); one
// without still is.
func TestFetchNeverSendsNUL(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	// ts.deliver stores the messages with CRLF line endings.
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	small := "Subject: a\x00b\n\nbody\x00with\x00\x00nul\n"
	ts.deliver(acct, "INBOX", small)
	small = crlf(small)
	var big strings.Builder
	for i := 0; big.Len() < 200<<10; i++ {
		fmt.Fprintf(&big, "line %d of a large body, kept in a file\n", i)
	}
	large := "Subject: large\n\n" + big.String()[:100<<10] + "\x00" + big.String()[100<<10:]
	ts.deliver(acct, "INBOX", large)
	large = crlf(large)
	clean := "Subject: clean\n\n" + big.String()
	ts.deliver(acct, "INBOX", clean)
	clean = crlf(clean)
	c := ts.login("alice@example.org")
	c.ok("a1 SELECT INBOX")

	no := func(s string) string { return strings.ReplaceAll(s, "\x00", "\x80") }
	lit := func(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }
	_, text, _ := strings.Cut(small, "\r\n\r\n")
	c.expect("a2 FETCH 1 (BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[]<9.6> RFC822.TEXT)",
		"* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[] "+lit(no(small))+
			" BODY[HEADER] "+lit(no("Subject: a\x00b\r\n\r\n"))+
			" BODY[TEXT] "+lit(no(text))+
			" BODY[1] "+lit(no(text))+
			" BODY[]<9> "+lit(no(small[9:15]))+
			" RFC822.TEXT "+lit(no(text))+")",
		"a2 OK FETCH completed")
	c.expect("a3 FETCH 1 (BINARY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1])",
		"* 1 FETCH (BINARY[] ~"+lit(small)+" BINARY[1] ~"+lit(text)+fmt.Sprintf(" BINARY.SIZE[1] %d)", len(text)),
		"a3 OK FETCH completed")

	before := ts.srv.sentByFile.Load()
	c.expect("a4 FETCH 2 (BODY.PEEK[])", "* 2 FETCH (BODY[] "+lit(no(large))+")", "a4 OK FETCH completed")
	if n := ts.srv.sentByFile.Load() - before; n != 0 {
		t.Errorf("a body with NUL went out with sendfile (%d)", n)
	}
	c.expect("a5 FETCH 2 (BINARY.PEEK[])", "* 2 FETCH (BINARY[] ~"+lit(large)+")", "a5 OK FETCH completed")
	c.expect("a6 FETCH 3 (BODY.PEEK[])", "* 3 FETCH (BODY[] "+lit(clean)+")", "a6 OK FETCH completed")
	if n := ts.srv.sentByFile.Load() - before; n != 1 {
		t.Errorf("a large body without NUL: %d literals with sendfile, want 1", n)
	}
}
