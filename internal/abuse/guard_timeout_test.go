package abuse

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// Issue 11, item 7: slow clients must not hold a slot. A session must log
// in within limits.login_timeout, in total; only complete lines restart
// an idle timer, never single bytes.

// guardTrickle writes data to c one byte every interval, over and over,
// until the write fails (the server closed) or the test ends.
func guardTrickle(t *testing.T, c *guardConn, data string, interval time.Duration) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := c.c.Write([]byte{data[i%len(data)]}); err != nil {
				return
			}
		}
	}()
}

// guardShortTimeouts sets the timeouts this file tests to a few seconds
// (the idle timeouts of sessions that must survive stay long).
func guardShortTimeouts(c *config.Config) {
	c.Limits.LoginTimeout = config.Duration(time.Second)
	c.Limits.SMTPCommandTimeout = config.Duration(2 * time.Second)
	c.Limits.SMTPDataTimeout = config.Duration(2 * time.Second)
}

// guardUntilBye reads IMAP lines until the BYE and the end of the
// connection, and returns the BYE.
func guardUntilBye(t *testing.T, c *guardConn) string {
	t.Helper()
	for {
		l := c.line()
		if strings.HasPrefix(l, "* BYE ") {
			c.expectClosed()
			return l
		}
	}
}

// TestGuardIMAPLoginTimeout: clients that do not log in are cut off at
// the login timeout whatever they send meanwhile (complete NOOPs a byte at
// a time, a line that never ends, nothing); a client that logs in stays.
func TestGuardIMAPLoginTimeout(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(guardShortTimeouts))
	guardUser(t, env, "alice@example.org", "alice pw")

	ok := guardIMAP(t, env, "127.0.0.1")
	if l := guardLogin(ok, "a", "alice@example.org", "alice pw"); !strings.HasPrefix(l, "a OK ") {
		t.Fatal(l)
	}
	noops := guardIMAP(t, env, "127.0.0.2")
	guardTrickle(t, noops, "n NOOP\r\n", 20*time.Millisecond)
	partial := guardIMAP(t, env, "127.0.0.3")
	partial.write("p LOGIN alice@example.org ")
	guardTrickle(t, partial, "x", 100*time.Millisecond)
	silent := guardIMAP(t, env, "127.0.0.4")

	for name, c := range map[string]*guardConn{"NOOP trickle": noops, "partial line": partial, "silent": silent} {
		if l := guardUntilBye(t, c); l != "* BYE Login timeout, closing connection" {
			t.Errorf("%s: %q", name, l)
		}
	}
	// Past the login timeout, the logged-in session goes on.
	ok.send("b NOOP")
	ok.expect("b OK ")
}

// TestGuardIMAPIdleTrickle: after login, a command trickled a byte at a
// time is cut off at the idle timeout, while an APPEND whose literal
// arrives slowly but steadily (longer in all than the idle timeout) is
// not.
func TestGuardIMAPIdleTrickle(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(func(c *config.Config) {
		c.Limits.IMAPIdleTimeout = config.Duration(3 * time.Second)
	}))
	guardUser(t, env, "alice@example.org", "alice pw")

	trickle := guardIMAP(t, env, "127.0.0.1")
	guardLogin(trickle, "a", "alice@example.org", "alice pw")
	trickle.write("b SELECT ")
	guardTrickle(t, trickle, "I", 100*time.Millisecond)
	if l := guardUntilBye(t, trickle); l != "* BYE Idle timeout, closing connection" {
		t.Fatalf("trickle after login: %q", l)
	}

	up := guardIMAP(t, env, "127.0.0.1")
	guardLogin(up, "a", "alice@example.org", "alice pw")
	body := "Subject: slow\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 6000)
	up.write("b APPEND INBOX {" + strconv.Itoa(len(body)) + "+}\r\n")
	// 32 KiB every half second: 64 KiB a second, about six seconds in
	// all, twice the idle timeout.
	for off := 0; off < len(body); off += 32 << 10 {
		up.write(body[off:min(off+32<<10, len(body))])
		time.Sleep(500 * time.Millisecond)
	}
	up.write("\r\n")
	if l := up.expect("b "); !strings.HasPrefix(l, "b OK ") {
		t.Fatalf("slow APPEND: %q", l)
	}
}

// TestGuardPOP3LoginTimeout: POP3 clients that do not log in are closed
// at the login timeout (without a response, like an idle timeout, RFC
// 1939 §3), whatever they send; one that logged in stays.
func TestGuardPOP3LoginTimeout(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(guardShortTimeouts))
	guardUser(t, env, "alice@example.org", "alice pw")

	ok := guardPOP3(t, env, "127.0.0.1")
	ok.send("USER alice@example.org")
	ok.expect("+OK")
	ok.send("PASS alice pw")
	ok.expect("+OK")
	capas := guardPOP3(t, env, "127.0.0.2")
	guardTrickle(t, capas, "CAPA\r\n", 20*time.Millisecond)
	partial := guardPOP3(t, env, "127.0.0.3")
	partial.write("USER ")
	guardTrickle(t, partial, "x", 100*time.Millisecond)
	silent := guardPOP3(t, env, "127.0.0.4")
	for name, c := range map[string]*guardConn{"CAPA trickle": capas, "partial line": partial, "silent": silent} {
		for _, l := range c.expectClosed() {
			if strings.HasPrefix(l, "-ERR") {
				t.Errorf("%s: %q", name, l)
			}
		}
	}
	ok.send("STAT")
	ok.expect("+OK ")
}

// TestGuardSMTPTrickle: SMTP keeps its command timeout, but only a
// complete line restarts it: a command line trickled a byte at a time
// gets 421, and so does message data trickled a byte at a time; data
// sent in blocks, slowly, is received.
func TestGuardSMTPTrickle(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(guardShortTimeouts))
	guardUser(t, env, "alice@example.org", "alice pw")
	smtp := func(from string) *guardConn {
		c := guardDial(t, env, "smtp", from)
		c.expect("220 ")
		return c
	}

	line := smtp("127.0.0.2")
	line.write("EHLO ")
	guardTrickle(t, line, "x", 100*time.Millisecond)
	if l := line.expectClosed(); len(l) != 1 || !strings.HasPrefix(l[0], "421 ") {
		t.Fatalf("trickled command line: %q", l)
	}

	start := func(from string) *guardConn {
		c := smtp(from)
		c.send("EHLO client.example")
		c.expect("250 ")
		c.send("MAIL FROM:<bob@example.net>")
		c.expect("250 ")
		c.send("RCPT TO:<alice@example.org>")
		c.expect("250 ")
		c.send("DATA")
		c.expect("354 ")
		return c
	}
	data := start("127.0.0.3")
	data.write("Subject: trickle\r\n\r\n")
	guardTrickle(t, data, "y", 100*time.Millisecond)
	if l := data.expectClosed(); len(l) != 1 || !strings.HasPrefix(l[0], "421 ") {
		t.Fatalf("trickled message data: %q", l)
	}

	slow := start("127.0.0.4")
	block := strings.Repeat(strings.Repeat("z", 62)+"\r\n", 64) // 4 KiB
	slow.write("Subject: slow but steady\r\n\r\n")
	for range 8 { // four seconds in all, twice the data timeout
		slow.write(block)
		time.Sleep(500 * time.Millisecond)
	}
	slow.write(".\r\n")
	if l := slow.expect("250 "); !strings.Contains(l, "2.0.0") {
		t.Fatalf("slow data: %q", l)
	}
	if n := len(env.Messages("alice@example.org", "INBOX")); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
}
