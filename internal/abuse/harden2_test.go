package abuse

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// The second round of hardening (issues 11 and 12, after outside
// testing): sessions that make no progress, login delays past the login
// deadline, and what hostile or sloppy clients send. Helpers of this file
// are prefixed harden2.

// harden2Conn is a raw line client. Every read and write is bounded by a
// 60 s deadline.
type harden2Conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// harden2Dial connects to a listener of env.
func harden2Dial(t *testing.T, env *testenv.Env, listener string) *harden2Conn {
	t.Helper()
	return harden2DialFrom(t, env, listener, "127.0.0.1")
}

// harden2DialFrom connects to a listener of env from a loopback address
// (all of 127.0.0.0/8 reaches a server on 127.0.0.1 on Linux), so that a
// test is a client of its own for the guessing protection.
func harden2DialFrom(t *testing.T, env *testenv.Env, listener, from string) *harden2Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
	c, err := d.Dial("tcp", env.Addr(listener))
	if err != nil {
		t.Fatalf("dial %s: %v", listener, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return &harden2Conn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (h *harden2Conn) write(s string) {
	h.t.Helper()
	if _, err := io.WriteString(h.c, s); err != nil {
		h.t.Fatalf("write: %v", err)
	}
}

func (h *harden2Conn) send(line string) { h.t.Helper(); h.write(line + "\r\n") }

// line reads one line without its CRLF.
func (h *harden2Conn) line() string {
	h.t.Helper()
	l, err := h.r.ReadString('\n')
	if err != nil {
		h.t.Fatalf("read: %v (so far %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads lines until one starts with prefix, skipping IMAP
// untagged responses and SMTP continuation lines, and returns it.
func (h *harden2Conn) expect(prefix string) string {
	h.t.Helper()
	for {
		l := h.line()
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if strings.HasPrefix(l, "* ") || len(l) > 3 && l[3] == '-' {
			continue
		}
		h.t.Fatalf("got %q, want %q", l, prefix)
	}
}

// until reads lines until one starts with prefix and returns all of them.
func (h *harden2Conn) until(prefix string) []string {
	h.t.Helper()
	var out []string
	for {
		l := h.line()
		out = append(out, l)
		if strings.HasPrefix(l, prefix) {
			return out
		}
	}
}

// closed reads until the server closes the connection and returns what
// it sent before.
func (h *harden2Conn) closed() []string {
	h.t.Helper()
	var lines []string
	for {
		l, err := h.r.ReadString('\n')
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				h.t.Fatalf("connection still open; got %d lines, the last %q", len(lines), lines[max(0, len(lines)-3):])
			}
			return lines
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
	}
}

// harden2User creates an account with a cheap bcrypt hash.
func harden2User(t *testing.T, env *testenv.Env, name, password string) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store().CreateAccount(context.Background(), name, string(h)); err != nil {
		t.Fatal(err)
	}
}

// harden2Env starts a server with alice@example.org (password "alice pw")
// and the config edited by f.
func harden2Env(t *testing.T, f func(c *config.Config)) *testenv.Env {
	t.Helper()
	env := testenv.Start(t, testenv.Options{Config: f})
	harden2User(t, env, "alice@example.org", "alice pw")
	return env
}

// harden2SMTP connects to the SMTP or LMTP listener and greets.
func harden2SMTP(t *testing.T, env *testenv.Env, listener string) *harden2Conn {
	t.Helper()
	c := harden2Dial(t, env, listener)
	c.expect("220 ")
	if listener == "lmtp" {
		c.send("LHLO client.example")
	} else {
		c.send("EHLO client.example")
	}
	c.expect("250 ")
	return c
}

// harden2Mail sends one message to alice over an SMTP or LMTP session.
func harden2Mail(c *harden2Conn, subject string) {
	c.t.Helper()
	c.send("MAIL FROM:<bob@example.net>")
	c.expect("250 ")
	c.send("RCPT TO:<alice@example.org>")
	c.expect("250 ")
	c.send("DATA")
	c.expect("354 ")
	c.write("Subject: " + subject + "\r\n\r\nbody\r\n.\r\n")
	c.expect("250 ")
}

// TestHarden2SMTPJunkCommands: SMTP and LMTP sessions that send commands
// making no progress (NOOP, RSET, HELP, VRFY, EHLO) are closed with 421
// 4.7.0 after limits.junk_commands of them without a message in between;
// a message starts the count again. (Before the fix, any number was
// answered, and each restarted the command timeout: a client sending one
// every 4 minutes held its slot for ever.)
func TestHarden2SMTPJunkCommands(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, func(c *config.Config) { c.Limits.JunkCommands = 6 })
	for _, l := range []string{"smtp", "lmtp"} {
		c := harden2SMTP(t, env, l) // the greeting is the first
		for i, cmd := range []string{"NOOP", "RSET", "HELP", "VRFY <alice@example.org>"} {
			c.send(cmd)
			if got := c.line(); got[0] != '2' {
				t.Fatalf("%s: command %d %q: %q", l, i, cmd, got)
			}
		}
		// A message starts the count again.
		harden2Mail(c, "progress")
		for range 6 {
			c.send("NOOP")
			c.expect("250 ")
		}
		c.send("NOOP")
		got := c.closed()
		if len(got) != 1 || !strings.HasPrefix(got[0], "421 4.7.0 ") {
			t.Fatalf("%s: the junk command over the limit: %q", l, got)
		}
	}
	if n := len(env.Messages("alice@example.org", "INBOX")); n != 2 {
		t.Fatalf("%d messages delivered, want 2", n)
	}
}

// TestHarden2SMTPProgressTimeout: an SMTP or LMTP session that keeps
// sending NOOP well within the command timeout, but no mail, is closed
// with 421 4.7.0 at limits.progress_timeout, also while it waits for a
// command; one that sends mail stays.
func TestHarden2SMTPProgressTimeout(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, func(c *config.Config) {
		c.Limits.SMTPCommandTimeout = config.Duration(2 * time.Second)
		c.Limits.ProgressTimeout = config.Duration(2 * time.Second)
	})
	for _, l := range []string{"smtp", "lmtp"} {
		c := harden2SMTP(t, env, l)
		var last string
		for i := 0; ; i++ {
			c.send("NOOP")
			last = c.line()
			if !strings.HasPrefix(last, "250 ") {
				break
			}
			if i > 200 {
				t.Fatalf("%s: still open after %d NOOPs", l, i)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.HasPrefix(last, "421 4.7.0 ") {
			t.Fatalf("%s: %q", l, last)
		}
		c.closed()

		// Waiting: closed at the deadline, before the command timeout
		// would have been reached twice over.
		w := harden2SMTP(t, env, l)
		if got := w.closed(); len(got) != 1 || !strings.HasPrefix(got[0], "421 4.7.0 ") {
			t.Fatalf("%s waiting: %q", l, got)
		}

		// Mail keeps a session going past the deadline.
		m := harden2SMTP(t, env, l)
		for range 5 {
			harden2Mail(m, "steady")
			time.Sleep(time.Second)
		}
		m.send("QUIT")
		m.expect("221 ")
	}
}

// harden2POP3 logs in to POP3 as alice.
func harden2POP3(t *testing.T, env *testenv.Env) *harden2Conn {
	t.Helper()
	c := harden2Dial(t, env, "pop3")
	c.expect("+OK")
	c.send("USER alice@example.org")
	c.expect("+OK")
	c.send("PASS alice pw")
	c.expect("+OK")
	return c
}

// TestHarden2POP3NoProgress: after login, a POP3 session is closed
// without UPDATE after limits.junk_commands commands that retrieve
// nothing, and, silently as at an idle timeout, at
// limits.progress_timeout without a RETR, TOP or DELE; before login the
// login timeout holds against CAPA (TestGuardPOP3LoginTimeout). Nothing
// marked deleted is removed.
func TestHarden2POP3NoProgress(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, func(c *config.Config) {
		c.Limits.JunkCommands = 5
		c.Limits.SMTPCommandTimeout = config.Duration(2 * time.Second)
		c.Limits.ProgressTimeout = config.Duration(2 * time.Second)
	})
	s := harden2SMTP(t, env, "lmtp")
	harden2Mail(s, "one")
	harden2Mail(s, "two")

	c := harden2POP3(t, env)
	c.send("DELE 1")
	c.expect("+OK")
	for _, cmd := range []string{"STAT", "NOOP", "LIST", "UIDL", "LIST 2", "UIDL 2", "CAPA"} {
		c.send(cmd)
		c.until("+OK")
		if strings.HasPrefix(cmd, "LIST") && cmd != "LIST 2" || cmd == "UIDL" || cmd == "CAPA" {
			c.until(".")
		}
	}
	c.send("NOOP")
	got := c.closed()
	if len(got) != 1 || !strings.HasPrefix(got[0], "-ERR ") {
		t.Fatalf("junk over the limit: %q", got)
	}
	if n := len(env.Messages("alice@example.org", "INBOX")); n != 2 {
		t.Fatalf("%d messages in INBOX, want 2: no UPDATE", n)
	}

	w := harden2POP3(t, env)
	for i := 0; ; i++ {
		w.send("LIST 1")
		l, err := w.r.ReadString('\n')
		if err != nil {
			break
		}
		if !strings.HasPrefix(l, "+OK") {
			t.Fatalf("LIST 1: %q", l)
		}
		if i > 200 {
			t.Fatal("still open after 200 LIST commands")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := w.closed(); len(got) != 0 {
		t.Fatalf("progress timeout: %q", got)
	}

	// RETR is progress.
	r := harden2POP3(t, env)
	for range 4 {
		r.send("RETR 1")
		r.expect("+OK")
		r.until(".")
		time.Sleep(time.Second)
	}
	r.send("QUIT")
	r.expect("+OK")
}

// harden2SlowGuard makes every failed login of a client after the first
// delay the next one (1 s, 2 s, 4 s, ...) and gives a client 3 s to log
// in.
func harden2SlowGuard(c *config.Config) {
	c.Limits.LoginTimeout = config.Duration(3 * time.Second)
	c.Auth.IPDelayAfter = 1
	c.Auth.IPMaxDelay = config.Duration(time.Minute)
}

// TestHarden2LoginDelayWithinLoginTimeout: the guessing protection's
// delay before a failed login's answer never outlasts the session's
// login deadline. A guesser whose next attempt would wait longer than it
// has left is told at the deadline that its time is up (IMAP BYE, POP3
// -ERR [SYS/TEMP]) and the connection closes then. (Before the fix, the
// session slept the whole delay past limits.login_timeout and answered
// NO / -ERR [AUTH] afterwards.)
func TestHarden2LoginDelayWithinLoginTimeout(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, harden2SlowGuard)
	t.Run("imap", func(t *testing.T) {
		t.Parallel()
		for i := range 5 {
			c := harden2DialFrom(t, env, "imap", "127.0.0.2")
			c.expect("* OK ")
			c.send("a LOGIN alice@example.org wrong")
			l := c.line()
			if l == "* BYE Login timeout, closing connection" {
				c.closed()
				return
			}
			if !strings.HasPrefix(l, "a NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("attempt %d: %q", i+1, l)
			}
			c.c.Close()
		}
		t.Fatal("every delayed login was answered, also past the login deadline")
	})
	t.Run("pop3", func(t *testing.T) {
		t.Parallel()
		for i := range 5 {
			c := harden2DialFrom(t, env, "pop3", "127.0.0.3")
			c.expect("+OK")
			c.send("USER alice@example.org")
			c.expect("+OK")
			c.send("PASS wrong")
			l := c.line()
			if l == "-ERR [SYS/TEMP] Login timeout, closing connection" {
				c.closed()
				return
			}
			if !strings.HasPrefix(l, "-ERR [AUTH]") {
				t.Fatalf("attempt %d: %q", i+1, l)
			}
			c.c.Close()
		}
		t.Fatal("every delayed login was answered, also past the login deadline")
	})
	t.Run("imap authenticate", func(t *testing.T) {
		t.Parallel()
		for i := range 5 {
			c := harden2DialFrom(t, env, "imap", "127.0.0.4")
			c.expect("* OK ")
			// AUTHENTICATE PLAIN with an initial response (SASL-IR).
			c.send("a AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00wrong")))
			l := c.line()
			if l == "* BYE Login timeout, closing connection" {
				c.closed()
				return
			}
			if !strings.HasPrefix(l, "a NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("attempt %d: %q", i+1, l)
			}
			c.c.Close()
		}
		t.Fatal("every delayed login was answered, also past the login deadline")
	})
	t.Run("submission", func(t *testing.T) {
		t.Parallel()
		for i := range 5 {
			c := harden2DialFrom(t, env, "submission", "127.0.0.6")
			c.expect("220 ")
			c.send("EHLO harden2.example")
			for !strings.HasPrefix(c.line(), "250 ") {
			}
			c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00wrong")))
			l := c.line()
			if strings.HasPrefix(l, "421 4.7.0 ") && strings.HasSuffix(l, "Login timeout, closing connection") {
				c.closed()
				return
			}
			if !strings.HasPrefix(l, "535 ") {
				t.Fatalf("attempt %d: %q", i+1, l)
			}
			c.c.Close()
		}
		t.Fatal("every delayed login was answered, also past the login deadline")
	})
	// The owner, from an address of its own, logs in.
	c := harden2DialFrom(t, env, "imap", "127.0.0.5")
	c.expect("* OK ")
	c.send("a LOGIN alice@example.org \"alice pw\"")
	c.expect("a OK ")
}

// harden2Bin is the content of a binary part: bare LF, bare CR, CRLF and
// NUL, which must come back as they are from BINARY[].
const harden2Bin = "bin\nary\r\x00da\r\nta\rx"

// harden2LFMessage is a MIME message with bare LF line endings, a bare
// CR and a CR before an LF in its text part, and, when binary is set, a
// part with Content-Transfer-Encoding binary holding harden2Bin.
func harden2LFMessage(subject string, binary bool) string {
	m := "From: bob@example.net\nSubject: " + subject + "\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n" +
		"line one\r\nline two\rline three\n.dot line\n"
	if binary {
		m += "--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n" + harden2Bin + "\n"
	}
	return m + "--b--\n"
}

// harden2BareEnds returns the offsets of bare CRs and bare LFs in b.
func harden2BareEnds(b []byte) []int {
	var bad []int
	for i, c := range b {
		switch {
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			bad = append(bad, i)
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			bad = append(bad, i)
		}
	}
	return bad
}

// harden2Literal reads a response line that may end in a literal
// ("{n}" or "~{n}") and returns the line with the literal's data in
// place of the announcement, and the data.
func (h *harden2Conn) literalLine() (string, []byte) {
	h.t.Helper()
	l := h.line()
	i := strings.LastIndexByte(l, '{')
	if i < 0 || !strings.HasSuffix(l, "}") {
		return l, nil
	}
	n, err := strconv.Atoi(l[i+1 : len(l)-1])
	if err != nil {
		return l, nil
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(h.r, data); err != nil {
		h.t.Fatalf("read literal: %v", err)
	}
	return l + string(data) + h.line(), data
}

// TestHarden2StoredLineEndings: whichever way a message enters the store
// (APPEND with a literal or a literal8, MULTIAPPEND, CATENATE of
// literals, literal8s and a URL, REPLACE, SMTP DATA and BDAT, LMTP,
// postfach deliver), it is stored with CRLF line endings and no bare CR
// or LF; the content of a binary part of a literal8 is kept (stored
// base64 encoded, RFC 3516 §4.3) and BINARY[] gives it back exactly.
// (Before the fix, a literal8 APPEND, and a literal8 part of a CATENATE,
// kept their bare LFs and CRs.)
func TestHarden2StoredLineEndings(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, nil)
	const user = "alice@example.org"

	c := harden2Dial(t, env, "imap")
	c.expect("* OK ")
	c.send(`a LOGIN alice@example.org "alice pw"`)
	c.expect("a OK ")
	lit := func(s string) string { return "{" + strconv.Itoa(len(s)) + "+}\r\n" + s }
	lit8 := func(s string) string { return "~{" + strconv.Itoa(len(s)) + "+}\r\n" + s }
	type entry struct {
		name   string
		binary bool // has a binary part, from a literal8
	}
	var entries []entry
	imapCmd := func(tag, cmd string, names ...entry) {
		t.Helper()
		c.write(tag + " " + cmd + "\r\n")
		if l := c.expect(tag + " "); !strings.HasPrefix(l, tag+" OK ") {
			t.Fatalf("%s: %q", names[0].name, l)
		}
		entries = append(entries, names...)
	}
	imapCmd("b1", "APPEND INBOX "+lit(harden2LFMessage("literal", true)), entry{"APPEND literal", false})
	imapCmd("b2", "APPEND INBOX "+lit8(harden2LFMessage("literal8", true)), entry{"APPEND literal8", true})
	imapCmd("b3", "APPEND INBOX "+lit(harden2LFMessage("multi 1", false))+" "+lit8(harden2LFMessage("multi 2", true)),
		entry{"MULTIAPPEND literal", false}, entry{"MULTIAPPEND literal8", true})
	whole := harden2LFMessage("catenate", true)
	cut := strings.Index(whole, "--b\nContent-Type: application")
	imapCmd("b4", "APPEND INBOX CATENATE (TEXT "+lit(whole[:cut])+" TEXT "+lit8(whole[cut:])+")", entry{"CATENATE literal8", true})
	imapCmd("b5", `APPEND INBOX CATENATE (URL "/INBOX;UIDVALIDITY=`+harden2UIDValidity(t, c)+`/;UID=2" TEXT `+lit("\n")+")",
		entry{"CATENATE URL", true})
	c.send("b6 SELECT INBOX")
	c.expect("b6 OK ")
	imapCmd("b7", "REPLACE 1 INBOX "+lit8(harden2LFMessage("replace", true)), entry{"REPLACE literal8", true})
	// REPLACE expunged message 1 (APPEND literal): it is checked in its
	// new form, at the end of the list.
	entries = entries[1:]

	smtp := harden2SMTP(t, env, "smtp")
	stuffed := strings.ReplaceAll(harden2LFMessage("smtp", false), "\n.", "\n..")
	smtp.send("MAIL FROM:<bob@example.net>")
	smtp.expect("250 ")
	smtp.send("RCPT TO:<alice@example.org>")
	smtp.expect("250 ")
	smtp.send("DATA")
	smtp.expect("354 ")
	smtp.write(stuffed + "\r\n.\r\n")
	smtp.expect("250 ")
	bdat := harden2LFMessage("bdat", true)
	smtp.send("MAIL FROM:<bob@example.net>")
	smtp.expect("250 ")
	smtp.send("RCPT TO:<alice@example.org>")
	smtp.expect("250 ")
	smtp.write("BDAT " + strconv.Itoa(len(bdat)) + " LAST\r\n" + bdat)
	smtp.expect("250 ")
	lmtp := harden2SMTP(t, env, "lmtp")
	harden2MailRaw(lmtp, strings.ReplaceAll(harden2LFMessage("lmtp", true), "\n.", "\n.."))
	entries = append(entries, entry{"SMTP DATA", false}, entry{"SMTP BDAT", false}, entry{"LMTP", false})

	cfg := filepath.Join(t.TempDir(), "postfach.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\ndomains = [%q]\n", env.Config.DataDir, testenv.Domain)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.BuildBinary(t), "deliver", "--config", cfg, "--to", user)
	cmd.Env = append(os.Environ(), "POSTFACH_CONFIG=")
	cmd.Stdin = strings.NewReader(harden2LFMessage("deliver", true))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postfach deliver: %v\n%s", err, out)
	}
	entries = append(entries, entry{"postfach deliver", false}, entry{"REPLACE's expunged APPEND literal", false})

	msgs := env.Messages(user, "INBOX")
	// The stored order is by UID; REPLACE's message came before SMTP's.
	order := []string{"APPEND literal8", "MULTIAPPEND literal", "MULTIAPPEND literal8", "CATENATE literal8",
		"CATENATE URL", "REPLACE literal8", "SMTP DATA", "SMTP BDAT", "LMTP", "postfach deliver"}
	if len(msgs) != len(order) {
		t.Fatalf("%d messages stored, want %d", len(msgs), len(order))
	}
	binary := map[string]bool{}
	for _, e := range entries {
		binary[e.name] = e.binary
	}
	for i, m := range msgs {
		name := order[i]
		if bad := harden2BareEnds(m); len(bad) > 0 {
			t.Errorf("%s: bare CR or LF at offsets %v in %q", name, bad, m)
		}
		if !strings.Contains(string(m), "line one\r\nline two\r\nline three\r\n") {
			t.Errorf("%s: text part not stored with CRLF line endings: %q", name, m)
		}
		if strings.Contains(string(m), "\r\n..dot line") {
			t.Errorf("%s: dot-stuffing kept: %q", name, m)
		}
		if binary[name] {
			c.send("x" + strconv.Itoa(i) + " FETCH " + strconv.Itoa(i+1) + " (BINARY.PEEK[2])")
			l, data := c.literalLine()
			if string(data) != harden2Bin {
				t.Errorf("%s: BINARY[2] is %q (%q), want %q", name, data, l, harden2Bin)
			}
			c.expect("x" + strconv.Itoa(i) + " OK ")
		}
	}
}

// harden2UIDValidity returns INBOX's UIDVALIDITY.
func harden2UIDValidity(t *testing.T, c *harden2Conn) string {
	t.Helper()
	c.send("u STATUS INBOX (UIDVALIDITY)")
	l := c.expectStatus()
	c.expect("u OK ")
	return l
}

// expectStatus reads the "* STATUS name (UIDVALIDITY n)" response and
// returns n.
func (h *harden2Conn) expectStatus() string {
	h.t.Helper()
	l := h.line()
	i := strings.Index(l, "UIDVALIDITY ")
	if !strings.HasPrefix(l, "* STATUS ") || i < 0 {
		h.t.Fatalf("STATUS: %q", l)
	}
	return strings.TrimSuffix(l[i+len("UIDVALIDITY "):], ")")
}

// harden2MailRaw sends one dot-stuffed message to alice.
func harden2MailRaw(c *harden2Conn, data string) {
	c.t.Helper()
	c.send("MAIL FROM:<bob@example.net>")
	c.expect("250 ")
	c.send("RCPT TO:<alice@example.org>")
	c.expect("250 ")
	c.send("DATA")
	c.expect("354 ")
	c.write(data + "\r\n.\r\n")
	c.expect("250 ")
}
