package smtpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

type testServer struct {
	addr  string
	srv   *Server
	store *fakeStore
	done  chan error
}

func startServer(t *testing.T, fs *fakeStore, mod func(*Options)) *testServer {
	t.Helper()
	d := delivery.New(delivery.Options{Store: fs, Hostname: "mx.example.org", Domains: []string{"example.org", "example.net"}, MaxMessageSize: 4096})
	opt := Options{LMTP: true, Deliverer: d, Hostname: "mx.example.org", MaxMessageSize: 4096, MaxRecipients: 100,
		CommandTimeout: time.Minute, DataTimeout: time.Minute}
	if mod != nil {
		mod(&opt)
	}
	ln, err := netserve.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(opt)
	ts := &testServer{addr: ln.Addr().String(), srv: s, store: fs, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() { ts.shutdown(t) })
	return ts
}

func (ts *testServer) shutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-ts.done:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	case <-ctx.Done():
		t.Error("Serve did not return")
	default:
		// Already collected by an earlier shutdown.
	}
}

type tc struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialT(t *testing.T, addr string) *tc {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &tc{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *tc) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// reply reads one (possibly multi-line) reply and returns its lines.
func (c *tc) reply() []string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
}

// expect reads one reply whose last line starts with want.
func (c *tc) expect(want string) []string {
	c.t.Helper()
	lines := c.reply()
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, want) {
		c.t.Fatalf("got %q, want %q", lines, want)
	}
	return lines
}

// do sends a command and expects a reply.
func (c *tc) do(cmd, want string) []string {
	c.t.Helper()
	c.send(cmd)
	return c.expect(want)
}

func (c *tc) expectClosed() {
	c.t.Helper()
	if line, err := c.r.ReadString('\n'); err == nil {
		c.t.Fatalf("got %q, want connection closed", line)
	}
}

func TestLMTPTranscript(t *testing.T) {
	fs := newFakeStore("Alice@example.org", "bob@example.org", "carol@example.net")
	fs.failFor["bob@example.org"] = errors.New("disk on fire")
	ts := startServer(t, fs, nil)
	c := dialT(t, ts.addr)
	c.expect("220 mx.example.org LMTP")
	c.do("EHLO client", "500 5.5.1")
	caps := c.do("LHLO mta.example.com", "250 ")
	for _, l := range caps {
		if strings.Contains(l, "STARTTLS") || strings.Contains(l, "AUTH") {
			t.Errorf("LMTP advertises %q", l)
		}
	}
	c.do("MAIL FROM:<sender@remote.example>", "250 ")
	c.do("RCPT TO:<alice@EXAMPLE.org>", "250 ")
	c.do("RCPT TO:<nobody@example.org>", "550 5.1.1")
	c.do("RCPT TO:<x@foreign.example>", "550 5.7.1")
	c.do("RCPT TO:<not an address>", "50")
	c.do("RCPT TO:<alice+lists@example.org>", "250 ")
	c.do("RCPT TO:<postmaster@example.net>", "250 ")
	c.do("RCPT TO:<bob@example.org>", "250 ")
	c.do("RCPT TO:<carol@example.net>", "250 ")
	c.do("DATA", "354 ")
	c.send("Subject: hello\r\nFrom: <sender@remote.example>\r\n\r\nline one\r\n..dot line\r\nlast")
	c.send(".")
	// RFC 2033 §4.2: one reply per successful RCPT, in order.
	c.expect("250 2.0.0 <alice@EXAMPLE.org>")
	c.expect("250 2.0.0 <alice+lists@example.org>")
	c.expect("250 2.0.0 <postmaster@example.net>")
	c.expect("451 4.3.0 <bob@example.org>")
	c.expect("250 2.0.0 <carol@example.net>")
	c.do("QUIT", "221 ")

	// alice, alice+lists and postmaster (first account) are one account:
	// one copy.
	msgs := fs.messages("alice@example.org")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(msgs))
	}
	body := string(msgs[0])
	if !strings.HasPrefix(body, "Return-Path: <sender@remote.example>\r\nReceived: from mta.example.com ([127.0.0.1])\r\n\tby mx.example.org (postfach) with LMTP id ") {
		t.Errorf("trace headers:\n%s", body)
	}
	if strings.Contains(body, "\tfor <") {
		t.Errorf("Received names a recipient of a multi-recipient message:\n%s", body)
	}
	if !strings.HasSuffix(body, "Subject: hello\r\nFrom: <sender@remote.example>\r\n\r\nline one\r\n.dot line\r\nlast\r\n") {
		t.Errorf("body not stored as sent (dot-unstuffed):\n%q", body)
	}
	if len(fs.messages("carol@example.net")) != 1 || len(fs.messages("bob@example.org")) != 0 {
		t.Errorf("carol %d bob %d", len(fs.messages("carol@example.net")), len(fs.messages("bob@example.org")))
	}
}

func TestLMTPStoreErrors(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		reply string
	}{
		{"disk full", store.ErrDiskFull, "452 4.3.1"},
		{"store failure", errors.New("i/o error"), "451 4.3.0"},
		{"store closed", store.ErrClosed, "421 4.3.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeStore("alice@example.org", "bob@example.org")
			fs.stageErr = tt.err
			ts := startServer(t, fs, nil)
			c := dialT(t, ts.addr)
			c.expect("220 ")
			c.do("LHLO x", "250 ")
			c.do("MAIL FROM:<>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
			c.do("RCPT TO:<bob@example.org>", "250 ")
			c.do("DATA", "354 ")
			c.send("Subject: x\r\n\r\nbody\r\n.")
			c.expect(tt.reply + " <alice@example.org>")
			c.expect(tt.reply + " <bob@example.org>")
			if n := len(fs.messages("alice@example.org")); n != 0 {
				t.Errorf("%d messages stored after a failure", n)
			}
		})
	}
}

func TestMessageTooBig(t *testing.T) {
	for _, lmtp := range []bool{true, false} {
		name := map[bool]string{true: "lmtp", false: "smtp"}[lmtp]
		t.Run(name, func(t *testing.T) {
			fs := newFakeStore("alice@example.org")
			ts := startServer(t, fs, func(o *Options) { o.LMTP = lmtp })
			c := dialT(t, ts.addr)
			c.expect("220 ")
			greet := map[bool]string{true: "LHLO", false: "EHLO"}[lmtp]
			caps := c.do(greet+" x", "250 ")
			if !strings.Contains(strings.Join(caps, "\n"), "SIZE 4096") {
				t.Errorf("SIZE not advertised: %q", caps)
			}
			c.do("MAIL FROM:<a@b.example> SIZE=100000", "552 5.3.4")
			c.do("MAIL FROM:<a@b.example>", "250 ")
			c.do("RCPT TO:<alice@example.org>", "250 ")
			c.do("DATA", "354 ")
			line := strings.Repeat("x", 70)
			for range 2000 { // ~140 KB, far over 4096
				c.send(line)
			}
			c.send(".")
			c.expect("552 5.3.4")
			// The session goes on.
			c.do("NOOP", "250 ")
			if n := len(fs.messages("alice@example.org")); n != 0 {
				t.Errorf("%d messages stored", n)
			}
			if fs.maxRead > 8192 {
				t.Errorf("store read %d bytes of an oversized message; the limit must stop the stream", fs.maxRead)
			}
		})
	}
}

func TestRecipientLimit(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, nil)
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	for range 100 {
		c.do("RCPT TO:<alice@example.org>", "250 ")
	}
	// RFC 5321 §4.5.3.1.10: too many recipients is 452.
	c.do("RCPT TO:<alice@example.org>", "452 4.5.3")
	c.do("RSET", "250 ")
}

func TestSMTPTranscript(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false })
	c := dialT(t, ts.addr)
	c.expect("220 mx.example.org ESMTP")
	caps := strings.Join(c.do("EHLO client.example", "250 "), "\n")
	if strings.Contains(caps, "AUTH") {
		t.Errorf("SMTP MX advertises AUTH: %q", caps)
	}
	c.do("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "5")
	c.do("MAIL FROM:<sender@remote.example>", "250 ")
	c.do("RCPT TO:<someone@relay.example>", "550 5.7.1")
	c.do("RCPT TO:<ghost@example.org>", "550 5.1.1")
	c.do("RCPT TO:<Alice@Example.ORG>", "250 ")
	c.do("DATA", "354 ")
	c.send("Subject: hi\n\nbare LF body")
	c.send(".")
	c.expect("250 2.0.0")
	c.do("MAIL FROM:<>", "250 ")
	// RFC 5321 §3.3: DATA before any RCPT is out of sequence.
	c.do("DATA", "503 5.5.1")
	c.do("QUIT", "221 ")
	msgs := fs.messages("alice@example.org")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	body := string(msgs[0])
	if !strings.Contains(body, "with ESMTP id ") || !strings.Contains(body, "\tfor <Alice@Example.ORG>;") {
		t.Errorf("Received header:\n%s", body)
	}
	if strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\n") {
		t.Errorf("bare LF stored: %q", body)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	cfg, err := netserve.TLSConfig("", "", t.TempDir(), "mx.example.org")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false; o.TLSConfig = cfg })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	caps := strings.Join(c.do("EHLO client", "250 "), "\n")
	if !strings.Contains(caps, "STARTTLS") {
		t.Fatalf("no STARTTLS in %q", caps)
	}
	c.do("STARTTLS", "220 ")
	tlsConn := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tlsConn.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = &tc{t: t, c: tlsConn, r: bufio.NewReader(tlsConn)}
	caps = strings.Join(c.do("EHLO client", "250 "), "\n")
	if strings.Contains(caps, "STARTTLS") {
		t.Errorf("STARTTLS offered again after TLS")
	}
	c.do("MAIL FROM:<s@r.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.send("Subject: tls\r\n\r\nsecret\r\n.")
	c.expect("250 ")
	if msgs := fs.messages("alice@example.org"); len(msgs) != 1 || !strings.Contains(string(msgs[0]), "with ESMTPS") {
		t.Errorf("messages: %q", msgs)
	}
}

func TestEmptyMessage(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("EHLO x", "250 ")
	c.do("MAIL FROM:<>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.send(".")
	// Trace headers make it non-empty for the store; the body itself was
	// empty, which is refused.
	c.expect("554 5.6.0")
}

func TestConnectionLimit(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.MaxConnsPerIP = 1 })
	a := dialT(t, ts.addr)
	a.expect("220 ")
	b := dialT(t, ts.addr)
	b.expect("421 4.7.0")
	b.expectClosed()
	a.do("NOOP", "250 ")
}

func TestShutdownGoodbye(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	fs.stageBlock = make(chan struct{})
	fs.stageStart = make(chan struct{})
	ts := startServer(t, fs, nil)
	idle := dialT(t, ts.addr)
	idle.expect("220 ")
	idle.do("LHLO x", "250 ")
	busy := dialT(t, ts.addr)
	busy.expect("220 ")
	busy.do("LHLO x", "250 ")
	busy.do("MAIL FROM:<a@b.example>", "250 ")
	busy.do("RCPT TO:<alice@example.org>", "250 ")
	busy.do("DATA", "354 ")
	busy.send("Subject: in flight\r\n\r\nbody\r\n.")
	<-fs.stageStart // the message is being stored

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	idle.expect("421 4.3.2 mx.example.org Service shutting down")
	idle.expectClosed()
	close(fs.stageBlock)
	// The in-flight message is stored and acknowledged, then goodbye.
	busy.expect("250 2.0.0 <alice@example.org>")
	busy.expect("421 4.3.2 mx.example.org Service shutting down")
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := len(fs.messages("alice@example.org")); n != 1 {
		t.Fatalf("%d messages after shutdown, want 1", n)
	}
	if err := <-ts.done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	ts.done <- ErrServerClosed // for the cleanup's check
}

func TestCommandTimeout(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	ts := startServer(t, fs, func(o *Options) { o.CommandTimeout = 200 * time.Millisecond })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	// RFC 5321 §4.5.3.2.7: a silent client is disconnected with 421.
	c.expect("421 4.4.2")
	c.expectClosed()
}
