package abuse

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
)

// Hostile and sloppy clients against the whole server, one class at a
// time (the outside tester's round after issues 11 and 12). The tests
// that found nothing stay as guards; TestHarden2POP3TopHugeCount and
// TestHarden2SMTPChunkBeyondAnyMessage found a defect each.

// harden2IMAP logs in to IMAP as alice and selects INBOX.
func harden2IMAP(t *testing.T, c *harden2Conn) {
	t.Helper()
	c.expect("* OK ")
	c.send(`a LOGIN alice@example.org "alice pw"`)
	c.expect("a OK ")
	c.send("s SELECT INBOX")
	c.expect("s OK ")
}

// tagged sends a command and returns its tagged response.
func (h *harden2Conn) tagged(tag, cmd string) string {
	h.t.Helper()
	h.write(tag + " " + cmd + "\r\n")
	for {
		l := h.line()
		if strings.HasPrefix(l, tag+" ") {
			return l
		}
	}
}

// TestHarden2IMAPHostileInput: pipelined floods, deep nesting, invalid
// UTF-8, odd IDLE endings, a 1 MB header line, a 10,000-part message and
// COMPRESS followed by garbage each get a clear answer (or, for the
// garbage, the end of that connection), and the server and the mailbox
// go on.
func TestHarden2IMAPHostileInput(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, nil)
	c := harden2Dial(t, env, "imap")
	harden2IMAP(t, c)

	// 5,000 commands in one write: every one answered, in order.
	var b strings.Builder
	for i := range 5000 {
		b.WriteString("t" + strconv.Itoa(i) + " NOOP\r\n")
	}
	c.write(b.String())
	for i := range 5000 {
		if l := c.expect("t"); l != "t"+strconv.Itoa(i)+" OK NOOP completed" {
			t.Fatalf("pipelined NOOP %d: %q", i, l)
		}
	}

	for _, tc := range []struct{ cmd, want string }{
		{"SEARCH " + strings.Repeat("(", 10000) + "ALL" + strings.Repeat(")", 10000), "BAD "},
		{"SEARCH " + strings.Repeat("OR ALL ", 5000) + "ALL", "BAD "},
		{"SEARCH " + strings.Repeat("NOT ", 20000) + "ALL", "BAD "},
		{"FETCH 1:* " + strings.Repeat("(", 1000) + "FLAGS" + strings.Repeat(")", 1000), "BAD "},
		{"FETCH 1 (BODY.PEEK[" + strings.Repeat("1.", 200) + "1])", "BAD "},
		{"FETCH 4294967296 FLAGS", "BAD "},
		{"CREATE \"a\xff\xfeb\"", "BAD "},
		{"SELECT \"\xc3\x28\"", "BAD "},
		{"SEARCH CHARSET UTF-8 SUBJECT \"\xff\xfe\"", "BAD "},
		{"CREATE " + strings.Repeat("a/", 200) + "x", "NO "},
		{"NOOP", "OK "},
	} {
		if l := c.tagged("x", tc.cmd); !strings.HasPrefix(l, "x "+tc.want) {
			t.Errorf("%.60q: %q, want %s", tc.cmd, l, tc.want)
		}
	}

	// IDLE: DONE in any case ends it (RFC 9051 §9: atoms are case-
	// insensitive); with stray blanks it is a BAD, and the session goes on.
	c.send("i1 IDLE")
	c.expect("+ ")
	c.send("done")
	c.expect("i1 OK ")
	c.send("i2 IDLE")
	c.expect("+ ")
	c.send(" DONE ")
	c.expect("i2 BAD ")
	if l := c.tagged("i3", "NOOP"); !strings.HasPrefix(l, "i3 OK ") {
		t.Fatalf("after IDLE: %q", l)
	}

	// A 1 MB header line, and a message of 10,000 parts.
	big := "Subject: big\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\nbody\r\n"
	var m strings.Builder
	m.WriteString("Subject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := range 10000 {
		m.WriteString("--x\r\nContent-Type: text/plain\r\n\r\npart " + strconv.Itoa(i+1) + "\r\n")
	}
	m.WriteString("--x--\r\n")
	for i, msg := range []string{big, m.String()} {
		if l := c.tagged("m"+strconv.Itoa(i), "APPEND INBOX {"+strconv.Itoa(len(msg))+"+}\r\n"+msg); !strings.Contains(l, " OK ") {
			t.Fatalf("APPEND %d: %q", i, l)
		}
	}
	c.send("f1 FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (X-BIG)]<0.12>)")
	if l, data := c.literalLine(); !strings.HasPrefix(l, `* 1 FETCH (ENVELOPE (NIL "big"`) || string(data) != "X-Big: aaaaa" {
		t.Fatalf("FETCH of the big header: %.200q", l)
	}
	c.expect("f1 OK ")
	// The parse describes at most 10,000 parts, the message one of
	// them (message.MaxParts): part 9,999 is the last.
	c.send("f2 FETCH 2 (BODYSTRUCTURE BODY.PEEK[9999])")
	l, data := c.literalLine()
	if !strings.HasPrefix(l, "* 2 FETCH (BODYSTRUCTURE ((") || string(data) != "part 9999" {
		t.Fatalf("FETCH of the 10,000 parts: %.200q ... %q ... %q", l, l[max(0, len(l)-300):], data)
	}
	c.expect("f2 OK ")

	// COMPRESS, then bytes that are no deflate stream: that connection
	// ends; the server and the mailbox do not notice.
	c.send("z COMPRESS DEFLATE")
	c.expect("z OK ")
	c.write("garbage\x00\xff\xfe\x01garbage\r\n")
	c.closed()
	d := harden2Dial(t, env, "imap")
	d.expect("* OK ")
	d.send(`a LOGIN alice@example.org "alice pw"`)
	d.expect("a OK ")
	d.send("b STATUS INBOX (MESSAGES)")
	d.expect("* STATUS INBOX (MESSAGES 2)")
	d.expect("b OK ")
}

// TestHarden2POP3TopHugeCount: RFC 1939 §7's TOP takes any non-negative
// number of lines; one too large to count gives the whole message, as
// one beyond its end does (before, a number of more than 10 digits got
// -ERR while 4294967296 got the message). Other bad numbers get -ERR and
// the session goes on.
func TestHarden2POP3TopHugeCount(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, nil)
	s := harden2SMTP(t, env, "lmtp")
	harden2Mail(s, "top")
	p := harden2POP3(t, env)
	for _, n := range []string{"99999999999999999999", "18446744073709551616", "4294967296"} {
		p.send("TOP 1 " + n)
		if l := p.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("TOP 1 %s: %q", n, l)
		}
		if lines := p.until("."); !strings.Contains(strings.Join(lines, "\n"), "\nbody\n.") {
			t.Fatalf("TOP 1 %s: %q", n, lines)
		}
	}
	for _, cmd := range []string{"TOP 1 -1", "TOP 1 1x", "TOP 99999999999 1", "RETR 0", "LIST 18446744073709551617"} {
		p.send(cmd)
		if l := p.line(); !strings.HasPrefix(l, "-ERR") {
			t.Fatalf("%s: %q", cmd, l)
		}
	}
	p.send("QUIT")
	p.expect("+OK")
}

// TestHarden2SMTPChunkBeyondAnyMessage: a BDAT chunk larger than any
// message the server takes is refused at once and the connection closes
// (552, then 421): the server does not read it (RFC 3030 §2 would have
// the chunk read before the answer, which a client could stretch over
// hours at a few bytes a second). A chunk the session refuses for
// another reason is read as usual if it could be a message. (Before,
// the server waited to read the whole declared size.)
func TestHarden2SMTPChunkBeyondAnyMessage(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, func(c *config.Config) { c.MaxMessageSize = 1 << 20 })
	for _, l := range []string{"smtp", "lmtp"} {
		c := harden2SMTP(t, env, l)
		_ = c.c.SetDeadline(time.Now().Add(20 * time.Second))
		c.send("MAIL FROM:<bob@example.net>")
		c.expect("250 ")
		c.send("RCPT TO:<alice@example.org>")
		c.expect("250 ")
		c.write("BDAT 99999999999999 LAST\r\nabc")
		got := c.closed()
		if len(got) != 2 || !strings.HasPrefix(got[0], "552 5.3.4 ") || !strings.HasPrefix(got[1], "421 4.7.0 ") {
			t.Fatalf("%s: huge chunk: %q", l, got)
		}

		// Without a transaction: 503, and the same for a chunk that
		// large.
		c = harden2SMTP(t, env, l)
		_ = c.c.SetDeadline(time.Now().Add(20 * time.Second))
		c.write("BDAT 10 LAST\r\n0123456789")
		c.expect("503 ")
		c.write("BDAT 99999999999 LAST\r\nabc")
		if got := c.closed(); len(got) != 2 || !strings.HasPrefix(got[0], "503 ") || !strings.HasPrefix(got[1], "421 4.7.0 ") {
			t.Fatalf("%s: huge chunk without MAIL: %q", l, got)
		}
	}
}

// TestHarden2SMTPHostileInput: a thousand recipients, empty chunks and
// message data with bare CRs get clear answers and the session goes on.
func TestHarden2SMTPHostileInput(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, nil)
	c := harden2SMTP(t, env, "smtp")
	c.send("MAIL FROM:<bob@example.net>")
	c.expect("250 ")
	var b strings.Builder
	for range 1001 {
		b.WriteString("RCPT TO:<alice@example.org>\r\n")
	}
	c.write(b.String())
	for i := range 1000 {
		if l := c.line(); !strings.HasPrefix(l, "250 ") {
			t.Fatalf("RCPT %d: %q", i+1, l)
		}
	}
	if l := c.line(); !strings.HasPrefix(l, "452 4.5.3 ") {
		t.Fatalf("RCPT 1001: %q", l)
	}
	c.send("RSET")
	c.expect("250 ")
	c.send("MAIL FROM:<bob@example.net>")
	c.expect("250 ")
	c.send("RCPT TO:<alice@example.org>")
	c.expect("250 ")
	c.send("BDAT 0")
	c.expect("250 ")
	c.send("BDAT 0 LAST")
	c.expect("554 5.6.0 ")
	c.send("MAIL FROM:<bob@example.net> SIZE=999999999999999999999")
	c.expect("501 ")
	c.send("NOOP")
	c.expect("250 ")
}

// TestHarden2POP3LineLimit: a POP3 command line is at most 8 KiB, CRLF
// included, before and after login, whatever its length beyond: lines
// up to a read buffer longer were accepted (only the pieces before the
// last were counted), so a USER of 9,000 characters got +OK.
func TestHarden2POP3LineLimit(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, nil)
	p := harden2Dial(t, env, "pop3")
	p.expect("+OK")
	for _, n := range []int{8193 - 7, 9000, 12000, 4096*3 - 7, 4096*2 + 1 - 7} {
		p.send("USER " + strings.Repeat("u", n)) // n+7 bytes with CRLF
		if l := p.line(); l != "-ERR Line too long" {
			t.Fatalf("USER line of %d bytes: %q", n+7, l)
		}
	}
	p.send("USER " + strings.Repeat("u", 8192-7)) // 8,192 bytes with CRLF
	p.expect("+OK")
	p.send("USER alice@example.org")
	p.expect("+OK")
	p.send("PASS alice pw")
	p.expect("+OK")
	p.send("LIST " + strings.Repeat("1", 9000))
	if l := p.line(); l != "-ERR Line too long" {
		t.Fatalf("after login: %q", l)
	}
	p.send("QUIT")
	p.expect("+OK")
}
