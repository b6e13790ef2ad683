package smtpserver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

// quotaConn is an SMTP or LMTP client for the quota test.
type quotaConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func quotaDial(t *testing.T, e *testenv.Env, proto string) *quotaConn {
	t.Helper()
	c := &quotaConn{t: t, c: e.Dial(proto)}
	c.c.SetDeadline(time.Now().Add(time.Minute))
	c.r = bufio.NewReader(c.c)
	c.expect("220 ")
	hello := "EHLO client.example"
	if proto == "lmtp" {
		hello = "LHLO client.example"
	}
	c.do(hello, "250 ")
	return c
}

func (c *quotaConn) expect(want string) {
	c.t.Helper()
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if len(l) >= 4 && l[3] == '-' {
			continue
		}
		if !strings.HasPrefix(l, want) {
			c.t.Fatalf("got %q, want %q", l, want)
		}
		return
	}
}

func (c *quotaConn) do(cmd, want string) {
	c.t.Helper()
	fmt.Fprintf(c.c, "%s\r\n", cmd)
	c.expect(want)
}

// quotaBody is message data of about n octets, dot-terminated.
func quotaBody(subject string, n int) string {
	return "Subject: " + subject + "\r\n\r\n" + strings.Repeat("m", n) + "\r\n."
}

func quotaUsage(t *testing.T, e *testenv.Env, name string) *store.Usage {
	t.Helper()
	a, err := e.Store().Account(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.Store().Usage(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestQuotaWholeServer: limits.quota over the SMTP and LMTP listeners of
// the whole server, on the real store: 452 4.2.2 at RCPT for a full
// mailbox or one the SIZE= would fill, 552 5.2.2 for a message larger
// than the quota, a recipient under its quota taking a message that
// takes it over (without holding the others back), LMTP answering per
// recipient, and the usage exact throughout.
func TestQuotaWholeServer(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Limits.Quota = 4096 }})
	alice := "alice@" + testenv.Domain
	e.AddUser(alice, "secret password")
	bob := e.AddUser("bob@"+testenv.Domain, "secret password")
	e.AddUser("carol@"+testenv.Domain, "secret password")
	// Bob has no limit of his own.
	if err := e.Store().SetQuota(context.Background(), bob.ID, store.Quota{Bytes: 0, Messages: store.QuotaDefault}); err != nil {
		t.Fatal(err)
	}

	s := quotaDial(t, e, "smtp")
	s.do("MAIL FROM:<sender@remote.example>", "250 ")
	s.do("RCPT TO:<"+alice+">", "250 ")
	s.do("DATA", "354 ")
	s.do(quotaBody("first", 3000), "250 ")
	used := quotaUsage(t, e, alice).Bytes
	if used < 3000 || used+1500 <= 4096 || used >= 4096 {
		t.Fatalf("alice uses %d bytes after the first message", used)
	}

	// The announced size would take alice over: 452 for her, bob goes on.
	s.do("MAIL FROM:<sender@remote.example> SIZE=1500", "250 ")
	s.do("RCPT TO:<"+alice+">", "452 4.2.2 ")
	s.do("RCPT TO:<bob@"+testenv.Domain+">", "250 ")
	s.do("DATA", "354 ")
	s.do(quotaBody("announced", 1400), "250 ")

	// Without SIZE=, alice is under her quota: she takes a message that
	// takes her over, and so does bob, with the one reply.
	s.do("MAIL FROM:<sender@remote.example>", "250 ")
	s.do("RCPT TO:<"+alice+">", "250 ")
	s.do("RCPT TO:<bob@"+testenv.Domain+">", "250 ")
	s.do("DATA", "354 ")
	s.do(quotaBody("over by one", 2000), "250 2.0.0")
	if u := quotaUsage(t, e, alice); u.Bytes <= 4096 || u.Messages != 2 {
		t.Fatalf("alice after the message that took her over: %+v", u)
	}
	if n := len(e.Messages("bob@"+testenv.Domain, "INBOX")); n != 2 {
		t.Fatalf("bob has %d messages, want 2", n)
	}

	// Over the quota: 452 at once; a message larger than the quota: 552.
	s.do("MAIL FROM:<sender@remote.example>", "250 ")
	s.do("RCPT TO:<"+alice+">", "452 4.2.2 ")
	s.do("RSET", "250 ")
	s.do("MAIL FROM:<sender@remote.example> SIZE=5000", "250 ")
	s.do("RCPT TO:<carol@"+testenv.Domain+">", "552 5.2.2 ")
	s.do("RCPT TO:<bob@"+testenv.Domain+">", "250 ")
	s.do("QUIT", "221 ")

	// LMTP: per recipient, at RCPT for the full one, after DATA for the
	// others.
	l := quotaDial(t, e, "lmtp")
	l.do("MAIL FROM:<sender@remote.example>", "250 ")
	l.do("RCPT TO:<"+alice+">", "452 4.2.2 ")
	l.do("RCPT TO:<bob@"+testenv.Domain+">", "250 ")
	l.do("RCPT TO:<carol@"+testenv.Domain+">", "250 ")
	l.do("DATA", "354 ")
	l.do(quotaBody("lmtp", 100), "250 2.0.0 <bob@")
	l.expect("250 2.0.0 <carol@")
	// BDAT with SIZE=.
	l.do("MAIL FROM:<sender@remote.example> SIZE=3000", "250 ")
	l.do("RCPT TO:<carol@"+testenv.Domain+">", "250 ")
	body := "Subject: bdat\r\n\r\n" + strings.Repeat("b", 2900) + "\r\n"
	fmt.Fprintf(l.c, "BDAT %d LAST\r\n%s", len(body), body)
	l.expect("250 2.0.0 <carol@")
	l.do("MAIL FROM:<sender@remote.example> SIZE=2000", "250 ")
	l.do("RCPT TO:<carol@"+testenv.Domain+">", "452 4.2.2 ")
	l.do("QUIT", "221 ")

	if u := quotaUsage(t, e, alice); u.Messages != 2 {
		t.Fatalf("alice: %+v", u)
	}
	if probs, err := e.Store().Check(context.Background()); err != nil || len(probs) != 0 {
		t.Fatalf("check: %+v %v", probs, err)
	}
}
