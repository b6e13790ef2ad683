package abuse

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/testenv"
)

// Helpers shared by the ops area's files (mailboxes_test.go,
// damage_test.go, disk_test.go).

// opsIMAP logs in over plain IMAP on loopback with go-imap v2's client.
func opsIMAP(t *testing.T, env *testenv.Env, user, password string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(env.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// opsCode returns the response code of a NO or BAD answer ("" for none or
// another error).
func opsCode(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

// opsMailboxes lists every mailbox name of the logged-in account.
func opsMailboxes(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	data, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range data {
		out = append(out, d.Mailbox)
	}
	return out
}

// opsConn is a line-oriented protocol connection for transcripts: IMAP
// commands are sent with a tag and answered up to the tagged line, POP3
// and SMTP commands by one line (or a multi-line answer up to ".").
type opsConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func opsDial(t *testing.T, env *testenv.Env, listener string) *opsConn {
	t.Helper()
	c := env.Dial(listener)
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	oc := &opsConn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
	oc.line() // greeting
	return oc
}

// line reads one line without its CRLF; a literal's bytes are read as
// lines too, which is enough for the checks made here.
func (c *opsConn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// imap sends "tag cmd" and returns every line up to and including the
// tagged one.
func (c *opsConn) imap(tag, cmd string) []string {
	c.t.Helper()
	fmt.Fprintf(c.c, "%s %s\r\n", tag, cmd)
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
}

// send writes a line and returns the one-line answer.
func (c *opsConn) send(cmd string) string {
	c.t.Helper()
	fmt.Fprintf(c.c, "%s\r\n", cmd)
	return c.line()
}

// multi reads a POP3 multi-line answer up to "." and returns it.
func (c *opsConn) multi() []string {
	c.t.Helper()
	var out []string
	for l := c.line(); l != "."; l = c.line() {
		out = append(out, l)
	}
	return out
}

// opsLMTP delivers raw (CRLF lines, no final dot) to the recipients by
// LMTP and returns the reply to DATA's end for each.
func opsLMTP(t *testing.T, env *testenv.Env, raw string, rcpts ...string) []string {
	t.Helper()
	c := opsDial(t, env, "lmtp")
	defer c.c.Close()
	if l := c.send("LHLO ops.test"); !strings.HasPrefix(l, "250") {
		t.Fatalf("LHLO: %q", l)
	}
	for l := c.line(); !strings.HasPrefix(l, "250 "); l = c.line() {
	}
	if l := c.send("MAIL FROM:<sender@example.net>"); !strings.HasPrefix(l, "250") {
		t.Fatalf("MAIL: %q", l)
	}
	for _, r := range rcpts {
		if l := c.send("RCPT TO:<" + r + ">"); !strings.HasPrefix(l, "250") {
			t.Fatalf("RCPT %s: %q", r, l)
		}
	}
	if l := c.send("DATA"); !strings.HasPrefix(l, "354") {
		t.Fatalf("DATA: %q", l)
	}
	io.WriteString(c.c, raw)
	var out []string
	out = append(out, c.send("."))
	for range rcpts[1:] {
		out = append(out, c.line())
	}
	return out
}

// opsDial0 connects to a listener without reading a greeting.
func opsDial0(t *testing.T, env *testenv.Env, listener string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", env.Addr(listener))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	return c
}
