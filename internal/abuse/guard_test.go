package abuse

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// Issue 11, item 5: what a client that has not logged in can make the
// server hold. This file has the helpers of the guard_*_test.go files.

// guardConn is a raw protocol client bound to a chosen loopback address
// (127.0.0.0/8 all reach a server on 127.0.0.1 on Linux), so that tests
// can be several clients at once.
type guardConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// guardDial connects to a listener of env from the loopback address from
// ("127.0.0.2", ...). Every read and write is bounded by a 60 s deadline.
func guardDial(t *testing.T, env *testenv.Env, listener, from string) *guardConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
	c, err := d.Dial("tcp", env.Addr(listener))
	if err != nil {
		t.Fatalf("dial %s from %s: %v", listener, from, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return &guardConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (g *guardConn) write(s string) {
	g.t.Helper()
	if _, err := io.WriteString(g.c, s); err != nil {
		g.t.Fatalf("write: %v", err)
	}
}

func (g *guardConn) send(line string) { g.t.Helper(); g.write(line + "\r\n") }

// line reads one line, without its CRLF.
func (g *guardConn) line() string {
	g.t.Helper()
	l, err := g.r.ReadString('\n')
	if err != nil {
		g.t.Fatalf("read: %v (so far %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads lines until one starts with prefix (skipping IMAP
// untagged responses and SMTP continuation lines) and returns it.
func (g *guardConn) expect(prefix string) string {
	g.t.Helper()
	for {
		l := g.line()
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if strings.HasPrefix(l, "* ") || len(l) > 3 && l[3] == '-' {
			continue
		}
		g.t.Fatalf("got %q, want %q", l, prefix)
	}
}

// expectClosed reads until the server closes the connection; lines it
// sends before are returned.
func (g *guardConn) expectClosed() []string {
	g.t.Helper()
	var lines []string
	for {
		l, err := g.r.ReadString('\n')
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				g.t.Fatalf("connection still open; got %d lines, the last %q", len(lines), lines[max(0, len(lines)-3):])
			}
			return lines
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
	}
}

// guardIMAP connects to IMAP from a loopback address and reads the
// greeting.
func guardIMAP(t *testing.T, env *testenv.Env, from string) *guardConn {
	t.Helper()
	c := guardDial(t, env, "imap", from)
	c.expect("* OK ")
	return c
}

// guardPOP3 connects to POP3 from a loopback address and reads the
// greeting.
func guardPOP3(t *testing.T, env *testenv.Env, from string) *guardConn {
	t.Helper()
	c := guardDial(t, env, "pop3", from)
	c.expect("+OK ")
	return c
}

// guardUser creates an account whose password hash is a cheap bcrypt
// one, so that tests that fail many logins do not each pay an argon2id
// run.
func guardUser(t *testing.T, env *testenv.Env, name, password string) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store().CreateAccount(context.Background(), name, string(h)); err != nil {
		t.Fatal(err)
	}
}

// guardMetrics scrapes /metrics: "name{labels}" (as printed) to value.
func guardMetrics(t *testing.T, env *testenv.Env) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+env.Addr("http")+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// guardWaitMetrics scrapes /metrics until cond holds (at most 30 s).
func guardWaitMetrics(t *testing.T, env *testenv.Env, what string, cond func(m map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := guardMetrics(t, env)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; metrics: held %v, max client %v, refused %v", what,
				m["postfach_preauth_held_bytes"], m["postfach_preauth_held_bytes_max_client"],
				m[`postfach_preauth_refused_total{proto="imap",reason="client_memory"}`])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// guardLogin logs in over IMAP with LOGIN and quoted strings.
func guardLogin(c *guardConn, tag, user, password string) string {
	c.t.Helper()
	c.send(tag + " LOGIN " + strconv.Quote(user) + " " + strconv.Quote(password))
	return c.expect(tag + " ")
}

// TestGuardPreAuthMemoryPerClient: connections that have not logged in
// and leave LOGIN with two literals unfinished hold at most
// limits.preauth_memory_per_ip together; the ones over it get BAD
// [LIMIT] and are closed. The same client's POP3 connection shares the
// limit. Everything is given back when they close, and a normal login
// from that client works afterwards. (Before the fix, each held up to two
// literals of 1 MiB, and nothing bounded a client's total.)
func TestGuardPreAuthMemoryPerClient(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	guardUser(t, env, "alice@example.org", "alice pw")
	const from = "127.0.0.2"
	const conns = 40
	limit := float64(env.Config.Limits.PreAuthMemoryPerIP)

	// Each connection: a LOGIN whose first literal arrives whole and
	// whose second is announced (LITERAL+) and left unfinished.
	unfinished := "a LOGIN {4096+}\r\n" + strings.Repeat("x", 4096) + " {4096+}\r\n" + strings.Repeat("y", 2000)
	cs := make([]*guardConn, conns)
	for i := range cs {
		cs[i] = guardIMAP(t, env, from)
		cs[i].write(unfinished)
	}
	refusedKey := `postfach_preauth_refused_total{proto="imap",reason="client_memory"}`
	m := guardWaitMetrics(t, env, "every connection held or refused", func(m map[string]float64) bool {
		if m["postfach_preauth_held_bytes_max_client"] > limit {
			t.Fatalf("one client holds %v bytes, over the limit %v", m["postfach_preauth_held_bytes_max_client"], limit)
		}
		// A held connection holds a little over 8 KiB.
		held := int(m["postfach_preauth_held_bytes_max_client"]) / 8200
		return m[refusedKey] > 0 && int(m[refusedKey])+held == conns
	})
	refused := int(m[refusedKey])

	// The same client's POP3 connection, with a line longer than the
	// read buffer, finds the limit reached.
	p := guardPOP3(t, env, from)
	p.write("USER " + strings.Repeat("u", 8187)) // two read buffers, no end
	if l := p.expectClosed(); len(l) != 1 || !strings.HasPrefix(l[0], "-ERR [SYS/TEMP] ") {
		t.Fatalf("POP3 over the client's limit: %q", l)
	}

	// Finish the held commands with text the grammar refuses: each
	// answers BAD, and the refused ones said BAD [LIMIT] and closed.
	limited := 0
	for _, c := range cs {
		_, _ = io.WriteString(c.c, strings.Repeat("y", 2096)+" junk\r\n")
	}
	for i, c := range cs {
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		switch {
		case strings.HasPrefix(l, "a BAD [LIMIT] "):
			limited++
			if rest := c.expectClosed(); len(rest) != 1 || !strings.HasPrefix(rest[0], "* BYE [LIMIT] ") {
				t.Fatalf("connection %d after BAD [LIMIT]: %q", i, rest)
			}
		case strings.HasPrefix(l, "a BAD "):
		default:
			t.Fatalf("connection %d: %q", i, l)
		}
	}
	if limited != refused {
		t.Fatalf("%d connections got BAD [LIMIT], the server counted %d", limited, refused)
	}
	for _, c := range cs {
		c.c.Close()
	}
	guardWaitMetrics(t, env, "nothing held after close", func(m map[string]float64) bool {
		return m["postfach_preauth_held_bytes"] == 0
	})
	c := guardIMAP(t, env, from)
	if l := guardLogin(c, "b", "alice@example.org", "alice pw"); !strings.HasPrefix(l, "b OK ") {
		t.Fatalf("login after the flood: %q", l)
	}
}

// TestGuardPreAuthLimits: before login a LITERAL+ over 4 KiB gets BAD
// [TOOBIG] and the connection closes (the client sends the data anyway,
// RFC 7888 §4); a synchronizing one gets BAD without "+", and the session
// goes on; a line over 8 KiB gets BAD. After login the limits are the
// usual ones.
func TestGuardPreAuthLimits(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	guardUser(t, env, "alice@example.org", "alice pw")

	c := guardIMAP(t, env, "127.0.0.1")
	c.write("a LOGIN {1000000+}\r\n" + strings.Repeat("x", 100000))
	if l := c.expectClosed(); len(l) != 2 || !strings.HasPrefix(l[0], "a BAD [TOOBIG] ") || !strings.HasPrefix(l[1], "* BYE ") {
		t.Fatalf("1 MB LITERAL+ before login: %q", l)
	}

	c = guardIMAP(t, env, "127.0.0.1")
	c.send("a LOGIN {1000000}")
	if l := c.line(); !strings.HasPrefix(l, "a BAD [TOOBIG] ") {
		t.Fatalf("1 MB synchronizing literal before login: %q", l)
	}
	c.send("b NOOP")
	c.expect("b OK ")
	c.send("c LOGIN " + strings.Repeat("u", 9000) + " p")
	c.expect("c BAD ")
	c.send("d NOOP")
	c.expect("d OK ")
	// A legal LOGIN with literals, and after it a literal over 4 KiB.
	c.write("e LOGIN {17+}\r\nalice@example.org {8+}\r\nalice pw\r\n")
	c.expect("e OK ")
	c.write("f STATUS {6000+}\r\n" + strings.Repeat("z", 6000) + " (MESSAGES)\r\n")
	if l := c.expect("f "); !strings.HasPrefix(l, "f NO ") {
		t.Fatalf("6000-byte mailbox name after login: %q", l)
	}
}

// TestGuardSASLIRLong: AUTHENTICATE PLAIN with a long, legal initial
// response (a password of 3,000 bytes: 4 KiB of base64 on the command
// line) works before login.
func TestGuardSASLIRLong(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	pw := strings.Repeat("correct horse battery staple ", 104)[:3000]
	env.AddUser("alice@example.org", pw) // longer than bcrypt takes
	c := guardIMAP(t, env, "127.0.0.1")
	ir := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00" + pw))
	c.send("a AUTHENTICATE PLAIN " + ir)
	if l := c.expect("a "); !strings.HasPrefix(l, "a OK ") {
		t.Fatalf("AUTHENTICATE with a %d-byte initial response: %q", len(ir), l)
	}
	// The same as a continuation line, and over POP3.
	c = guardIMAP(t, env, "127.0.0.1")
	c.send("b AUTHENTICATE PLAIN")
	c.expect("+")
	c.send(ir)
	if l := c.expect("b "); !strings.HasPrefix(l, "b OK ") {
		t.Fatalf("AUTHENTICATE continuation: %q", l)
	}
	p := guardPOP3(t, env, "127.0.0.1")
	p.send("AUTH PLAIN " + ir)
	p.expect("+OK ")
}

// guardConfig returns a testenv option that edits the config.
func guardConfig(f func(c *config.Config)) testenv.Options {
	return testenv.Options{Config: f}
}

// guardParallel runs f for each i in [0, n) at once and waits.
func guardParallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}
