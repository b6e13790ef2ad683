package imapserver

import (
	"fmt"
	"strings"
	"testing"
)

// TestAppendLimitIsWhatTheClientSends: APPENDLIMIT (RFC 7889 §3) bounds the
// message the client sends. A literal within it is accepted even when the
// form postfach stores is larger: bare LF lines become CRLF, and a literal8
// part in Content-Transfer-Encoding binary becomes base64 (RFC 3516 §4.3).
// Both were refused with NO [TOOBIG] once the stored form passed the limit.
func TestAppendLimitIsWhatTheClientSends(t *testing.T) {
	t.Parallel()
	const limit = 4000
	ts := newTestServer(t, func(o *Options) { o.MaxMessageSize = limit })
	ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")

	lf := "Subject: lines\n\n" + strings.Repeat("x\n", (limit-100)/2)
	var data strings.Builder
	for i := range limit - 200 {
		data.WriteByte(byte(i * 7))
	}
	bin := "Subject: binary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + data.String()
	if len(lf) > limit || len(bin) > limit {
		t.Fatalf("test messages of %d and %d bytes pass the limit of %d", len(lf), len(bin), limit)
	}
	c.ok(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s", len(lf), lf))
	c.ok(fmt.Sprintf("a2 APPEND INBOX ~{%d+}\r\n%s", len(bin), bin))
	c.ok("a3 SELECT INBOX")
	crlf := strings.ReplaceAll(lf, "\n", "\r\n")
	c.expect("b1 FETCH 1 (RFC822.SIZE BODY.PEEK[TEXT]<0.4>)",
		fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d BODY[TEXT]<0> {4}\r\nx\r\nx)", len(crlf)),
		"b1 OK FETCH completed")
	c.expect("b2 FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1])",
		fmt.Sprintf("* 2 FETCH (BINARY.SIZE[1] %d BINARY[1] ~{%d}\r\n%s)", data.Len(), data.Len(), data.String()),
		"b2 OK FETCH completed")
	// What the client sends is still bounded.
	c.expect(fmt.Sprintf("a4 APPEND INBOX {%d}", limit+1), "a4 NO [TOOBIG] message too big")
}
