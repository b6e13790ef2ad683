package pop3server_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// TestWholeServer runs POP3 inside the whole server (internal/server, as
// `postfach serve` does): mail delivered by LMTP is retrieved over pop3
// and pop3s, the config's [pop3] section applies, and one maildrop is
// in use across both listeners.
func TestWholeServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.POP3.Delete = "trash" }})
	env.AddUser("alice@example.org", "secret")
	deliverLMTP(t, env.Addr("lmtp"), "Subject: via lmtp\r\n\r\nHello.\r\n")

	c := dial(t, env.Addr("pop3"), false)
	c.cmd("USER alice@example.org", "+OK")
	c.cmd("PASS secret", "+OK Logged in, 1 message")
	s := dial(t, env.Addr("pop3s"), true)
	s.cmd("USER alice@example.org", "+OK")
	s.cmd("PASS secret", "-ERR [IN-USE] ")
	c.cmd("RETR 1", "+OK")
	for l := c.line(); l != "."; l = c.line() {
	}
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK Bye (1 message deleted)")
	if msgs := env.Messages("alice@example.org", "Trash"); len(msgs) != 1 || !strings.Contains(string(msgs[0]), "Subject: via lmtp") {
		t.Fatalf("Trash: %q (pop3.delete = trash)", msgs)
	}
	s.cmd("USER alice@example.org", "+OK")
	s.cmd("PASS secret", "+OK Logged in, 0 messages")
	s.cmd("QUIT", "+OK")
}

func deliverLMTP(t *testing.T, addr, msg string) {
	t.Helper()
	c := dial(t, addr, false)
	c.cmd("LHLO client.example", "250")
	for l := c.last; strings.HasPrefix(l, "250-"); l = c.line() {
	}
	c.cmd("MAIL FROM:<bob@example.net>", "250")
	c.cmd("RCPT TO:<alice@example.org>", "250")
	c.cmd("DATA", "354")
	c.cmd(msg+".", "250")
}

type conn struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	last string
}

func dial(t *testing.T, addr string, implicitTLS bool) *conn {
	t.Helper()
	var nc net.Conn
	var err error
	if implicitTLS {
		nc, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		nc, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(time.Minute))
	c := &conn{t: t, c: nc, r: bufio.NewReader(nc)}
	c.line()
	return c
}

func (c *conn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	c.last = strings.TrimSuffix(l, "\r\n")
	return c.last
}

func (c *conn) cmd(line, prefix string) {
	c.t.Helper()
	fmt.Fprintf(c.c, "%s\r\n", line)
	if l := c.line(); !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("%q: got %q, want %q", line, l, prefix)
	}
}

// TestDefaultDeleteKeepsMailForIMAP: with the default config
// (pop3.delete = "hide"), a POP3 client that deletes from the server takes
// nothing away from IMAP devices. Exactly:
//   - after a plain login DELEs message 1 and QUITs, IMAP still has both
//     messages in INBOX;
//   - plain logins (no #DEVICE) share one hidden set: a second device
//     logging in with the plain address no longer gets message 1 (it is
//     "deleted from the server" for POP3);
//   - a device view (ADDRESS#DEVICE) has its own hidden set: a new device
//     gets both messages, and what it deletes stays visible to other
//     devices, to plain logins and to IMAP.
func TestDefaultDeleteKeepsMailForIMAP(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "secret")
	deliverLMTP(t, env.Addr("lmtp"), "Subject: one\r\n\r\nFirst.\r\n")
	deliverLMTP(t, env.Addr("lmtp"), "Subject: two\r\n\r\nSecond.\r\n")

	pop := func(user, greeting string) *conn {
		c := dial(t, env.Addr("pop3"), false)
		c.cmd("USER "+user, "+OK")
		c.cmd("PASS secret", greeting)
		return c
	}
	c := pop("alice@example.org", "+OK Logged in, 2 messages")
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK Bye (1 message deleted)")

	imapCount := func() string {
		t.Helper()
		ic := dial(t, env.Addr("imap"), false)
		fmt.Fprintf(ic.c, "a LOGIN alice@example.org secret\r\nb SELECT INBOX\r\n")
		exists := ""
		for l := ic.line(); !strings.HasPrefix(l, "b "); l = ic.line() {
			if strings.HasSuffix(l, " EXISTS") {
				exists = l
			}
		}
		if !strings.HasPrefix(ic.last, "b OK") {
			t.Fatalf("SELECT: %q", ic.last)
		}
		ic.cmd("c LOGOUT", "* BYE")
		return exists
	}
	if got := imapCount(); got != "* 2 EXISTS" {
		t.Fatalf("IMAP after a POP3 DELE: %q, want * 2 EXISTS", got)
	}
	if n := len(env.Messages("alice@example.org", "INBOX")); n != 2 {
		t.Fatalf("INBOX has %d messages after a POP3 DELE, want 2", n)
	}

	// A second device with a plain login: message 1 is gone for it.
	c = pop("alice@example.org", "+OK Logged in, 1 message")
	c.cmd("RETR 1", "+OK")
	for l := c.line(); l != "."; l = c.line() {
		if strings.HasPrefix(l, "Subject: ") && l != "Subject: two" {
			t.Fatalf("second plain login got %q, want message two", l)
		}
	}
	c.cmd("QUIT", "+OK Bye")

	// A device view sees both and deletes message 2 for itself only.
	d := pop("alice@example.org#phone", "+OK Logged in, 2 messages")
	d.cmd("DELE 2", "+OK")
	d.cmd("QUIT", "+OK Bye (1 message deleted)")
	d = pop("alice@example.org#phone", "+OK Logged in, 1 message")
	d.cmd("QUIT", "+OK")
	d = pop("alice@example.org#tablet", "+OK Logged in, 2 messages")
	d.cmd("QUIT", "+OK")
	c = pop("alice@example.org", "+OK Logged in, 1 message")
	c.cmd("QUIT", "+OK")
	if got := imapCount(); got != "* 2 EXISTS" {
		t.Fatalf("IMAP after POP3 deletions: %q, want * 2 EXISTS", got)
	}
}
