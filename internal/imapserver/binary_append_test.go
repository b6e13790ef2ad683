package imapserver

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// b64Lines is base64 in lines of 76 characters joined by CRLF, as a part
// appended with Content-Transfer-Encoding: binary is stored.
func b64Lines(data string) string {
	s := base64.StdEncoding.EncodeToString([]byte(data))
	var lines []string
	for len(s) > 76 {
		lines = append(lines, s[:76])
		s = s[76:]
	}
	return strings.Join(append(lines, s), "\r\n")
}

// TestBinaryAppendFetch: a message appended as a literal8 with parts in
// Content-Transfer-Encoding: binary (RFC 3516 §4.3) comes back whole: in
// BODY[n] base64 encoded (no NUL in an ordinary literal, RFC 9051 §4.3),
// in BINARY[n] as appended, with BINARY.SIZE[n] its size; also in nested
// multiparts, inside message/rfc822, with NUL bytes, and for parts
// without a line ending at the end.
func TestBinaryAppendFetch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")

	var all strings.Builder
	for i := range 256 {
		all.WriteByte(byte(i))
	}
	data := all.String() // starts with NUL, holds CR and LF
	single := "From: a@example.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + data
	inner := "\x00inner\r\nbinary\x00"
	multi := "From: a@example.org\r\nMime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhello\r\n" +
		"--outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + data + "\r\n" +
		"--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n" +
		"--in\r\nContent-Transfer-Encoding: binary\r\n\r\n" + inner + "\r\n--in--\r\n" +
		"--outer--\r\n"
	// A synchronizing literal8, then a non-synchronizing one (LITERAL+).
	c.send(fmt.Sprintf("a1 APPEND INBOX ~{%d}", len(single)))
	c.expectLine("+ …")
	c.send(single)
	c.expectLine("a1 OK [APPENDUID … 1] APPEND completed")
	c.ok(fmt.Sprintf("a2 APPEND INBOX ~{%d+}\r\n%s", len(multi), multi))
	c.ok("a3 SELECT INBOX")

	lit := func(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }
	enc := b64Lines(data)
	c.expect("b1 FETCH 1 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1.MIME])",
		"* 1 FETCH (BODY[1] "+lit(enc)+" BINARY[1] ~"+lit(data)+" BINARY.SIZE[1] 256 BODY[1.MIME] "+
			lit("From: a@example.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")+")",
		"b1 OK FETCH completed")
	c.expect("b2 FETCH 1 (BODYSTRUCTURE)",
		fmt.Sprintf(`* 1 FETCH (BODYSTRUCTURE ("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" %d NIL NIL NIL NIL))`, len(enc)),
		"b2 OK FETCH completed")
	c.expect("b3 FETCH 2 (BODY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2] BINARY.PEEK[3.1] BINARY.SIZE[3.1] BODY.PEEK[3.1])",
		"* 2 FETCH (BODY[1] "+lit("hello")+" BINARY[2] ~"+lit(data)+" BINARY.SIZE[2] 256 BODY[2] "+lit(enc)+
			" BINARY[3.1] ~"+lit(inner)+fmt.Sprintf(" BINARY.SIZE[3.1] %d", len(inner))+" BODY[3.1] "+lit(b64Lines(inner))+")",
		"b3 OK FETCH completed")
	// Partial BINARY works on the decoded content.
	c.expect("b4 FETCH 2 (BINARY.PEEK[2]<10.5>)", "* 2 FETCH (BINARY[2]<10> ~"+lit(data[10:15])+")", "b4 OK FETCH completed")
}
