package smtpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/testenv"
)

// submitQueue records what submission hands to the outbound queue.
type submitQueue struct {
	mu   sync.Mutex
	msgs []submitQueued
}

type submitQueued struct {
	out  delivery.Outbound
	body []byte
}

func (q *submitQueue) Enqueue(ctx context.Context, m *delivery.Outbound, body io.Reader) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, submitQueued{out: *m, body: b})
	return "q" + string(rune('0'+len(q.msgs))), nil
}

func (q *submitQueue) all() []submitQueued {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]submitQueued(nil), q.msgs...)
}

// subConn is a raw SMTP client for transcripts.
type subConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func subDial(t *testing.T, addr string, implicitTLS bool) *subConn {
	t.Helper()
	var c net.Conn
	var err error
	if implicitTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	s := &subConn{t: t, c: c, r: bufio.NewReader(c)}
	s.expect("220 ")
	return s
}

func (s *subConn) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.c, line+"\r\n"); err != nil {
		s.t.Fatalf("send %q: %v", line, err)
	}
}

func (s *subConn) expect(want string) string {
	s.t.Helper()
	var lines []string
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read reply: %v (so far %q), want %q", err, lines, want)
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			break
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], want) {
		s.t.Fatalf("got %q, want %q", lines, want)
	}
	return strings.Join(lines, "\n")
}

func (s *subConn) do(cmd, want string) string {
	s.t.Helper()
	s.send(cmd)
	return s.expect(want)
}

// login says EHLO and signs in with AUTH PLAIN.
func (s *subConn) login(user, password string) {
	s.t.Helper()
	s.do("EHLO client.example", "250 ")
	s.do("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)), "235 2.7.0 ")
}

// hasHeader reports whether a stored message's header has the line.
func hasHeader(msg []byte, line string) bool {
	h, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	return bytes.HasPrefix(h, []byte(line)) || bytes.Contains(h, []byte("\r\n"+line))
}

// TestSubmissionTranscript: the submission listener of the whole server,
// as RFC 6409 and RFC 4954 describe it: AUTH before MAIL, the sender and
// the From: header checked against the account's addresses (its
// +detail forms and aliases pass), local recipients delivered with Date:
// and Message-ID: added and no Bcc:, the remote ones handed to the
// queue, and a copy in the sender's Sent with the Bcc recipients.
func TestSubmissionTranscript(t *testing.T) {
	t.Parallel()
	q := &submitQueue{}
	env := testenv.Start(t, testenv.Options{Enqueuer: q})
	env.AddUser("alice@"+testenv.Domain, "alice password")
	env.AddUser("bob@"+testenv.Domain, "bob password")
	if _, err := env.Server.Admin().AliasAdd(context.Background(), "team@"+testenv.Domain, []string{"alice@" + testenv.Domain, "bob@" + testenv.Domain}); err != nil {
		t.Fatal(err)
	}

	s := subDial(t, env.Addr("submission"), false)
	caps := s.do("EHLO client.example", "250 ")
	for _, want := range []string{"AUTH SCRAM-SHA-256 PLAIN LOGIN", "STARTTLS", "PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "SIZE ", "BURL imap"} {
		if !strings.Contains(caps, want) {
			t.Errorf("EHLO lacks %q:\n%s", want, caps)
		}
	}
	s.do("MAIL FROM:<alice@example.org>", "530 5.7.0 ")
	s.do("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00wrong")), "535 5.7.8 ")
	s.do("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00alice password")), "235 2.7.0 ")
	s.do("MAIL FROM:<bob@example.org>", "553 5.7.1 ")
	s.do("MAIL FROM:<>", "553 5.7.1 ")
	s.do("MAIL FROM:<alice@example.net>", "553 5.7.1 ")
	s.do("MAIL FROM:<Alice+lists@Example.org> AUTH=<>", "250 ")
	s.do("RCPT TO:<bob@example.org>", "250 ")
	s.do("RCPT TO:<nobody@example.org>", "550 5.1.1 ")
	s.do("RCPT TO:<carol@remote.example>", "250 ")
	s.do("DATA", "354 ")
	s.send("From: Bob <bob@example.org>\r\nTo: bob@example.org\r\nSubject: spoofed\r\n\r\nnot from alice\r\n.")
	s.expect("550 5.7.1 ")
	s.do("MAIL FROM:<team@example.org>", "250 ")
	s.do("RCPT TO:<bob@example.org>", "250 ")
	s.do("RCPT TO:<carol@remote.example>", "250 ")
	s.do("RCPT TO:<dave@remote.example>", "250 ")
	s.do("DATA", "354 ")
	s.send("From: Team <team@example.org>\r\nTo: bob@example.org, carol@remote.example\r\nBcc: dave@remote.example\r\nSubject: hello\r\n\r\nhi all\r\n.")
	s.expect("250 2.0.0 ")
	s.do("QUIT", "221 ")

	inbox := env.Messages("bob@"+testenv.Domain, "INBOX")
	if len(inbox) != 1 {
		t.Fatalf("bob has %d messages, want the one that was not spoofed", len(inbox))
	}
	m := inbox[0]
	for _, want := range []string{"Date: ", "Message-ID: <", "From: Team <team@example.org>", "Subject: hello"} {
		if !hasHeader(m, want) {
			t.Errorf("bob's copy lacks %q:\n%s", want, m)
		}
	}
	if hasHeader(m, "Bcc:") || !bytes.Contains(m, []byte("with ESMTPA")) {
		t.Errorf("bob's copy has Bcc: or no ESMTPA:\n%s", m)
	}
	qd := q.all()
	if len(qd) != 1 {
		t.Fatalf("queue got %d messages, want 1", len(qd))
	}
	if o := qd[0].out; o.From != "team@example.org" || strings.Join(o.To, ",") != "carol@remote.example,dave@remote.example" || o.Account == 0 {
		t.Errorf("queued %+v", o)
	}
	if !bytes.HasPrefix(qd[0].body, []byte("Received: from client.example")) || hasHeader(qd[0].body, "Bcc:") ||
		!hasHeader(qd[0].body, "Message-ID: <") || bytes.Contains(qd[0].body, []byte("\n\n")) {
		t.Errorf("queued message:\n%s", qd[0].body)
	}
	sent := env.Messages("alice@"+testenv.Domain, "Sent")
	if len(sent) != 1 {
		t.Fatalf("alice's Sent has %d messages, want 1", len(sent))
	}
	if !hasHeader(sent[0], "Bcc: dave@remote.example") || hasHeader(sent[0], "Received:") || hasHeader(sent[0], "Return-Path:") {
		t.Errorf("Sent copy:\n%s", sent[0])
	}
	// bob's copy and the Sent copy carry the same Message-ID.
	id := func(m []byte) string {
		_, after, _ := bytes.Cut(m, []byte("Message-ID: "))
		line, _, _ := bytes.Cut(after, []byte("\r\n"))
		return string(line)
	}
	if id(sent[0]) != id(m) || id(m) == "" {
		t.Errorf("Message-IDs %q and %q", id(sent[0]), id(m))
	}
}

// TestSubmissionSaveSentOff: with submission.save_sent off a local
// delivery leaves Sent empty. (Remote recipients go to the server's own
// queue: internal/queue's TestSubmissionToRemote.)
func TestSubmissionSaveSentOff(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Submission.SaveSent = false }})
	env.AddUser("alice@"+testenv.Domain, "alice password")
	s := subDial(t, env.Addr("submissions"), true)
	s.login("alice@example.org", "alice password")
	s.do("MAIL FROM:<alice@example.org>", "250 ")
	s.do("RCPT TO:<alice@example.org>", "250 ")
	// The chunk follows the command (RFC 3030 §2).
	msg := "From: alice@example.org\r\nSubject: note\r\n\r\nhi\r\n"
	io.WriteString(s.c, "BDAT "+strconv.Itoa(len(msg))+" LAST\r\n"+msg)
	s.expect("250 2.0.0 ")
	if n := len(env.Messages("alice@"+testenv.Domain, "INBOX")); n != 1 {
		t.Errorf("INBOX has %d messages", n)
	}
	if n := len(env.Messages("alice@"+testenv.Domain, "Sent")); n != 0 {
		t.Errorf("Sent has %d messages with save_sent off", n)
	}
}

// TestSubmissionHourlyLimits: past max_messages_per_hour MAIL gets 451
// 4.7.1, past max_recipients_per_hour RCPT does, across both listeners.
func TestSubmissionHourlyLimits(t *testing.T) {
	t.Parallel()
	q := &submitQueue{}
	env := testenv.Start(t, testenv.Options{Enqueuer: q, Config: func(c *config.Config) {
		c.Submission.MaxMessagesPerHour = 2
		c.Submission.MaxRecipientsPerHour = 3
	}})
	env.AddUser("alice@"+testenv.Domain, "alice password")
	env.AddUser("bob@"+testenv.Domain, "bob password")
	send := func(s *subConn, rcpts ...string) {
		s.do("MAIL FROM:<alice@example.org>", "250 ")
		for _, r := range rcpts {
			s.do("RCPT TO:<"+r+">", "250 ")
		}
		s.do("DATA", "354 ")
		s.send("From: alice@example.org\r\n\r\nx\r\n.")
		s.expect("250 ")
	}
	s := subDial(t, env.Addr("submission"), false)
	s.login("alice@example.org", "alice password")
	send(s, "a@remote.example", "b@remote.example")
	s2 := subDial(t, env.Addr("submissions"), true)
	s2.login("alice@example.org", "alice password")
	s2.do("MAIL FROM:<alice@example.org>", "250 ")
	s2.do("RCPT TO:<bob@example.org>", "250 ")
	s2.do("RCPT TO:<c@remote.example>", "451 4.7.1 ")
	s2.do("DATA", "354 ")
	s2.send("From: alice@example.org\r\n\r\nx\r\n.")
	s2.expect("250 ")
	s.do("MAIL FROM:<alice@example.org>", "451 4.7.1 ")
	// Another account has its own counts.
	s3 := subDial(t, env.Addr("submission"), false)
	s3.login("bob@example.org", "bob password")
	s3.do("MAIL FROM:<bob@example.org>", "250 ")
}

// TestSubmissionSwaks: swaks, as a new user would test a server, over
// STARTTLS and implicit TLS with AUTH PLAIN and LOGIN.
func TestSubmissionSwaks(t *testing.T) {
	t.Parallel()
	swaks := lookTool(t, "swaks")
	q := &submitQueue{}
	env := testenv.Start(t, testenv.Options{Enqueuer: q})
	env.AddUser("alice@"+testenv.Domain, "alice password")
	env.AddUser("bob@"+testenv.Domain, "bob password")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, swaks, args...).CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("swaks %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run(true, "--server", env.Addr("submission"), "--tls", "--auth", "PLAIN", "--auth-user", "alice@example.org",
		"--auth-password", "alice password", "--from", "alice@example.org", "--to", "bob@example.org,carol@remote.example",
		"--header", "Subject: swaks starttls")
	run(true, "--server", env.Addr("submissions"), "--tlsc", "--auth", "LOGIN", "--auth-user", "alice@example.org",
		"--auth-password", "alice password", "--from", "alice@example.org", "--to", "bob@example.org",
		"--header", "Subject: swaks implicit")
	out := run(false, "--server", env.Addr("submissions"), "--tlsc", "--auth", "PLAIN", "--auth-user", "alice@example.org",
		"--auth-password", "alice password", "--from", "bob@example.org", "--to", "bob@example.org")
	if !strings.Contains(out, "553 5.7.1") {
		t.Errorf("spoofed sender: %s", out)
	}
	out = run(false, "--server", env.Addr("submission"), "--from", "alice@example.org", "--to", "bob@example.org")
	if !strings.Contains(out, "530 5.7.0") {
		t.Errorf("no AUTH: %s", out)
	}
	if n := len(env.Messages("bob@"+testenv.Domain, "INBOX")); n != 2 {
		t.Errorf("bob has %d messages, want 2", n)
	}
	if n := len(env.Messages("alice@"+testenv.Domain, "Sent")); n != 2 {
		t.Errorf("alice's Sent has %d messages, want 2", n)
	}
	if qd := q.all(); len(qd) != 1 || qd[0].out.To[0] != "carol@remote.example" {
		t.Errorf("queued %+v", qd)
	}
}

// lookTool finds an outside client; with POSTFACH_REQUIRE_TOOLS=1 (as in
// CI) a missing one fails the test instead of skipping it.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found and POSTFACH_REQUIRE_TOOLS=1: %v", name, err)
	}
	t.Skipf("%s not installed (set POSTFACH_REQUIRE_TOOLS=1 to make this a failure): %v", name, err)
	return ""
}
