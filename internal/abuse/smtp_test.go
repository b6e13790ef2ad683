package abuse

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// smtpClient is a raw SMTP/LMTP client for hostile transcripts.
type smtpClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func smtpDial(t *testing.T, env *testenv.Env, listener string) *smtpClient {
	t.Helper()
	c := env.Dial(listener)
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	s := &smtpClient{t: t, c: c, r: bufio.NewReader(c)}
	s.expect("220 ")
	return s
}

func (s *smtpClient) write(data string) {
	s.t.Helper()
	if _, err := io.WriteString(s.c, data); err != nil {
		s.t.Fatalf("write %q: %v", data, err)
	}
}

// expect reads one reply (the last line of a multi-line one) and checks
// its start.
func (s *smtpClient) expect(want string) string {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read reply: %v (want %q)", err, want)
		}
		if len(line) >= 4 && line[3] == '-' {
			continue
		}
		if !strings.HasPrefix(line, want) {
			s.t.Fatalf("got %q, want %q", line, want)
		}
		return line
	}
}

func (s *smtpClient) do(cmd, want string) string {
	s.t.Helper()
	s.write(cmd + "\r\n")
	return s.expect(want)
}

func (s *smtpClient) expectClosed() {
	s.t.Helper()
	if line, err := s.r.ReadString('\n'); err == nil {
		s.t.Fatalf("got %q, want the connection closed", line)
	}
}

// smtpHello greets with the verb the listener wants.
func (s *smtpClient) hello(listener string) {
	s.t.Helper()
	if listener == "lmtp" {
		s.do("LHLO attacker.example", "250 ")
	} else {
		s.do("EHLO attacker.example", "250 ")
	}
}

// TestSMTPUnknownRecipientProbing (issue 11, item 13): one connection
// used to get 20,000 "550 5.1.1" answers in under a second. Now the MX
// answers 20 unknown users per session (from the 6th on after a delay,
// here 1 ms from limits.smtp_unknown_recipient_delay so that the test
// does not wait 15 s), and the 21st, pipelined or not, gets 421 4.7.0 and
// the connection closes. RSET and known recipients do not reset the
// count. The server goes on serving, and LMTP (a trusted local MTA) is
// not limited.
func TestSMTPUnknownRecipientProbing(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Limits.SMTPUnknownRecipientDelay = config.Duration(time.Millisecond)
	}})
	env.AddUser("alice@example.org", "secret-password")

	// One unknown recipient at a time, with RSET and a known one between.
	c := smtpDial(t, env, "smtp")
	c.hello("smtp")
	c.do("MAIL FROM:<probe@attacker.example>", "250 ")
	for i := range 20 {
		if i == 10 {
			c.do("RSET", "250 ")
			c.do("MAIL FROM:<probe@attacker.example>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
		}
		c.do("RCPT TO:<guess"+strconv.Itoa(i)+"@example.org>", "550 5.1.1")
	}
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("RCPT TO:<guess20@example.org>", "421 4.7.0")
	c.expectClosed()

	// Pipelined, as the probe that got 20,000 answers: 21 RCPTs in one
	// write get 20 refusals and a 421.
	c = smtpDial(t, env, "smtp")
	c.hello("smtp")
	var b strings.Builder
	b.WriteString("MAIL FROM:<probe@attacker.example>\r\n")
	for i := range 21 {
		b.WriteString("RCPT TO:<pipelined" + strconv.Itoa(i) + "@example.org>\r\n")
	}
	c.write(b.String())
	c.expect("250 ")
	for range 20 {
		c.expect("550 5.1.1")
	}
	c.expect("421 4.7.0")
	c.expectClosed()

	// A quoted local part is no way around the count.
	c = smtpDial(t, env, "smtp")
	c.hello("smtp")
	c.do("MAIL FROM:<probe@attacker.example>", "250 ")
	for i := range 20 {
		c.do(`RCPT TO:<"guess `+strconv.Itoa(i)+`"@example.org>`, "550 5.1.1")
	}
	c.do(`RCPT TO:<"alice"@example.org>`, "250 ")
	c.do(`RCPT TO:<"guess 20"@example.org>`, "421 4.7.0")
	c.expectClosed()

	// LMTP is exempt: 50 unknown users, and the session goes on.
	l := smtpDial(t, env, "lmtp")
	l.hello("lmtp")
	l.do("MAIL FROM:<mta@example.org>", "250 ")
	for i := range 50 {
		l.do("RCPT TO:<nobody"+strconv.Itoa(i)+"@example.org>", "550 5.1.1")
	}
	l.do("RCPT TO:<alice@example.org>", "250 ")
	l.do("DATA", "354 ")
	l.write("Subject: after probing\r\n\r\nstill delivered\r\n.\r\n")
	l.expect("250 2.0.0 <alice@example.org>")

	// A new SMTP session is served, and delivers.
	c = smtpDial(t, env, "smtp")
	c.hello("smtp")
	c.do("MAIL FROM:<friend@remote.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.write("Subject: hello\r\n\r\nhi\r\n.\r\n")
	c.expect("250 2.0.0")
	c.do("QUIT", "221 ")
	if n := len(env.Messages("alice@example.org", "INBOX")); n != 2 {
		t.Errorf("%d messages in INBOX, want 2", n)
	}
	resp, err := http.Get("http://" + env.Addr("http") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `postfach_errors_total{kind="unknown_rcpt_limit",proto="smtp"} 3`) {
		t.Errorf("/metrics does not count the 3 sessions closed for probing")
	}
}

// TestSMTPSmuggling: only CRLF "." CRLF ends DATA (RFC 5321 §4.1.1.4),
// so an end-of-data line after a bare LF or before a bare LF or CR
// cannot smuggle a second transaction past an MTA in front that sees the
// message differently: the smuggled commands are message data, stored
// for the one recipient, and the client gets one reply. The same for
// LMTP and for BDAT, where a chunk's bytes are data whatever they hold.
func TestSMTPSmuggling(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "secret-password")
	env.AddUser("bob@example.org", "secret-password")
	smuggled := "MAIL FROM:<ceo@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\npay now\r\n"
	ends := []string{"\n.\r\n", "\r\n.\n", "\n.\n", "\r.\r\n", "\r\n.\r", "\r\n\x00.\r\n"}
	for _, listener := range []string{"smtp", "lmtp"} {
		c := smtpDial(t, env, listener)
		c.hello(listener)
		for _, end := range ends {
			c.do("MAIL FROM:<a@remote.example>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
			c.do("DATA", "354 ")
			c.write("Subject: carrier\r\n\r\nbody" + end + smuggled + ".\r\n")
			c.expect("250 2.0.0")
			// Nothing more is pending: the next reply is NOOP's.
			c.do("NOOP", "250 2.0.0 OK")
		}
		// BDAT: a chunk holding an end-of-data line and commands.
		chunk := "Subject: chunk\r\n\r\nbody\r\n.\r\n" + smuggled
		c.do("MAIL FROM:<a@remote.example>", "250 ")
		c.do("RCPT TO:<alice@example.org>", "250 ")
		c.write("BDAT " + strconv.Itoa(len(chunk)) + " LAST\r\n" + chunk)
		c.expect("250 2.0.0")
		c.do("NOOP", "250 2.0.0 OK")
		c.do("QUIT", "221 ")
	}
	if n := len(env.Messages("bob@example.org", "INBOX")); n != 0 {
		t.Fatalf("bob got %d smuggled messages", n)
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if want := 2 * (len(ends) + 1); len(msgs) != want {
		t.Fatalf("alice has %d messages, want %d", len(msgs), want)
	}
	for i, m := range msgs {
		if !strings.Contains(string(m), "RCPT TO:<bob@example.org>\r\n") || !strings.HasSuffix(string(m), "pay now\r\n") {
			t.Errorf("message %d does not carry the smuggled text as data: %q", i, m)
		}
		if strings.Contains(strings.ReplaceAll(string(m), "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(string(m), "\r\n", ""), "\r") {
			t.Errorf("message %d has a bare CR or LF: %q", i, m)
		}
	}
}

// TestSMTPDotLinesByteByByte: a message whose every line starts with a
// period, in LF-only and CRLF form, sent one byte per write, so that
// every line begins in a new read, is stored with each line's one
// stuffed period removed and CRLF line endings, as
// `postfach deliver`-style normalisation of the unstuffed text gives.
func TestSMTPDotLinesByteByByte(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "secret-password")
	lines := []string{".Subject: dots", "", ".", "..", ". x", ".\t", "...end"}
	var want strings.Builder
	for _, l := range lines {
		want.WriteString(l + "\r\n")
	}
	for _, eol := range []string{"\n", "\r\n"} {
		for _, listener := range []string{"smtp", "lmtp"} {
			c := smtpDial(t, env, listener)
			c.hello(listener)
			c.do("MAIL FROM:<a@remote.example>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
			c.do("DATA", "354 ")
			var wire strings.Builder
			for _, l := range lines {
				if strings.HasPrefix(l, ".") {
					l = "." + l // RFC 5321 §4.5.2
				}
				wire.WriteString(l + eol)
			}
			if eol == "\n" {
				wire.WriteString("\r\n") // the line ending before the terminator, as smtplib adds it
			}
			wire.WriteString(".\r\n")
			for _, b := range []byte(wire.String()) {
				c.write(string([]byte{b}))
			}
			c.expect("250 2.0.0")
			c.do("QUIT", "221 ")
		}
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 4 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, m := range msgs {
		w := want.String()
		if i < 2 {
			w += "\r\n" // the LF-only messages carry the CRLF the client added
		}
		if body := smtpStripTrace(string(m)); body != w {
			t.Errorf("message %d stored as %q, want %q", i, body, w)
		}
	}
}

// smtpStripTrace returns a stored message without the Return-Path: and
// Received: fields (with their continuation lines) that postfach adds.
func smtpStripTrace(m string) string {
	for strings.HasPrefix(m, "Return-Path:") || strings.HasPrefix(m, "Received:") || strings.HasPrefix(m, "\t") ||
		strings.HasPrefix(m, "Authentication-Results:") {
		_, rest, ok := strings.Cut(m, "\r\n")
		if !ok {
			return m
		}
		m = rest
	}
	return m
}
