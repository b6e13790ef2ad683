package imapserver

import (
	"bufio"
	"compress/flate"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/teststore"
)

// testServer is an imapserver on 127.0.0.1:0 over a real SQLite store in
// a temporary directory.
type testServer struct {
	t       testing.TB
	st      teststore.Store
	srv     *Server
	addr    string // plain, with STARTTLS
	tlsAddr string // implicit TLS
	tlsConf *tls.Config
}

const testPassword = "correct horse battery"

func newTestServer(t testing.TB, edit ...func(*Options)) *testServer {
	t.Helper()
	return newTestServerWith(t, nil, edit...)
}

// newTestServerWith also lets the test adjust the Server before it serves.
func newTestServerWith(t testing.TB, srvEdit func(*Server), edit ...func(*Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	// One read connection: a store read that waits for a second
	// connection of the pool while it holds one hangs here at once
	// (issue 11), instead of under load in production.
	st := teststore.Open(t, dir, teststore.Options{ReadConns: 1})
	tlsConf, err := netserve.TLSConfig("", "", dir, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{
		Store:     st,
		Auth:      auth.New(auth.Options{Store: st}),
		Hostname:  "imap.test",
		TLSConfig: tlsConf,
	}
	for _, f := range edit {
		f(&opt)
	}
	srv := New(opt)
	// Sessions park at every wait, so every test exercises parking
	// (TestParkAfterGrace covers the grace period).
	srv.parkAfter = 0
	if srvEdit != nil {
		srvEdit(srv)
	}
	ts := &testServer{t: t, st: st, srv: srv, tlsConf: tlsConf}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr, ts.tlsAddr = ln.Addr().String(), tln.Addr().String()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ln) }()
	go func() { done <- srv.ServeTLS(tln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range 2 {
			if err := <-done; err != ErrServerClosed {
				t.Errorf("serve returned %v", err)
			}
		}
		st.Close()
	})
	return ts
}

// parkedCount returns the number of parked sessions.
func (srv *Server) parkedCount() int {
	if p := srv.poll.Load(); p != nil {
		return p.len()
	}
	return 0
}

// waitParked waits until n sessions are parked.
func (ts *testServer) waitParked(n int) {
	ts.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for ts.srv.parkedCount() != n {
		if time.Now().After(deadline) {
			ts.t.Fatalf("%d sessions parked, want %d", ts.srv.parkedCount(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// addUser creates an account with testPassword.
func (ts *testServer) addUser(name string) store.AccountID {
	ts.t.Helper()
	hash, err := auth.HashPassword(testPassword)
	if err != nil {
		ts.t.Fatal(err)
	}
	a, err := ts.st.CreateAccount(context.Background(), name, hash)
	if err != nil {
		ts.t.Fatal(err)
	}
	return a.ID
}

// deliver appends a message to an account's mailbox through the store
// (as a delivery would) and returns its UID.
func (ts *testServer) deliver(acct store.AccountID, mailbox, msg string, flags ...string) mail.UID {
	ts.t.Helper()
	ctx := context.Background()
	mb, err := ts.st.Mailbox(ctx, acct, mailbox)
	if err != nil {
		ts.t.Fatal(err)
	}
	staged, err := ts.st.Stage(ctx, strings.NewReader(strings.ReplaceAll(msg, "\n", "\r\n")), 0)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer staged.Discard()
	res, err := ts.st.Append(ctx, acct, mb.ID, []store.NewMessage{{Body: staged, Flags: mail.NewFlags(flags...),
		InternalDate: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)}})
	if err != nil {
		ts.t.Fatal(err)
	}
	return res.UIDs[0]
}

// client is a raw IMAP connection for transcript tests.
type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
	// fw compresses what the client sends after COMPRESS DEFLATE (see
	// compressed).
	fw *flate.Writer
}

func (ts *testServer) dial() *client {
	ts.t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { c.Close() })
	cl := &client{t: ts.t, c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	g := cl.line()
	if !strings.HasPrefix(g, "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ") {
		ts.t.Fatalf("greeting %q", g)
	}
	return cl
}

// login dials and logs in as user.
func (ts *testServer) login(user string) *client {
	ts.t.Helper()
	c := ts.dial()
	c.ok("L1 LOGIN " + user + " \"" + testPassword + "\"")
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	if c.fw != nil {
		if _, err := io.WriteString(c.fw, s+"\r\n"); err != nil {
			c.t.Fatal(err)
		}
		if err := c.fw.Flush(); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
}

// line reads one response line; a literal at its end is read and
// appended, with its announcement, so a line holds one whole response.
func (c *client) line() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (after %q)", err, b.String())
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		m := literalAtEnd.FindStringSubmatch(l)
		if m == nil {
			return b.String()
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatalf("read literal: %v", err)
		}
		b.WriteString("\r\n")
		b.Write(buf)
	}
}

var literalAtEnd = regexp.MustCompile(`~?\{(\d+)\}$`)

// do sends a command and returns every response line up to and including
// the tagged one.
func (c *client) do(cmd string) []string {
	c.t.Helper()
	tag, _, _ := strings.Cut(cmd, " ")
	c.send(cmd)
	return c.until(tag)
}

// until reads lines up to the tagged response of tag.
func (c *client) until(tag string) []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
}

// ok runs a command that must succeed and returns its untagged lines.
func (c *client) ok(cmd string) []string {
	c.t.Helper()
	lines := c.do(cmd)
	last := lines[len(lines)-1]
	tag, _, _ := strings.Cut(cmd, " ")
	if !strings.HasPrefix(last, tag+" OK") {
		c.t.Fatalf("%s: %s", cmd, strings.Join(lines, "\n"))
	}
	return lines[:len(lines)-1]
}

// expect checks a transcript: the lines of one command exactly.
func (c *client) expect(cmd string, want ...string) {
	c.t.Helper()
	got := c.do(cmd)
	if !equalLines(got, want) {
		c.t.Fatalf("C: %s\ngot:\n%s\nwant:\n%s", cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// equalLines compares transcripts; "…" in a want line matches any text.
func equalLines(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !matchLine(got[i], want[i]) {
			return false
		}
	}
	return true
}

func matchLine(got, want string) bool {
	parts := strings.Split(want, "…")
	if len(parts) == 1 {
		return got == want
	}
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	rest := got[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(rest, p)
		}
		j := strings.Index(rest, p)
		if j < 0 {
			return false
		}
		rest = rest[j+len(p):]
	}
	return true
}

// expectLine reads one line and checks it.
func (c *client) expectLine(want string) {
	c.t.Helper()
	got := c.line()
	if !equalLines([]string{got}, []string{want}) {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func msg(subject, body string) string {
	return fmt.Sprintf("From: Alice <alice@example.org>\nTo: Bob <bob@example.org>\nSubject: %s\nDate: Fri, 1 Mar 2024 10:00:00 +0000\nMessage-ID: <%s@example.org>\n\n%s\n", subject, strings.ReplaceAll(subject, " ", "."), body)
}
