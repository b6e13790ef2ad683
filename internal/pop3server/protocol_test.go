package pop3server

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

const msgA = "From: bob@example.net\nTo: alice@example.org\nSubject: first\n\nHello Alice.\nSecond line.\nThird line.\n"
const msgB = "From: carol@example.net\nSubject: second\n\nOne line.\n"
const msgC = "Subject: third\n\n.starts with a dot\n..two dots\n.\nend\n"

func TestGreetingAndCapa(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.dial()
	c.cmd("CAPA", "+OK")
	caps := c.multi()
	for _, want := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL SCRAM-SHA-256 PLAIN LOGIN", "STLS", "IMPLEMENTATION postfach"} {
		if !slices.Contains(caps, want) {
			t.Errorf("CAPA lacks %q: %q", want, caps)
		}
	}
	for _, c := range caps {
		if strings.HasPrefix(c, "LOGIN-DELAY") {
			t.Errorf("LOGIN-DELAY advertised without a delay: %q", caps)
		}
	}
	c.cmd("CAPA x", "-ERR")
	c.cmd("QUIT", "+OK")
	c.closed()
}

func TestCapaAfterLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.login(testUser)
	c.cmd("CAPA", "+OK")
	caps := c.multi()
	if slices.Contains(caps, "STLS") {
		t.Errorf("STLS offered after login: %q", caps)
	}
	if !slices.Contains(caps, "TOP") || !slices.Contains(caps, "UIDL") {
		t.Errorf("CAPA after login: %q", caps)
	}
}

// TestPlaintextNeedsTLS: without TLS, and not on loopback, USER and the
// SASL mechanisms are neither offered nor accepted (RFC 2595 §4); after
// STLS they are.
func TestPlaintextNeedsTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{insecureLoopback: true})
	c := e.dial()
	c.cmd("CAPA", "+OK")
	caps := c.multi()
	if !slices.Contains(caps, "STLS") {
		t.Fatalf("no STLS: %q", caps)
	}
	for _, cp := range caps {
		if cp == "USER" || strings.HasPrefix(cp, "SASL") {
			t.Errorf("plaintext auth offered without TLS: %q", caps)
		}
	}
	c.cmd("USER "+testUser, "-ERR [AUTH] ")
	c.cmd("PASS "+testPassword, "-ERR")
	c.cmd("AUTH PLAIN "+plainResp(testUser, testPassword), "-ERR [AUTH] ")
	c.cmd("AUTH", "+OK")
	if m := c.multi(); len(m) != 0 {
		t.Errorf("AUTH lists mechanisms without TLS: %q", m)
	}
	c.cmd("STLS", "+OK")
	tc := tlsClient(t, c)
	tc.cmd("STLS", "-ERR")
	tc.cmd("CAPA", "+OK")
	caps = tc.multi()
	if !slices.Contains(caps, "USER") || !slices.Contains(caps, "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN") || slices.Contains(caps, "STLS") {
		t.Errorf("CAPA after STLS: %q", caps)
	}
	tc.cmd("USER "+testUser, "+OK")
	tc.cmd("PASS "+testPassword, "+OK Logged in")
	tc.cmd("QUIT", "+OK")
}

// TestAllowInsecureAuth: the operator may allow plaintext logins without
// TLS.
func TestAllowInsecureAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{insecureLoopback: true, opts: func(o *Options) { o.AllowInsecureAuth = true }})
	c := e.login(testUser)
	c.cmd("QUIT", "+OK")
}

// TestSTLSDropsPipelinedInput: commands sent in the clear after STLS are
// not executed inside TLS (command injection).
func TestSTLSDropsPipelinedInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.dial()
	c.send("STLS\r\nUSER " + testUser)
	c.expect("+OK Begin TLS")
	tc := tlsClient(t, c)
	tc.cmd("PASS "+testPassword, "-ERR") // the injected USER was dropped
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{insecureLoopback: true})
	c := e.dialTLS()
	c.cmd("CAPA", "+OK")
	caps := c.multi()
	if slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") {
		t.Errorf("CAPA on pop3s: %q", caps)
	}
	e.deliver(msgA)
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "+OK Logged in, 1 message")
	c.cmd("RETR 1", "+OK")
	if body := c.multiRaw(); string(body) != crlf(msgA) {
		t.Errorf("RETR over TLS: %q", body)
	}
	c.cmd("QUIT", "+OK")
}

func TestUserPass(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.dial()
	c.cmd("PASS "+testPassword, "-ERR") // no USER
	c.cmd("USER", "-ERR")
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS wrong", "-ERR [AUTH] ")
	c.cmd("PASS "+testPassword, "-ERR") // USER is forgotten after a failure
	c.cmd("USER nobody@example.org", "+OK")
	c.cmd("PASS "+testPassword, "-ERR [AUTH] ")
	c.cmd("USER "+testUser, "+OK")
	c.cmd("NOOP", "-ERR") // not in AUTHORIZATION; forgets USER too
	c.cmd("PASS "+testPassword, "-ERR")
	c.cmd("USER "+strings.ToUpper(testUser), "+OK")
	c.cmd("PASS "+testPassword, "+OK Logged in, 0 messages (0 octets)")
	c.cmd("USER "+testUser, "-ERR")
	c.cmd("PASS x", "-ERR")
	c.cmd("AUTH PLAIN", "-ERR")
	c.cmd("STLS", "-ERR")
	c.cmd("QUIT", "+OK")
}

// TestPassWithSpaces: the password is the whole rest of the line
// (RFC 1939 §7).
func TestPassWithSpaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.dial()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "+OK") // testPassword has spaces
	c.cmd("QUIT", "+OK")
}

func plainResp(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func TestAuthPlain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.dial()
	c.cmd("AUTH", "+OK")
	if m := c.multi(); !slices.Equal(m, []string{"SCRAM-SHA-256", "PLAIN", "LOGIN"}) {
		t.Errorf("AUTH list: %q", m)
	}
	c.cmd("AUTH CRAM-MD5", "-ERR")
	c.cmd("AUTH PLAIN !!!", "-ERR")                                   // not base64
	c.cmd("AUTH PLAIN "+plainResp(testUser, "wrong"), "-ERR [AUTH] ") // wrong password
	c.cmd("AUTH PLAIN =", "-ERR [AUTH] ")                             // empty response: malformed
	c.cmd("AUTH PLAIN", "+ ")                                         // no initial response
	c.cmd("*", "-ERR")                                                // cancelled
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("not base64!", "-ERR")
	c.cmd("auth plain", "+ ")
	c.cmd(plainResp(testUser, testPassword), "+OK Logged in")
	c.cmd("QUIT", "+OK")

	c = e.dial()
	c.cmd("AUTH PLAIN "+plainResp(testUser, testPassword), "+OK Logged in")
	c.cmd("QUIT", "+OK")
}

func TestAuthLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	c := e.dial()
	l := c.cmd("AUTH LOGIN", "+ ")
	if got, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ ")); string(got) != "Username:" {
		t.Errorf("first challenge %q", got)
	}
	c.cmd(b64(testUser), "+ ")
	c.cmd(b64(testPassword), "+OK Logged in")
	c.cmd("QUIT", "+OK")
	// With the user name as initial response.
	c = e.dial()
	c.cmd("AUTH LOGIN "+b64(testUser), "+ ")
	c.cmd(b64("wrong"), "-ERR [AUTH] ")
	c.cmd("QUIT", "+OK")
}

// TestRetrReadAhead: the body of the next message is opened while the
// client reads the current one; whatever the client asks next, it gets
// the message it named.
func TestRetrReadAhead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	msgs := []string{msgA, msgB, msgC, "Subject: four\n\nfour\n"}
	for _, m := range msgs {
		e.deliver(m)
	}
	c := e.login(testUser)
	retr := func(n int) {
		t.Helper()
		c.cmd(fmt.Sprintf("RETR %d", n), "+OK")
		if got := string(c.multiRaw()); got != crlf(msgs[n-1]) {
			t.Errorf("RETR %d = %q", n, got)
		}
	}
	retr(1)
	retr(2) // opened ahead
	c.cmd("DELE 3", "+OK")
	c.cmd("RETR 3", "-ERR Message 3 already deleted")
	retr(4)
	retr(1) // back to the start: the read-ahead of 5 (none) and 2 do not matter
	c.cmd("TOP 2 0", "+OK")
	if got := string(c.multiRaw()); got != crlf("From: carol@example.net\nSubject: second\n\n") {
		t.Errorf("TOP 2 0 = %q", got)
	}
	retr(2)
	c.cmd("QUIT", "+OK")
	c.closed()
}

// countingStore counts the bodies opened.
type countingStore struct {
	Store
	opens atomic.Int64
}

func (c *countingStore) OpenBody(ctx context.Context, blobID string) (store.Body, error) {
	c.opens.Add(1)
	return c.Store.OpenBody(ctx, blobID)
}

// TestRetrReadAheadQueue: after a RETR the body of the next message is
// opened ahead, passing over one larger than readAheadMax, and a TOP's
// body is kept for the RETR that follows. Retrieving in order, with a TOP before each RETR and
// skipping some, opens every body once (a large one twice: for the TOP
// and for the RETR) and gives every message intact.
func TestRetrReadAheadQueue(t *testing.T) {
	t.Parallel()
	cs := &countingStore{}
	e := newEnv(t, envOptions{wrap: func(s Store) Store { cs.Store = s; return cs }})
	var msgs []string
	large := func(n int) bool { return n%5 == 0 }
	for n := 1; n <= 3*readAheadCount; n++ {
		body := fmt.Sprintf("Subject: %d\n\nbody %d\n", n, n)
		if large(n) {
			body += strings.Repeat("a line to make it larger than the read-ahead's limits\n", readAheadMax/50)
		}
		msgs = append(msgs, body)
		e.deliver(body)
	}
	c := e.login(testUser)
	retr := func(n int) {
		t.Helper()
		c.cmd(fmt.Sprintf("RETR %d", n), "+OK")
		if got := string(c.multiRaw()); got != crlf(msgs[n-1]) {
			t.Fatalf("RETR %d: %d octets, want %d", n, len(got), len(crlf(msgs[n-1])))
		}
	}
	retr(1)
	// Message 2 is opened ahead once the reply has gone out.
	for deadline := time.Now().Add(30 * time.Second); cs.opens.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d bodies opened after the first RETR, want 2", cs.opens.Load())
		}
		time.Sleep(time.Millisecond)
	}
	want := int64(1)
	for n := 2; n <= len(msgs); n++ {
		switch {
		case n%7 == 3: // not retrieved: the queue moves past it
			if !large(n) {
				want++ // opened ahead all the same
			}
			continue
		case large(n):
			want += 2
		default:
			want++
		}
		c.cmd(fmt.Sprintf("TOP %d 0", n), "+OK")
		if got := string(c.multiRaw()); !strings.HasPrefix(crlf(msgs[n-1]), got) {
			t.Fatalf("TOP %d 0 = %q", n, got)
		}
		retr(n)
	}
	c.cmd("QUIT", "+OK")
	if got := cs.opens.Load(); got != want {
		t.Errorf("%d bodies opened for %d messages, want %d", got, len(msgs), want)
	}
}

// TestTransaction walks through every TRANSACTION command.
func TestTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uids := []mail.UID{e.deliver(msgA), e.deliver(msgB), e.deliver(msgC)}
	sizes := []int{len(crlf(msgA)), len(crlf(msgB)), len(crlf(msgC))}
	total := sizes[0] + sizes[1] + sizes[2]
	uv := e.mailbox("INBOX").UIDValidity
	c := e.login(testUser)
	c.cmd("STAT", fmt.Sprintf("+OK 3 %d", total))
	c.cmd("LIST", fmt.Sprintf("+OK 3 messages (%d octets)", total))
	if got, want := c.multi(), []string{fmt.Sprintf("1 %d", sizes[0]), fmt.Sprintf("2 %d", sizes[1]), fmt.Sprintf("3 %d", sizes[2])}; !slices.Equal(got, want) {
		t.Errorf("LIST = %q, want %q", got, want)
	}
	c.cmd("LIST 2", fmt.Sprintf("+OK 2 %d", sizes[1]))
	c.cmd("LIST 4", "-ERR No such message")
	c.cmd("LIST 0", "-ERR No such message")
	c.cmd("LIST x", "-ERR")
	c.cmd("LIST -1", "-ERR")
	c.cmd("LIST 1 2", "-ERR")
	c.cmd("UIDL", "+OK")
	var want []string
	for i, u := range uids {
		want = append(want, fmt.Sprintf("%d %08X%08X", i+1, u, uv))
	}
	if got := c.multi(); !slices.Equal(got, want) {
		t.Errorf("UIDL = %q, want %q", got, want)
	}
	c.cmd("UIDL 3", "+OK "+want[2])
	c.cmd("UIDL 9", "-ERR")
	c.cmd("RETR 1", fmt.Sprintf("+OK %d octets", sizes[0]))
	if got := string(c.multiRaw()); got != crlf(msgA) {
		t.Errorf("RETR 1 = %q", got)
	}
	c.cmd("RETR 3", "+OK")
	if got := string(c.multiRaw()); got != crlf(msgC) {
		t.Errorf("RETR 3 = %q", got)
	}
	c.cmd("RETR", "-ERR")
	c.cmd("RETR 5", "-ERR No such message")
	c.cmd("TOP 1 0", "+OK")
	if got := string(c.multiRaw()); got != crlf("From: bob@example.net\nTo: alice@example.org\nSubject: first\n\n") {
		t.Errorf("TOP 1 0 = %q", got)
	}
	c.cmd("TOP 1 2", "+OK")
	if got := string(c.multiRaw()); got != crlf("From: bob@example.net\nTo: alice@example.org\nSubject: first\n\nHello Alice.\nSecond line.\n") {
		t.Errorf("TOP 1 2 = %q", got)
	}
	c.cmd("TOP 1 100", "+OK")
	if got := string(c.multiRaw()); got != crlf(msgA) {
		t.Errorf("TOP 1 100 = %q", got)
	}
	c.cmd("TOP 3 1", "+OK")
	if got := string(c.multiRaw()); got != crlf("Subject: third\n\n.starts with a dot\n") {
		t.Errorf("TOP 3 1 = %q", got)
	}
	c.cmd("TOP 1", "-ERR")
	c.cmd("TOP 1 x", "-ERR")
	c.cmd("TOP 9 1", "-ERR No such message")
	c.cmd("NOOP", "+OK")
	c.cmd("NOOP x", "-ERR")
	c.cmd("DELE 2", "+OK Message 2 deleted")
	c.cmd("DELE 2", "-ERR Message 2 already deleted")
	c.cmd("DELE 7", "-ERR No such message")
	c.cmd("DELE", "-ERR")
	c.cmd("RETR 2", "-ERR Message 2 already deleted")
	c.cmd("LIST 2", "-ERR")
	c.cmd("UIDL 2", "-ERR")
	c.cmd("STAT", fmt.Sprintf("+OK 2 %d", sizes[0]+sizes[2]))
	c.cmd("LIST", "+OK 2 messages")
	if got := c.multi(); len(got) != 2 || !strings.HasPrefix(got[1], "3 ") {
		t.Errorf("LIST after DELE = %q", got)
	}
	c.cmd("RSET", fmt.Sprintf("+OK Maildrop has 3 messages (%d octets)", total))
	c.cmd("STAT", fmt.Sprintf("+OK 3 %d", total))
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 3", "+OK")
	c.cmd("QUIT", "+OK Bye (2 messages deleted)")
	c.closed()
	if msgs := e.messages(e.inbox); len(msgs) != 1 || msgs[0].UID != uids[1] {
		t.Errorf("INBOX after QUIT: %+v", msgs)
	}
}

// TestListSizeIsRetrSize: LIST and STAT give exactly the octets RETR
// sends, before byte-stuffing and without the final "." (RFC 1939 §11).
func TestListSizeIsRetrSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	bodies := []string{
		msgA, msgC,
		"Subject: dots\n\n.\n..\n...\n.x\n\n.\n",
		"Subject: long\n\n" + strings.Repeat("x", 5000) + "\n" + strings.Repeat(".y\n", 2000),
		"Subject: no final newline\n\nlast line without CRLF\n",
	}
	for _, b := range bodies {
		e.deliver(b)
	}
	c := e.login(testUser)
	c.cmd("LIST", "+OK")
	list := c.multi()
	var sum int64
	for i, l := range list {
		f := strings.Fields(l)
		size, _ := strconv.ParseInt(f[1], 10, 64)
		sum += size
		c.cmd("RETR "+f[0], "+OK "+f[1]+" octets")
		got := c.multiRaw()
		if int64(len(got)) != size {
			t.Errorf("message %d: LIST says %d octets, RETR sent %d", i+1, size, len(got))
		}
		if string(got) != crlf(bodies[i]) {
			t.Errorf("message %d: RETR = %q", i+1, got)
		}
	}
	c.cmd("STAT", fmt.Sprintf("+OK %d %d", len(bodies), sum))
	c.cmd("QUIT", "+OK")
}

// TestStuffingOnTheWire checks the stuffed bytes themselves.
func TestStuffingOnTheWire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.deliver("Subject: s\n\n.\n..a\nb.\n")
	c := e.login(testUser)
	c.cmd("RETR 1", "+OK")
	var got []string
	for {
		l := c.line()
		got = append(got, l)
		if l == "." {
			break
		}
	}
	want := []string{"Subject: s", "", "..", "...a", "b.", "."}
	if !slices.Equal(got, want) {
		t.Errorf("wire = %q, want %q", got, want)
	}
}

func TestStateErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.dial()
	for _, cmd := range []string{"STAT", "LIST", "RETR 1", "DELE 1", "RSET", "TOP 1 1", "UIDL", "NOOP"} {
		c.cmd(cmd, "-ERR Command not valid before login")
	}
	c.cmd("APOP alice 0123456789abcdef0123456789abcdef", "-ERR Unknown command")
	c.cmd("XYZZY", "-ERR Unknown command")
	c.cmd("", "-ERR")
	c.cmd("ST\x01T", "-ERR")
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "+OK")
	for _, cmd := range []string{"USER x", "PASS x", "AUTH PLAIN", "STLS"} {
		c.cmd(cmd, "-ERR Command not valid after login")
	}
	c.cmd("stat", "+OK") // keywords are case-insensitive
	c.cmd("QUIT", "+OK")
}

func TestTooManyBadCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.MaxBadCommands = 3 }})
	c := e.dial()
	c.cmd("FOO", "-ERR")
	c.cmd("BAR", "-ERR")
	c.send("BAZ")
	c.expect("-ERR Unknown")
	c.expect("-ERR Too many bad commands")
	c.closed()
}

func TestLineTooLong(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.dial()
	c.cmd("USER "+strings.Repeat("a", 3*maxLine), "-ERR Line too long")
	c.cmd("NOOP", "-ERR Command not valid before login") // still in sync
	c.cmd("QUIT", "+OK")
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for range 5 {
		e.deliver(msgB)
	}
	c := e.dial()
	// RFC 2449 §6.6: the client may send several commands at once.
	var cmds []string
	cmds = append(cmds, "USER "+testUser, "PASS "+testPassword, "STAT", "LIST")
	for i := 1; i <= 5; i++ {
		cmds = append(cmds, fmt.Sprintf("RETR %d", i), fmt.Sprintf("DELE %d", i))
	}
	cmds = append(cmds, "QUIT")
	c.send(strings.Join(cmds, "\r\n"))
	c.expect("+OK")
	c.expect("+OK Logged in, 5 messages")
	c.expect("+OK 5 ")
	c.expect("+OK")
	c.multi()
	for range 5 {
		c.expect("+OK")
		if got := string(c.multiRaw()); got != crlf(msgB) {
			t.Fatalf("RETR = %q", got)
		}
		c.expect("+OK")
	}
	c.expect("+OK Bye (5 messages deleted)")
	if n := len(e.messages(e.inbox)); n != 0 {
		t.Errorf("%d messages left", n)
	}
}

// TestInUse: one session per maildrop; the device views of the account
// are maildrops of their own (RFC 2449 §8.1.1).
func TestInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c1 := e.login(testUser)
	c2 := e.dial()
	c2.cmd("USER "+testUser, "+OK")
	c2.cmd("PASS "+testPassword, "-ERR [IN-USE] ")
	c2.cmd("AUTH PLAIN "+plainResp(testUser, testPassword), "-ERR [IN-USE] ")
	d1 := e.login(testUser + "#laptop")
	d2 := e.dial()
	d2.cmd("USER "+testUser+"#LAPTOP", "+OK") // device names are case-insensitive
	d2.cmd("PASS "+testPassword, "-ERR [IN-USE] ")
	c1.cmd("QUIT", "+OK")
	c2.cmd("USER "+testUser, "+OK")
	c2.cmd("PASS "+testPassword, "+OK Logged in")
	c2.cmd("QUIT", "+OK")
	// A dropped connection frees the maildrop too.
	d1.c.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		d2.cmd("USER "+testUser+"#laptop", "+OK")
		d2.send("PASS " + testPassword)
		l := d2.line()
		if strings.HasPrefix(l, "+OK") {
			break
		}
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("login after the holder dropped: %q", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLoginDelay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.LoginDelay = time.Hour }})
	c := e.dial()
	c.cmd("CAPA", "+OK")
	if caps := c.multi(); !slices.Contains(caps, "LOGIN-DELAY 3600") {
		t.Errorf("CAPA: %q", caps)
	}
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "+OK")
	c.cmd("QUIT", "+OK")
	c = e.dial()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "-ERR [LOGIN-DELAY] ")
	// Another maildrop (a device view) has its own clock.
	c.cmd("USER "+testUser+"#scanner", "+OK")
	c.cmd("PASS "+testPassword, "+OK")
}

func TestSysTemp(t *testing.T) {
	t.Parallel()
	var fs *failingStore
	e := newEnv(t, envOptions{wrap: func(s Store) Store { fs = &failingStore{Store: s}; return fs }})
	e.deliver(msgA)
	e.deliver(msgB)
	fs.set("Mailbox", errors.New("disk on fire"))
	c := e.dial()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "-ERR [SYS/TEMP] ")
	fs.set("Mailbox", nil)
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "+OK") // the maildrop was released
	fs.set("OpenBody", errors.New("blob gone"))
	c.cmd("RETR 1", "-ERR [SYS/TEMP] ")
	fs.set("OpenBody", nil)
	c.cmd("RETR 1", "+OK")
	c.multiRaw()
	fs.set("Expunge", errors.New("disk full"))
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "-ERR [SYS/TEMP] Some deleted messages not removed")
	c.closed()
	if n := len(e.messages(e.inbox)); n != 2 {
		t.Errorf("%d messages after a failed UPDATE, want 2", n)
	}
}

// unavailableAuth fails every login with ErrUnavailable.
type unavailableAuth struct{ Authenticator }

func (unavailableAuth) Login(ctx context.Context, c auth.Credentials) (*auth.Principal, error) {
	return nil, fmt.Errorf("%w: database locked", auth.ErrUnavailable)
}

func TestAuthUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.Auth = unavailableAuth{o.Auth} }})
	c := e.dial()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "-ERR [SYS/TEMP] ")
}

func TestRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.auth = auth.New(auth.Options{Store: e.st, Guard: auth.GuardOptions{IPBlockAfter: 2}})
	e.srv.opt.Auth = e.auth
	c := e.dial()
	for range 2 {
		c.cmd("USER "+testUser, "+OK")
		c.cmd("PASS wrong", "-ERR [AUTH] ")
	}
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "-ERR [SYS/TEMP] ")
}

// TestShutdown: a session waiting for a command gets -ERR [SYS/TEMP] and
// its deletions are not applied (no UPDATE).
func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	c.expect("-ERR [SYS/TEMP] ")
	c.closed()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(e.messages(e.inbox)); n != 1 {
		t.Errorf("%d messages after shutdown, want 1", n)
	}
	if _, err := dialErr(e.addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// TestIdleTimeout: the session ends without a response and without
// UPDATE (RFC 1939 §3).
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.IdleTimeout = 2 * time.Second }})
	e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	c.closed()
	if n := len(e.messages(e.inbox)); n != 1 {
		t.Errorf("%d messages after idle timeout, want 1", n)
	}
}

// TestDropWithoutQuit: a connection that ends without QUIT deletes
// nothing (RFC 1939 §6).
func TestDropWithoutQuit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	c.c.Close()
	// The next login waits for the old session to be gone.
	deadline := time.Now().Add(time.Minute)
	for {
		c2 := e.dial()
		c2.cmd("USER "+testUser, "+OK")
		c2.send("PASS " + testPassword)
		l := c2.line()
		if strings.HasPrefix(l, "+OK Logged in, 1 message") {
			break
		}
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("login: %q", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.MaxConns = 1 }})
	c := e.dial()
	c2, err := dialErr(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	cl := &client{t: t, c: c2, r: bufio.NewReader(c2)}
	c2.SetDeadline(time.Now().Add(time.Minute))
	cl.expect("-ERR [SYS/TEMP] ")
	c.cmd("QUIT", "+OK")
}

// TestAccountDeleted: a session whose account is deleted ends.
func TestAccountDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.login(testUser)
	if err := e.st.DeleteAccount(context.Background(), e.acct.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		c.send("NOOP")
		l := c.line()
		if strings.HasPrefix(l, "-ERR [SYS/PERM] ") {
			break
		}
		if l != "+OK" || time.Now().After(deadline) {
			t.Fatalf("NOOP: %q", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.closed()
}

// TestNoSignInWithoutTLSFromAfar: a client on another host (an injected
// non-loopback address) without TLS is offered no way to sign in and is
// refused every one, SCRAM included; after STLS all are offered, and
// SCRAM-SHA-256-PLUS only there (RFC 2595 §4, issue 14).
func TestNoSignInWithoutTLSFromAfar(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{remote: netip.MustParseAddr("203.0.113.7")})
	c := e.dial()
	c.cmd("CAPA", "+OK")
	for _, cp := range c.multi() {
		if cp == "USER" || strings.HasPrefix(cp, "SASL") {
			t.Errorf("sign-in offered without TLS: %q", cp)
		}
	}
	c.cmd("USER "+testUser, "-ERR [AUTH] Plaintext authentication disallowed")
	c.cmd("PASS "+testPassword, "-ERR")
	c.cmd("AUTH PLAIN "+plainResp(testUser, testPassword), "-ERR [AUTH] Plaintext authentication disallowed")
	c.cmd("AUTH SCRAM-SHA-256", "-ERR [AUTH] Plaintext authentication disallowed")
	c.cmd("AUTH SCRAM-SHA-256-PLUS", "-ERR Unsupported authentication mechanism")
	c.cmd("STLS", "+OK")
	tc := tlsClient(t, c)
	tc.cmd("CAPA", "+OK")
	if caps := tc.multi(); !slices.Contains(caps, "USER") || !slices.Contains(caps, "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN") {
		t.Errorf("CAPA after STLS: %q", caps)
	}
	tc.cmd("USER "+testUser, "+OK")
	tc.cmd("PASS "+testPassword, "+OK Logged in")
	tc.cmd("QUIT", "+OK")
}

// TestTopThenRetrOpensOnce: the body a TOP opens is kept for the RETR of
// the same message that clients often send next, so the body is read
// from the store once.
func TestTopThenRetrOpensOnce(t *testing.T) {
	t.Parallel()
	cs := &countingStore{}
	e := newEnv(t, envOptions{wrap: func(s Store) Store { cs.Store = s; return cs }})
	e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("TOP 1 0", "+OK")
	if got := string(c.multiRaw()); !strings.HasPrefix(crlf(msgA), got) {
		t.Fatalf("TOP 1 0 = %q", got)
	}
	c.cmd("RETR 1", "+OK")
	if got := string(c.multiRaw()); got != crlf(msgA) {
		t.Fatalf("RETR 1 = %q", got)
	}
	c.cmd("RETR 1", "+OK") // again: the body was given back, it is opened anew
	if got := string(c.multiRaw()); got != crlf(msgA) {
		t.Fatalf("second RETR 1 = %q", got)
	}
	c.cmd("QUIT", "+OK")
	c.closed()
	if got := cs.opens.Load(); got != 2 {
		t.Errorf("%d bodies opened for TOP 1, RETR 1, RETR 1; want 2", got)
	}
}
