package abuse

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/testenv"
)

// Issue 11, item 16: offlineimap over STARTTLS failed in about one run in
// ten (a crash, a hang, an alert, or "tls: received record with version 0"
// in the server log); over implicit TLS never. The cause was the TLS 1.3
// session tickets that the server sent right after its handshake: after
// STARTTLS the client reads them just when it sends its first command
// inside TLS, and a client that reads and writes one OpenSSL connection
// from two threads (imaplib2) broke on it. Upgrades now send nothing after
// the handshake until the client speaks (netserve.StartTLSConfig).
//
// These tests upgrade IMAP, POP3 and SMTP with the timings a real client
// may have (at once, after the session has been idle long enough to be
// parked, with a pause between the server's OK and the ClientHello, with
// the ClientHello in small pieces) and with plaintext pipelined after the
// command. Each upgrade must work, leave nothing behind in plaintext, run
// no plaintext command inside TLS, and bring the client no session ticket.
// The offlineimap runs themselves are in internal/interop.

const (
	// starttlsUser is the injected user; each connection logs in as a
	// user of its own (POP3 allows one session per maildrop).
	starttlsUser     = "alice@" + testenv.Domain
	starttlsPassword = "starttls secret 42"
	// starttlsPause is longer than the IMAP server's parking delay (1 s,
	// imapserver.defaultParkAfter): a session that waits that long has
	// given up its goroutine and its buffers.
	starttlsPause = 1300 * time.Millisecond
)

// starttlsProto is how one protocol upgrades.
type starttlsProto struct {
	listener string
	// hello reads the greeting and brings the session to where the
	// upgrade is allowed.
	hello func(c *starttlsClient)
	// command upgrades (with CRLF); ok begins the positive answer, refused
	// the answer to plaintext pipelined after command, "" when the server
	// drops such plaintext and upgrades.
	command, ok, refused string
	// inject is a command sent in plaintext right after command, in one
	// write; it must not run inside TLS.
	inject string
	// inside checks the session inside TLS: that it works, that it is the
	// protected session (no second upgrade offered) and that inject did
	// not run. It logs in as c.user.
	inside func(c *starttlsClient)
}

var starttlsProtos = []starttlsProto{
	{
		listener: "imap",
		hello:    func(c *starttlsClient) { c.expect("* OK ") },
		command:  "a1 STARTTLS\r\n", ok: "a1 OK ",
		// RFC 9051 §6.2.1: the server refuses data pipelined after
		// STARTTLS and closes.
		inject: "a2 LOGOUT\r\n", refused: "a1 BAD ",
		inside: func(c *starttlsClient) {
			c.send("b1 CAPABILITY")
			caps := c.expect("* CAPABILITY ")
			if strings.Contains(caps, "STARTTLS") {
				c.t.Errorf("STARTTLS offered inside TLS: %s", caps)
			}
			c.expect("b1 OK ")
			c.send(`b2 LOGIN ` + c.user + ` "` + starttlsPassword + `"`)
			c.expect("b2 OK ")
			c.send("b3 SELECT INBOX")
			c.until("b3 OK ")
			c.send("b4 LOGOUT")
			c.expect("* BYE ")
			c.expect("b4 OK ")
		},
	},
	{
		listener: "pop3",
		hello:    func(c *starttlsClient) { c.expect("+OK ") },
		command:  "STLS\r\n", ok: "+OK ",
		// RFC 2595 §4: pipelined plaintext is dropped; the injected USER
		// must not count inside TLS.
		inject: "USER " + starttlsUser + "\r\n", // a user of its own
		inside: func(c *starttlsClient) {
			c.send("PASS " + starttlsPassword)
			c.expect("-ERR") // no USER inside TLS
			c.send("CAPA")
			c.expect("+OK")
			caps := strings.Join(c.until("."), " ")
			if strings.Contains(caps, "STLS") || !strings.Contains(caps, "USER") {
				c.t.Errorf("CAPA inside TLS: %s", caps)
			}
			c.send("USER " + c.user)
			c.expect("+OK")
			c.send("PASS " + starttlsPassword)
			c.expect("+OK")
			c.send("STAT")
			c.expect("+OK 0 0")
			c.send("QUIT")
			c.expect("+OK")
		},
	},
	{
		listener: "smtp",
		hello: func(c *starttlsClient) {
			c.expect("220 ")
			c.send("EHLO client.example")
			if caps := strings.Join(c.until("250 "), " "); !strings.Contains(caps, "STARTTLS") {
				c.t.Fatalf("EHLO does not offer STARTTLS: %s", caps)
			}
		},
		command: "STARTTLS\r\n", ok: "220 ",
		// RFC 3207 §4.2: pipelined plaintext is dropped; an injected QUIT
		// run inside TLS would end the session.
		inject: "QUIT\r\n",
		inside: func(c *starttlsClient) {
			// RFC 3207 §4.2: the EHLO before TLS is forgotten.
			c.send("MAIL FROM:<bob@example.net>")
			c.expect("503 ")
			c.send("EHLO client.example")
			if caps := strings.Join(c.until("250 "), " "); strings.Contains(caps, "STARTTLS") {
				c.t.Errorf("STARTTLS offered inside TLS: %s", caps)
			}
			c.send("NOOP")
			c.expect("250 ")
			c.send("QUIT")
			c.expect("221 ")
		},
	},
}

// starttlsTiming is when and how the client sends its side of the
// upgrade.
type starttlsTiming struct {
	name string
	// idle is a pause before the upgrade command; pause one between the
	// server's OK and the ClientHello.
	idle, pause time.Duration
	// pieces sends the client's handshake in small writes with short
	// pauses, and a long one after the first record header.
	pieces bool
	// pipelined sends the protocol's inject right after the command, in
	// one write.
	pipelined bool
}

var starttlsTimings = []starttlsTiming{
	{name: "at-once"},
	{name: "parked-before", idle: starttlsPause},
	{name: "pause-before-hello", pause: starttlsPause},
	{name: "hello-in-pieces", pieces: true},
	{name: "plaintext-pipelined", pipelined: true},
}

// TestSTARTTLSTimings: issue 11, item 16, for IMAP STARTTLS, POP3 STLS
// and SMTP STARTTLS.
func TestSTARTTLSTimings(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	e.AddUser(starttlsUser, starttlsPassword)
	for _, p := range starttlsProtos {
		for _, tm := range starttlsTimings {
			e.AddUser(starttlsUserFor(p, tm), starttlsPassword)
		}
	}
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(filepath.Join(e.Config.DataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in cert.pem")
	}
	for _, p := range starttlsProtos {
		for _, tm := range starttlsTimings {
			t.Run(p.listener+"/"+tm.name, func(t *testing.T) {
				t.Parallel()
				starttlsRun(t, e, roots, p, tm)
			})
		}
	}
}

// starttlsUserFor names the user that a connection logs in as.
func starttlsUserFor(p starttlsProto, tm starttlsTiming) string {
	return p.listener + "-" + tm.name + "@" + testenv.Domain
}

// starttlsRun upgrades one connection of p with the timing tm.
func starttlsRun(t *testing.T, e *testenv.Env, roots *x509.CertPool, p starttlsProto, tm starttlsTiming) {
	raw := e.Dial(p.listener)
	// Bounds the whole exchange; nothing here waits longer.
	_ = raw.SetDeadline(time.Now().Add(60 * time.Second))
	c := &starttlsClient{t: t, c: raw, r: bufio.NewReader(raw)}
	p.hello(c)
	time.Sleep(tm.idle)
	out := p.command
	if tm.pipelined {
		out += p.inject
	}
	if _, err := io.WriteString(raw, out); err != nil {
		t.Fatal(err)
	}
	if tm.pipelined && p.refused != "" {
		c.expect(p.refused)
		if _, err := c.r.ReadByte(); err != io.EOF {
			t.Fatalf("connection still open after the refusal (read: %v)", err)
		}
		return
	}
	c.expect(p.ok)
	if n := c.r.Buffered(); n != 0 {
		b, _ := c.r.Peek(n)
		t.Fatalf("%d plaintext bytes after the answer to %q: %q", n, strings.TrimSpace(p.command), b)
	}
	time.Sleep(tm.pause)
	var under net.Conn = raw
	if tm.pieces {
		under = &starttlsPieces{Conn: raw}
	}
	tickets := &starttlsTickets{}
	tc := tls.Client(under, &tls.Config{
		RootCAs:            roots,
		ServerName:         "localhost",
		ClientSessionCache: tickets,
	})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("tls handshake: %v", err)
	}
	c = &starttlsClient{t: t, c: tc, r: bufio.NewReader(tc), user: starttlsUserFor(p, tm)}
	p.inside(c)
	// Every answer inside TLS has been read, so a ticket the server sent
	// after its handshake has reached the cache by now.
	if n := tickets.count(); n != 0 {
		t.Errorf("the server sent %d TLS session tickets after the %s handshake; a threaded client (offlineimap) reads them while it writes its first command", n, strings.TrimSpace(p.command))
	}
}

// starttlsClient reads and writes protocol lines.
type starttlsClient struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	user string
}

func (c *starttlsClient) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

func (c *starttlsClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads a line that must begin with prefix.
func (c *starttlsClient) expect(prefix string) string {
	c.t.Helper()
	l := c.line()
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want %q...", l, prefix)
	}
	return l
}

// until reads lines up to the one that begins with prefix, and returns
// them all.
func (c *starttlsClient) until(prefix string) []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines
		}
	}
}

// starttlsPieces writes in pieces of 16 bytes with a short pause after
// each, and a pause of starttlsPause after the first 5 bytes (a TLS record
// header), so the server's handshake reads partial records.
type starttlsPieces struct {
	net.Conn
	started bool
}

func (c *starttlsPieces) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k, pause := min(16, len(b)), 5*time.Millisecond
		if !c.started {
			k, pause, c.started = min(5, len(b)), starttlsPause, true
		}
		m, err := c.Conn.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		b = b[k:]
		time.Sleep(pause)
	}
	return n, nil
}

// starttlsTickets is a client session cache that counts the tickets it
// is given.
type starttlsTickets struct {
	mu sync.Mutex
	n  int
}

func (s *starttlsTickets) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (s *starttlsTickets) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
	}
}

func (s *starttlsTickets) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
