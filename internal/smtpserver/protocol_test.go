package smtpserver

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// write sends raw bytes in one write.
func (c *tc) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// expectAll reads one reply per prefix, in order.
func (c *tc) expectAll(wants ...string) {
	c.t.Helper()
	for _, w := range wants {
		c.expect(w)
	}
}

// countingListener counts the writes on every accepted connection, to
// see how the server groups its replies.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1) // before the write: the client may read before Write returns
	return c.Conn.Write(p)
}

// startCounting starts a server whose listener counts writes.
func startCounting(t *testing.T, fs *fakeStore, mod func(*Options)) (*testServer, *countingListener) {
	t.Helper()
	d := delivery.New(delivery.Options{Store: fs, Hostname: "mx.example.org", Domains: []string{"example.org"}, MaxMessageSize: 4096})
	opt := Options{LMTP: true, Deliverer: d, Hostname: "mx.example.org", MaxMessageSize: 4096, MaxRecipients: 100}
	if mod != nil {
		mod(&opt)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: raw}
	s := New(opt)
	ts := &testServer{addr: raw.Addr().String(), srv: s, store: fs, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() { ts.shutdown(t) })
	return ts, ln
}

// TestPipelining: RFC 2920. A group of commands in one write gets its
// replies in order, in one write.
func TestPipelining(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts, ln := startCounting(t, fs, nil)
	c := dialT(t, ts.addr)
	c.expect("220 ")
	caps := strings.Join(c.do("LHLO client.example", "250 "), "\n")
	if !strings.Contains(caps, "PIPELINING") {
		t.Fatalf("no PIPELINING in %q", caps)
	}
	before := ln.writes.Load()
	c.write("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<ghost@example.org>\r\nRCPT TO:<alice+x@example.org>\r\nDATA\r\n")
	c.expectAll("250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354 ")
	if n := ln.writes.Load() - before; n != 1 {
		t.Errorf("five replies in %d writes, want 1", n)
	}
	// The data, its end and the next transaction in one write.
	before = ln.writes.Load()
	c.write("Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
	c.expectAll("250 2.0.0 <alice@example.org>", "250 2.0.0 <alice+x@example.org>", "250 2.1.0", "250 2.1.5", "354 ")
	if n := ln.writes.Load() - before; n != 1 {
		t.Errorf("replies after the data in %d writes, want 1", n)
	}
	c.write("Subject: two\r\n\r\nsecond\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
	c.expectAll("250 2.0.0 <alice@example.org>", "250 2.0.0", "250 2.0.0", "221 2.0.0")
	c.expectClosed()
	msgs := fs.messages("alice@example.org")
	if len(msgs) != 2 || !strings.HasSuffix(string(msgs[0]), "\r\n\r\nfirst\r\n") || !strings.HasSuffix(string(msgs[1]), "\r\n\r\nsecond\r\n") {
		t.Errorf("stored: %q", msgs)
	}
}

// TestDataEdgeCases sends message data that tests the DATA reader over a
// real socket, and checks the stored bytes.
func TestDataEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		wire string // after 354, up to and including the end-of-data line
		body string // as stored, after the trace headers
	}{
		{"a line that is a single stuffed dot", "Subject: a\r\n\r\n..\r\nafter\r\n.\r\n", "Subject: a\r\n\r\n.\r\nafter\r\n"},
		{"stuffed dots", "Subject: b\r\n\r\n...x\r\n..y\r\n.\r\n", "Subject: b\r\n\r\n..x\r\n.y\r\n"},
		{"content without a final CRLF", "Subject: c\r\n\r\nno newline at the end\r\n.\r\n", "Subject: c\r\n\r\nno newline at the end\r\n"},
		{"bare LF inside the data", "Subject: d\n\nline\nstill data\n.\nmore\r\n.\r\n", "Subject: d\r\n\r\nline\r\nstill data\r\n\r\nmore\r\n"},
		{"stuffed dots after bare LF", "Subject: d2\n\n..one\n..two\n...\n\r\n.\r\n", "Subject: d2\r\n\r\n.one\r\n.two\r\n..\r\n\r\n"},
		{"smuggled terminators are data", "Subject: d3\r\n\r\na\n.\r\nMAIL FROM:<x@y>\r\n.\nRCPT TO:<b@c>\r\n.\r\n", "Subject: d3\r\n\r\na\r\n\r\nMAIL FROM:<x@y>\r\n\r\nRCPT TO:<b@c>\r\n"},
		{"bare CR becomes CRLF, its dot is kept", "Subject: d4\r\n\r\na\r.b\r\n.\r\n", "Subject: d4\r\n\r\na\r\n.b\r\n"},
		{"terminator in three writes", "Subject: e\r\n\r\nbody\r\n|.|\r\n", "Subject: e\r\n\r\nbody\r\n"},
		{"the first line of the data stuffed", ".Subject: f\r\n.\r\n", "Subject: f\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeStore("alice@example.org")
			ts := startServer(t, fs, func(o *Options) { o.LMTP = false })
			c := dialT(t, ts.addr)
			c.expect("220 ")
			c.do("EHLO x", "250 ")
			c.do("MAIL FROM:<s@remote.example>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
			c.do("DATA", "354 ")
			for _, part := range strings.Split(tt.wire, "|") {
				c.write(part)
				time.Sleep(10 * time.Millisecond) // separate segments; correctness does not depend on it
			}
			c.expect("250 2.0.0")
			c.do("NOOP", "250 ")
			msgs := fs.messages("alice@example.org")
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			_, body, _ := strings.Cut(string(msgs[0]), "+0000\r\n")
			if !strings.HasSuffix(string(msgs[0]), "\r\n"+tt.body) || !strings.HasPrefix(string(msgs[0]), "Return-Path: ") {
				t.Errorf("stored %q, want it to end in %q", body, tt.body)
			}
		})
	}
}

// TestSizeLimit: a message of exactly the limit is accepted, one byte
// more is refused with 552 5.3.4 (RFC 1870 §6.3), in DATA and in BDAT.
func TestSizeLimit(t *testing.T) {
	const limit = 4096
	body := func(n int) string {
		line := strings.Repeat("s", 62) + "\r\n" // 64 bytes
		b := "Subject: size\r\n\r\n"
		for len(b)+len(line) <= n {
			b += line
		}
		for len(b) < n-2 {
			b += "t"
		}
		return b + "\r\n"
	}
	for _, tt := range []struct {
		name string
		size int
		want string
	}{
		{"exactly the limit", limit, "250 2.0.0"},
		{"one byte over", limit + 1, "552 5.3.4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := body(tt.size)
			if len(b) != tt.size {
				t.Fatalf("test body has %d bytes", len(b))
			}
			fs := newFakeStore("alice@example.org")
			ts := startServer(t, fs, func(o *Options) { o.LMTP = false })
			c := dialT(t, ts.addr)
			c.expect("220 ")
			c.do("EHLO x", "250 ")
			c.do("MAIL FROM:<s@remote.example> SIZE="+itoa(tt.size), map[bool]string{true: "250 ", false: "552 5.3.4"}[tt.size <= limit])
			c.do("RSET", "250 ")
			c.do("MAIL FROM:<s@remote.example>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
			c.do("DATA", "354 ")
			c.write(b + ".\r\n")
			c.expect(tt.want)
			c.do("MAIL FROM:<s@remote.example>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
			c.write("BDAT " + itoa(tt.size) + " LAST\r\n" + b)
			c.expect(tt.want)
			c.do("NOOP", "250 ")
			want := 0
			if tt.size <= limit {
				want = 2
			}
			if n := len(fs.messages("alice@example.org")); n != want {
				t.Errorf("%d messages stored, want %d", n, want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLongLines: RFC 5321 §4.5.3.1.4. A command line over 512 octets,
// plus the 52 the MAIL parameters may add (RFC 1870 §3, RFC 6152 §3,
// RFC 6531 §3.4), is refused with 500 5.5.2 and the session goes on; a
// huge one is read through without being held.
func TestLongLines(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, nil)
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("NOOP "+strings.Repeat("x", 564-len("NOOP \r\n")), "250 ")
	c.do("NOOP "+strings.Repeat("x", 565-len("NOOP \r\n")), "500 5.5.2")
	c.do("LHLO "+strings.Repeat("h", 300<<10), "500 5.5.2")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
}

// TestBadCommands: unknown (500 5.5.1), out of sequence (503 5.5.1),
// malformed (501 5.5.4), and the end of patience (421).
func TestBadCommands(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false; o.MaxBadCommands = 9 })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("FROBNICATE", "500 5.5.1")
	c.do("MAIL FROM:<a@b.example>", "503 5.5.1") // no EHLO yet
	c.do("EHLO", "501 5.5.4")
	c.do("EHLO client.example", "250 ")
	c.do("RCPT TO:<alice@example.org>", "503 5.5.1") // no MAIL
	c.do("DATA", "503 5.5.1")
	c.do("MAIL FROM:a@b.example>", "501 5.5.4")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("MAIL FROM:<a@b.example>", "503 5.5.1") // nested
	c.do("EXPN staff", "502 5.5.1")
	c.do("NOOP", "250 ") // good commands do not count
	c.do("RSET", "250 ")
	c.do("LHLO x", "500 5.5.1") // the ninth bad command
	c.expect("421 4.7.0")
	c.expectClosed()
}

func TestSMTPCommands(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false })
	c := dialT(t, ts.addr)
	c.expect("220 mx.example.org ESMTP")
	c.do("HELO client.example", "250 mx.example.org")
	caps := c.do("EHLO client.example", "250 ")
	want := []string{"250-mx.example.org", "250-PIPELINING", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250-SMTPUTF8", "250-SIZE 4096", "250 LIMITS RCPTMAX=100"}
	if strings.Join(caps, "\n") != strings.Join(want, "\n") {
		t.Errorf("EHLO:\n%s\nwant\n%s", strings.Join(caps, "\n"), strings.Join(want, "\n"))
	}
	c.do("LHLO client.example", "500 5.5.1")
	c.do("VRFY alice", "252 2.5.0")
	c.do("VRFY", "501 5.5.4")
	c.do("HELP", "214 2.0.0")
	c.do("STARTTLS", "502 5.5.1") // no TLS configured
	c.do("MAIL FROM:<a@b.example> BODY=BINARYMIME", "555 5.5.4")
	c.do("MAIL FROM:<a@b.example> X-UNKNOWN=1", "555 5.5.4")
	c.do("MAIL FROM:<a@b.example> SIZE=big", "501 5.5.4")
	c.do("MAIL FROM:<a@b.example> SIZE=123456789012345678901", "501 5.5.4") // over 1*20DIGIT
	c.do("MAIL FROM:<a@b.example> SMTPUTF8=yes", "501 5.5.4")
	c.do("MAIL FROM:<not an address>", "501 5.1.7")
	c.do("MAIL FROM:<@relay.example:Grüße@b.example> BODY=8BITMIME SMTPUTF8 SIZE=4096", "250 2.1.0")
	c.do("RCPT TO:<alice@example.org> NOTIFY=NEVER", "555 5.5.4")
	c.do("RCPT TO:<>", "501 5.1.3")
	c.do("RCPT TO:<ghost@example.org>", "550 5.1.1")
	c.do("DATA", "554 5.5.1") // every RCPT failed: RFC 2920 §3.1
	c.do("RCPT TO:<Alice@Example.org>", "250 2.1.5")
	c.do("DATA now", "501 5.5.4")
	c.do("DATA", "354 ")
	c.write("Subject: utf8\r\n\r\nGrüße\r\n.\r\n")
	c.expect("250 2.0.0")
	c.do("RSET", "250 2.0.0")
	c.do("QUIT", "221 2.0.0")
	c.expectClosed()
	if msgs := fs.messages("alice@example.org"); len(msgs) != 1 || !strings.HasPrefix(string(msgs[0]), "Return-Path: <Grüße@b.example>\r\n") ||
		!strings.Contains(string(msgs[0]), " with UTF8SMTP id ") { // RFC 6531 §3.7.3
		t.Errorf("stored %q", msgs)
	}
}

func TestBDAT(t *testing.T) {
	t.Run("smtp", func(t *testing.T) {
		fs := newFakeStore("alice@example.org")
		ts := startServer(t, fs, func(o *Options) { o.LMTP = false })
		c := dialT(t, ts.addr)
		c.expect("220 ")
		c.do("EHLO x", "250 ")
		// RFC 3030 §4.2: chunks are not unstuffed and "." ends nothing.
		first := "Subject: chunks\r\n\r\n.\r\n"
		second := "..x\r\nQUIT\r\n"
		c.write("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nBDAT " + itoa(len(first)) + "\r\n" + first +
			"BDAT " + itoa(len(second)) + "\r\n" + second + "BDAT 0 LAST\r\n")
		c.expectAll("250 2.1.0", "250 2.1.5", "250 2.0.0 "+itoa(len(first))+" octets", "250 2.0.0 "+itoa(len(second))+" octets", "250 2.0.0 Message accepted")
		c.do("NOOP", "250 ")
		msgs := fs.messages("alice@example.org")
		if len(msgs) != 1 || !strings.HasSuffix(string(msgs[0]), "\r\n"+first+second) {
			t.Fatalf("stored %q", msgs)
		}
	})
	t.Run("lmtp per-recipient replies", func(t *testing.T) {
		fs := newFakeStore("alice@example.org", "bob@example.org")
		fs.failFor["bob@example.org"] = io.ErrUnexpectedEOF
		ts := startServer(t, fs, nil)
		c := dialT(t, ts.addr)
		c.expect("220 ")
		caps := strings.Join(c.do("LHLO x", "250 "), "\n")
		if !strings.Contains(caps, "CHUNKING") {
			t.Fatalf("no CHUNKING: %q", caps)
		}
		msg := "Subject: b\r\n\r\nbody\r\n"
		c.write("MAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nBDAT " + itoa(len(msg)) + " LAST\r\n" + msg)
		c.expectAll("250 ", "250 ", "250 ", "250 2.0.0 <alice@example.org>", "451 4.3.0 <bob@example.org>")
	})
	t.Run("refused chunks are read", func(t *testing.T) {
		fs := newFakeStore("alice@example.org")
		ts := startServer(t, fs, nil)
		c := dialT(t, ts.addr)
		c.expect("220 ")
		c.do("LHLO x", "250 ")
		// No transaction: the chunk (which looks like commands) is
		// skipped, not run.
		c.write("BDAT 6\r\nQUIT\r\n")
		c.expect("503 5.5.1")
		c.do("MAIL FROM:<a@b.example>", "250 ")
		c.do("RCPT TO:<alice@example.org>", "250 ")
		big := strings.Repeat("b", 5000)
		c.write("BDAT 5000\r\n" + big + "BDAT 3 LAST\r\nNO\n")
		c.expectAll("552 5.3.4", "503 5.5.1")
		c.do("NOOP", "250 ")
		if n := len(fs.messages("alice@example.org")); n != 0 {
			t.Errorf("%d messages stored", n)
		}
		if fs.maxRead > 4096+1024 {
			t.Errorf("store read %d bytes of an oversized message", fs.maxRead)
		}
	})
	t.Run("interrupted by another command", func(t *testing.T) {
		fs := newFakeStore("alice@example.org")
		ts := startServer(t, fs, nil)
		c := dialT(t, ts.addr)
		c.expect("220 ")
		c.do("LHLO x", "250 ")
		c.write("MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nBDAT 3\r\nabcRSET\r\n")
		c.expectAll("250 ", "250 ", "250 2.0.0 3 octets", "250 2.0.0")
		c.do("RCPT TO:<alice@example.org>", "503 5.5.1") // RSET ended the transaction
		c.write("MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nBDAT 2\r\nabDATA\r\n")
		c.expectAll("250 ", "250 ", "250 2.0.0 2 octets", "503 5.5.1") // DATA after BDAT: RFC 3030 §2
		c.do("NOOP", "250 ")
		if n := len(fs.messages("alice@example.org")); n != 0 {
			t.Errorf("%d messages stored", n)
		}
	})
	t.Run("bad size ends the session", func(t *testing.T) {
		fs := newFakeStore("alice@example.org")
		ts := startServer(t, fs, nil)
		c := dialT(t, ts.addr)
		c.expect("220 ")
		c.do("LHLO x", "250 ")
		c.do("BDAT many", "501 5.5.4")
		c.expect("421 4.5.0") // RFC 5321 §3.8
		c.expectClosed()
	})
	t.Run("pipelined chunks after a refusal are not bad commands", func(t *testing.T) {
		fs := newFakeStore("alice@example.org")
		ts := startServer(t, fs, func(o *Options) { o.MaxBadCommands = 3 })
		c := dialT(t, ts.addr)
		c.expect("220 ")
		c.do("LHLO x", "250 ")
		big := strings.Repeat("b", 5000)
		cmds := "MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nBDAT 5000\r\n" + big
		want := []string{"250 ", "250 ", "552 5.3.4"}
		for range 5 {
			cmds += "BDAT 4\r\nmore"
			want = append(want, "503 5.5.1")
		}
		c.write(cmds + "BDAT 2 LAST\r\nok")
		c.expectAll(append(want, "503 5.5.1")...)
		c.do("NOOP", "250 ")
		// A BDAT out of any transaction after a success still counts.
		c.do("MAIL FROM:<a@b.example>", "250 ")
		c.do("RCPT TO:<alice@example.org>", "250 ")
		c.write("BDAT 8 LAST\r\nSubject:")
		c.expectAll("250 2.0.0 <alice@example.org>")
		for range 2 {
			c.write("BDAT 1\r\nx")
			c.expect("503 5.5.1")
		}
		c.write("BDAT 1\r\nx")
		c.expectAll("503 5.5.1", "421 ")
		c.expectClosed()
	})
}

// TestLMTPNoValidRecipients: RFC 2033 §4.2. In LMTP, DATA (and BDAT)
// after every RCPT failed gets 503 (SMTP's 554 is for SMTP only), and a
// SIZE of 19 or 20 digits (RFC 1870 §3: 1*20DIGIT) is over the limit,
// not a syntax error.
func TestLMTPNoValidRecipients(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, nil)
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example> SIZE=99999999999999999999", "552 5.3.4")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("RCPT TO:<ghost@example.org>", "550 5.1.1")
	c.do("DATA", "503 5.5.1")
	c.write("BDAT 1 LAST\r\nx")
	c.expect("503 5.5.1")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.write("Subject: x\r\n\r\nx\r\n.\r\n")
	c.expect("250 2.0.0 <alice@example.org>")
	// The Received: keyword follows SMTPUTF8 (RFC 6531 §3.7.3).
	c.do("MAIL FROM:<a@b.example> SMTPUTF8", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.write("Subject: y\r\n\r\ny\r\n.\r\n")
	c.expect("250 2.0.0 <alice@example.org>")
	msgs := fs.messages("alice@example.org")
	if len(msgs) != 2 || !strings.Contains(string(msgs[0]), " with LMTP id ") || !strings.Contains(string(msgs[1]), " with UTF8LMTP id ") {
		t.Errorf("stored %q", msgs)
	}
}

// TestSMTPAllOrNothing: SMTP has one reply for the whole message
// (RFC 5321 §4.2.5), so a message is delivered to every recipient or to
// none. The reply is the failing recipient's; a permanent one becomes 451
// when it held the others back, so that the client retries and each
// recipient gets its own answer at RCPT.
func TestSMTPAllOrNothing(t *testing.T) {
	fs := newFakeStore("alice@example.org", "bob@example.org")
	fs.failFor["bob@example.org"] = delivery.ErrUnknownUser // say, deleted after RCPT
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("EHLO x", "250 ")
	send := func(want string, rcpts ...string) {
		t.Helper()
		c.do("MAIL FROM:<s@remote.example>", "250 ")
		for _, r := range rcpts {
			c.do("RCPT TO:<"+r+">", "250 ")
		}
		c.do("DATA", "354 ")
		c.write("Subject: x\r\n\r\nx\r\n.\r\n")
		c.expect(want)
	}
	send("451 4.3.0 Delivery to another recipient failed", "alice@example.org", "bob@example.org")
	if n := len(fs.messages("alice@example.org")); n != 0 {
		t.Fatalf("alice has %d messages after a refused message", n)
	}
	send("550 5.1.1 ", "bob@example.org")
	send("250 2.0.0 Message accepted", "alice@example.org")
	fs.mu.Lock()
	fs.failFor["bob@example.org"] = store.ErrDiskFull
	fs.mu.Unlock()
	send("452 4.3.1 ", "alice@example.org", "bob@example.org")
	if n := len(fs.messages("alice@example.org")); n != 1 {
		t.Fatalf("alice has %d messages, want 1", n)
	}
}

// TestStartTLSPipelining: RFC 3207 §4.2. Commands sent with STARTTLS
// before the handshake are dropped, and the session starts over.
func TestStartTLSPipelining(t *testing.T) {
	cfg, err := netserve.TLSConfig("", "", t.TempDir(), "mx.example.org")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false; o.TLSConfig = cfg })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("EHLO client", "250 ")
	c.write("STARTTLS\r\nEHLO evil\r\nMAIL FROM:<injected@evil.example>\r\n")
	c.expect("220 2.0.0")
	if n := c.r.Buffered(); n != 0 {
		t.Fatalf("%d bytes after the STARTTLS reply", n)
	}
	tlsConn := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tlsConn.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = &tc{t: t, c: tlsConn, r: bufio.NewReader(tlsConn)}
	// The EHLO before TLS is forgotten too.
	c.do("MAIL FROM:<s@r.example>", "503 5.5.1")
	caps := strings.Join(c.do("EHLO client", "250 "), "\n")
	if strings.Contains(caps, "STARTTLS") {
		t.Errorf("STARTTLS offered inside TLS: %q", caps)
	}
	c.do("STARTTLS", "503 5.5.1")
	// Had the injected MAIL been run, this would be a nested MAIL.
	c.do("MAIL FROM:<s@r.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.write("Subject: tls\r\n\r\nx\r\n.\r\n")
	c.expect("250 ")
	msgs := fs.messages("alice@example.org")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "Return-Path: <s@r.example>") || !strings.Contains(string(msgs[0]), "with ESMTPS") {
		t.Errorf("stored %q", msgs)
	}
}

func TestLMTPNoStartTLS(t *testing.T) {
	cfg, err := netserve.TLSConfig("", "", t.TempDir(), "mx.example.org")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, newFakeStore("alice@example.org"), func(o *Options) { o.TLSConfig = cfg })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	if caps := strings.Join(c.do("LHLO x", "250 "), "\n"); strings.Contains(caps, "STARTTLS") {
		t.Errorf("LMTP offers STARTTLS: %q", caps)
	}
	c.do("STARTTLS", "502 5.5.1")
}

// TestDataTimeout: RFC 5321 §4.5.3.2.5. A client that stops in the
// middle of the data gets 421 and nothing is stored.
func TestDataTimeout(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.DataTimeout = 200 * time.Millisecond })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.write("Subject: stalled\r\n\r\nhalf a mess")
	c.expect("421 4.4.2")
	c.expectClosed()
	if n := len(fs.messages("alice@example.org")); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// TestClientGoneDuringData: a connection closed in the middle of the data
// stores nothing and gets no reply.
func TestClientGoneDuringData(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, nil)
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.write("Subject: cut\r\n\r\nhalf\r\n")
	c.c.Close()
	ts.shutdown(t) // waits for the session to end
	if n := len(fs.messages("alice@example.org")); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}
