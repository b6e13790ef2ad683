package bench

import (
	"context"
	"strings"
	"testing"
)

func TestSMTPData(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"a\nb", "a\r\nb\r\n.\r\n"},
		{".start\r\n..two\r\nmid.dle\r\n.\r\n", "..start\r\n...two\r\nmid.dle\r\n..\r\n.\r\n"},
		{"bare\rcr\r\n", "bare\r\ncr\r\n.\r\n"},
		{"", ".\r\n"},
	}
	for _, tt := range tests {
		if got := string(SMTPData([]byte(tt.in))); got != tt.want {
			t.Errorf("SMTPData(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseReplyLine(t *testing.T) {
	tests := []struct {
		in       string
		code     int
		more, ok bool
		text     string
	}{
		{"250-PIPELINING\r\n", 250, true, true, "PIPELINING"},
		{"250 OK\r\n", 250, false, true, "OK"},
		{"354\r\n", 354, false, true, ""},
		{"25x ok\r\n", 0, false, false, ""},
		{"250_ok\r\n", 0, false, false, ""},
		{"2\r\n", 0, false, false, ""},
	}
	for _, tt := range tests {
		code, more, text, ok := parseReplyLine([]byte(tt.in))
		if code != tt.code || more != tt.more || ok != tt.ok || string(text) != tt.text {
			t.Errorf("parseReplyLine(%q) = %d %v %q %v", tt.in, code, more, text, ok)
		}
	}
}

// lmtpScript answers one transaction with two recipients, the second
// refused; pipelined or not.
func lmtpScript(pipelining bool) func(s *scriptConn) {
	return func(s *scriptConn) {
		s.send("220 lmtp.test LMTP ready")
		s.expect("LHLO bench.localhost")
		if pipelining {
			s.send("250-lmtp.test", "250-PIPELINING", "250 8BITMIME")
		} else {
			s.send("250-lmtp.test", "250 8BITMIME")
		}
		s.expect("MAIL FROM:<s@x.test>")
		if !pipelining {
			s.send("250 ok")
		}
		s.expect("RCPT TO:<a@x.test>")
		if !pipelining {
			s.send("250 ok")
		}
		s.expect("RCPT TO:<nobody@x.test>")
		if !pipelining {
			s.send("550 5.1.1 no such user")
		}
		s.expect("DATA")
		if pipelining {
			s.send("250 ok", "250 ok", "550 5.1.1 no such user")
		}
		s.send("354 go")
		s.expect("Subject: t")
		s.expect("")
		s.expect("..dot")
		s.expect(".")
		s.send("250 2.0.0 <a@x.test> delivered")
		// A second transaction where every recipient is refused.
		s.expect("MAIL FROM:<s@x.test>")
		if !pipelining {
			s.send("250 ok")
		}
		s.expect("RCPT TO:<nobody@x.test>")
		if !pipelining {
			s.send("550 5.1.1 no such user")
		}
		s.expect("DATA")
		if pipelining {
			s.send("250 ok", "550 5.1.1 no such user")
		}
		s.send("554 5.5.1 no valid recipients")
		s.expect("RSET")
		s.send("250 ok")
		s.expect("QUIT")
		s.send("221 bye")
	}
}

func TestLMTPClientDeliver(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(map[bool]string{true: "pipelining", false: "lockstep"}[pipelining], func(t *testing.T) {
			addr := serveScript(t, lmtpScript(pipelining))
			c, err := DialLMTP(context.Background(), &Dialer{}, addr, "bench.localhost")
			if err != nil {
				t.Fatal(err)
			}
			if c.Pipelining() != pipelining {
				t.Fatalf("pipelining %v", c.Pipelining())
			}
			codes, err := c.Deliver("s@x.test", []string{"a@x.test", "nobody@x.test"}, SMTPData([]byte("Subject: t\n\n.dot\n")))
			if err != nil {
				t.Fatal(err)
			}
			if len(codes) != 2 || codes[0] != 250 || codes[1] != 550 {
				t.Fatalf("codes %v", codes)
			}
			codes, err = c.Deliver("s@x.test", []string{"nobody@x.test"}, SMTPData([]byte("x")))
			if err != nil {
				t.Fatal(err)
			}
			if len(codes) != 1 || codes[0] != 550 {
				t.Fatalf("codes %v", codes)
			}
			c.Close()
		})
	}
}

// TestSMTPClientDeliver: over SMTP the client sends EHLO and reads one
// reply after the data for all the accepted recipients.
func TestSMTPClientDeliver(t *testing.T) {
	addr := serveScript(t, func(s *scriptConn) {
		s.send("220 mx.test ESMTP ready")
		s.expect("EHLO mail.sender.test")
		s.send("250-mx.test", "250-PIPELINING", "250 8BITMIME")
		s.expect("MAIL FROM:<s@sender.test>")
		s.expect("RCPT TO:<a@x.test>")
		s.expect("RCPT TO:<b@x.test>")
		s.expect("DATA")
		s.send("250 ok", "250 ok", "250 ok", "354 go")
		s.expect("Subject: t")
		s.expect("")
		s.expect("body")
		s.expect(".")
		s.send("550 5.7.1 Message refused")
		s.expect("QUIT")
		s.send("221 bye")
	})
	c, err := DialSMTP(context.Background(), &Dialer{}, addr, "mail.sender.test")
	if err != nil {
		t.Fatal(err)
	}
	codes, err := c.Deliver("s@sender.test", []string{"a@x.test", "b@x.test"}, SMTPData([]byte("Subject: t\n\nbody\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 2 || codes[0] != 550 || codes[1] != 550 {
		t.Fatalf("codes %v, want the one reply for both", codes)
	}
	c.Close()
}

func TestPOP3Client(t *testing.T) {
	addr := serveScript(t, func(s *scriptConn) {
		s.send("+OK POP3 ready")
		s.expect("CAPA")
		s.send("+OK", "USER", "UIDL", "PIPELINING", ".")
		s.expect("USER u")
		s.send("+OK")
		s.expect("PASS p")
		s.send("+OK logged in")
		s.expect("LIST")
		s.send("+OK 2 messages", "1 20", "2 30", ".")
		s.expect("UIDL")
		s.send("+OK", "1 aaa", "2 bbb", ".")
		// Pipelined: both RETR arrive before the first answer.
		s.expect("RETR 1")
		s.expect("RETR 2")
		s.send("+OK", "Subject: one", "", "..stuffed", ".")
		s.send("+OK", "Subject: two", ".")
		s.expect("RETR 3")
		s.send("-ERR no such message")
		s.expect("QUIT")
		s.send("+OK bye")
	})
	c, err := DialPOP3(context.Background(), &Dialer{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Caps["PIPELINING"] || !c.Caps["UIDL"] {
		t.Fatalf("caps %v", c.Caps)
	}
	if err := c.Login("u", "p"); err != nil {
		t.Fatal(err)
	}
	n, b, err := retrieveAll(c, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("Subject: one\r\n\r\n..stuffed\r\nSubject: two\r\n")); n != 2 || b != want {
		t.Fatalf("retrieved %d messages, %d bytes; want 2, %d", n, b, want)
	}
	if _, err := c.MultiPipelined([]string{"RETR 3"}, 1); err == nil || !strings.Contains(err.Error(), "no such message") {
		t.Fatalf("want -ERR, got %v", err)
	}
	if ok, _, err := c.Cmd("QUIT"); !ok || err != nil {
		t.Fatalf("quit: %v %v", ok, err)
	}
}
