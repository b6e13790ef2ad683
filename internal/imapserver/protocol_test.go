package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBadInputSurvives(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.MaxMessageSize = 1000 })
	ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")
	c.expect("a1 FETCH 1 FLAGS", "a1 BAD Select a mailbox first")
	c.expect("a2 SELECT", "a2 BAD missing argument")
	c.expect("a3 LIST \"\" \"unterminated", "a3 BAD …")
	c.send("+++")
	c.expectLine("* BAD invalid tag")
	c.expect("a4 NOOP", "a4 OK NOOP completed")
	// A literal over the limits is refused before any of it is read.
	c.expect("a5 APPEND INBOX {5000}", "a5 NO [TOOBIG] message too big")
	c.expect("a6 CREATE {99999999}", "a6 BAD [TOOBIG] literal too big")
	c.expect("a7 NOOP", "a7 OK NOOP completed")
	// An over-long line is answered and survived.
	c.expect("a8 NOOP "+strings.Repeat("x", 70000), "a8 BAD command line too long")
	c.expect("a9 NOOP", "a9 OK NOOP completed")
	// Pipelined commands are answered in order.
	c.send("p1 NOOP\r\np2 CAPABILITY\r\np3 NOOP")
	c.expectLine("p1 OK NOOP completed")
	c.expectLine("* CAPABILITY …")
	c.expectLine("p2 OK CAPABILITY completed")
	c.expectLine("p3 OK NOOP completed")
	// Sequence numbers in an empty mailbox.
	c.ok("b1 SELECT INBOX")
	c.expect("b2 FETCH * FLAGS", "b2 BAD [CLIENTBUG] Invalid message sequence number")
	c.expect("b3 UID FETCH * FLAGS", "b3 OK UID FETCH completed")
	c.expect("b4 ENABLE CONDSTORE", "b4 BAD Command not allowed in this state")
}

func TestTooManyBadCommands(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.MaxBadCommands = 3 })
	c := ts.dial()
	c.expect("a1 XYZZY", "a1 BAD unknown command")
	c.expect("a2 XYZZY", "a2 BAD unknown command")
	c.send("a3 XYZZY")
	c.expectLine("a3 BAD unknown command")
	c.expectLine("* BYE Too many bad commands, closing connection")
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Fatal("connection still open")
	}
}

func TestAuthenticate(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	ir := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00" + testPassword))
	c := ts.dial()
	c.expect("a1 AUTHENTICATE PLAIN "+ir, "a1 OK [CAPABILITY …] Logged in")
	c = ts.dial()
	c.send("a1 AUTHENTICATE PLAIN")
	c.expectLine("+ ")
	c.send(ir)
	c.expectLine("a1 OK [CAPABILITY …] Logged in")
	c = ts.dial()
	c.send("a1 AUTHENTICATE LOGIN")
	c.expectLine("+ " + base64.StdEncoding.EncodeToString([]byte("Username:")))
	c.send(base64.StdEncoding.EncodeToString([]byte("alice@example.org")))
	c.expectLine("+ " + base64.StdEncoding.EncodeToString([]byte("Password:")))
	c.send("*")
	c.expectLine("a1 BAD Authentication cancelled")
	c.expect("a2 AUTHENTICATE CRAM-MD5", "a2 NO [CANNOT] Unsupported authentication mechanism")
	c.expect("a3 AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00nope")), "a3 NO [AUTHENTICATIONFAILED] Authentication failed")
	c.expect("a4 AUTHENTICATE PLAIN =", "a4 BAD Malformed authentication exchange")
	// UNAUTHENTICATE (RFC 8437) returns to the not-authenticated state.
	c.expect("a5 AUTHENTICATE PLAIN "+ir, "a5 OK [CAPABILITY …] Logged in")
	c.expect("a6 UNAUTHENTICATE", "a6 OK UNAUTHENTICATE completed")
	c.expect("a7 SELECT INBOX", "a7 BAD Log in first")
	c.expect("a8 ID (\"name\" \"test\")", `* ID ("name" "postfach")`, "a8 OK ID completed")
}

func TestStartTLSAndImplicitTLS(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) { s.loopbackSec = false })
	ts.addUser("alice@example.org")
	c := ts.dial()
	c.expect("a1 STARTTLS", "a1 OK Begin TLS negotiation now")
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
	lines := c.ok("a2 CAPABILITY")
	if strings.Contains(lines[0], "STARTTLS") || strings.Contains(lines[0], "LOGINDISABLED") || !strings.Contains(lines[0], "AUTH=PLAIN") {
		t.Fatalf("capabilities after STARTTLS: %s", lines[0])
	}
	c.expect("a3 LOGIN alice@example.org \""+testPassword+"\"", "a3 OK [CAPABILITY …] Logged in")

	// Data pipelined after STARTTLS is refused (command injection).
	c2 := ts.dial()
	c2.send("b1 STARTTLS\r\nb2 NOOP")
	c2.expectLine("b1 BAD Data after STARTTLS")

	raw, err := tls.Dial("tcp", ts.tlsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c3 := &client{t: t, c: raw, r: bufio.NewReader(raw)}
	c3.expectLine("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 AUTH=PLAIN …] imap.test IMAP server ready")
	c3.expect("c1 STARTTLS", "c1 BAD STARTTLS not available")
	c3.expect("c2 LOGIN alice@example.org \""+testPassword+"\"", "c2 OK [CAPABILITY …] Logged in")
}

func TestShutdownSaysBye(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	idle := ts.login("alice@example.org")
	idle.ok("a1 SELECT INBOX")
	idle.send("a2 IDLE")
	idle.expectLine("+ idling")
	waiting := ts.dial()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()
	idle.expectLine("* BYE [UNAVAILABLE] Server shutting down, try again later")
	waiting.expectLine("* BYE [UNAVAILABLE] Server shutting down, try again later")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	c := ts.dial()
	c.expectLine("* BYE Idle timeout, closing connection")
	if _, err := c.r.ReadString('\n'); err != io.EOF {
		t.Fatalf("after BYE: %v", err)
	}
}

func TestConnectionLimit(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.MaxConnsPerIP = 1 })
	a := ts.dial()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if line != "* BYE [UNAVAILABLE] Too many connections, try again later\r\n" {
		t.Fatalf("over the limit: %q", line)
	}
	a.expect("a1 NOOP", "a1 OK NOOP completed")
}

func TestAccountDeletedEndsSessions(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	a := ts.login("alice@example.org")
	a.ok("a1 SELECT INBOX")
	b := ts.login("alice@example.org")
	b.send("b1 IDLE")
	b.expectLine("+ idling")
	if err := ts.st.DeleteAccount(context.Background(), acct); err != nil {
		t.Fatal(err)
	}
	b.expectLine("* BYE Account removed, closing connection")
	a.send("a2 NOOP")
	for {
		l := a.line()
		if l == "* BYE Account removed, closing connection" {
			break
		}
	}
	if _, err := a.r.ReadString('\n'); err == nil {
		t.Fatal("session goes on after its account was deleted")
	}
}

// TestNoSignInWithoutTLSFromAfar: a client on another host (an injected
// non-loopback address) without TLS gets LOGINDISABLED and no AUTH=, and
// every way to sign in is refused, SCRAM included; after STARTTLS they
// are offered, SCRAM-SHA-256-PLUS only there (RFC 9051 §6.2.3, issue 14).
func TestNoSignInWithoutTLSFromAfar(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) {
		s.remoteFor = func(net.Conn) netip.Addr { return netip.MustParseAddr("203.0.113.7") }
	})
	ts.addUser("alice@example.org")
	c := ts.dial()
	caps := c.ok("a1 CAPABILITY")[0]
	if !strings.Contains(caps, " LOGINDISABLED") || strings.Contains(caps, " AUTH=") {
		t.Fatalf("capabilities without TLS: %s", caps)
	}
	c.expect("a2 LOGIN alice@example.org \""+testPassword+"\"", "a2 NO [PRIVACYREQUIRED] …")
	c.expect("a3 AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+testPassword)), "a3 NO [PRIVACYREQUIRED] …")
	c.expect("a4 AUTHENTICATE SCRAM-SHA-256", "a4 NO [PRIVACYREQUIRED] …")
	c.expect("a5 AUTHENTICATE SCRAM-SHA-256-PLUS", "a5 NO [CANNOT] Unsupported authentication mechanism")
	c.expect("a6 STARTTLS", "a6 OK Begin TLS negotiation now")
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
	caps = c.ok("a7 CAPABILITY")[0]
	if strings.Contains(caps, "LOGINDISABLED") || !strings.Contains(caps, " AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN ") {
		t.Fatalf("capabilities after STARTTLS: %s", caps)
	}
	c.expect("a8 LOGIN alice@example.org \""+testPassword+"\"", "a8 OK [CAPABILITY …] Logged in")
}
