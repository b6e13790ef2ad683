package pop3server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/teststore"
)

const (
	testUser     = "alice@example.org"
	testPassword = "correct horse battery"
)

// testHash is hashed once per test process: argon2id is slow on purpose.
var testHash = sync.OnceValues(func() (string, error) { return auth.HashPassword(testPassword) })

// env is a POP3 server on 127.0.0.1:0 over a real SQLite store, with one
// account.
type env struct {
	t       testing.TB
	dir     string // the store's data directory
	st      teststore.Store
	auth    *auth.Service
	srv     *Server
	addr    string // plain, with STLS
	tlsAddr string // implicit TLS
	acct    *store.Account
	inbox   store.MailboxID
	logs    *syncBuffer
}

type envOptions struct {
	// opts edits the server options before New.
	opts func(*Options)
	// wrap wraps the store the server uses (failure injection).
	wrap func(Store) Store
	// insecureLoopback makes loopback connections count as insecure.
	insecureLoopback bool
	// remote, when valid, is the client address the server sees.
	remote netip.Addr
}

func newEnv(t testing.TB, eo envOptions) *env {
	t.Helper()
	ctx := context.Background()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	// One read connection: a store read that waits for a second
	// connection of the pool while it holds one hangs here at once
	// (issue 11), instead of under load in production.
	st := teststore.Open(t, dir, teststore.Options{ReadConns: 1, Logger: log.With("component", "store")})
	hash, err := testHash()
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.CreateAccount(ctx, testUser, hash)
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := st.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := netserve.TLSConfig("", "", t.TempDir(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	as := auth.New(auth.Options{Store: st, Logger: log.With("component", "auth")})
	var s Store = st
	if eo.wrap != nil {
		s = eo.wrap(st)
	}
	// The package's tests look at INBOX to see what DELE did, so they run
	// in expunge mode unless they say otherwise; the server's default
	// (hide) is tested by TestDefaultDeleteKeepsMailForIMAP with the whole
	// server.
	opt := Options{
		Store: s, Auth: as, Hostname: "pop.example.org", TLSConfig: tlsConf,
		MarkSeen: true, HideDeleted: true, Delete: DeleteExpunge, DeviceViews: true,
		Logger: log,
	}
	if eo.opts != nil {
		eo.opts(&opt)
	}
	srv := New(opt)
	srv.loopback = !eo.insecureLoopback
	if eo.remote.IsValid() {
		srv.remoteFor = func(net.Conn) netip.Addr { return eo.remote }
	}
	e := &env{t: t, dir: dir, st: st, auth: as, srv: srv, acct: acct, inbox: inbox.ID, logs: logs}
	done := make(chan error, 2)
	for _, implicit := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if implicit {
			e.tlsAddr = ln.Addr().String()
			go func() { done <- srv.ServeTLS(ln) }()
		} else {
			e.addr = ln.Addr().String()
			go func() { done <- srv.Serve(ln) }()
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			if err := <-done; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return e
}

// deliver appends a message to INBOX and returns its UID. LF line
// endings in body become CRLF.
func (e *env) deliver(body string, flags ...string) mail.UID {
	e.t.Helper()
	return e.deliverMsg(store.NewMessage{Flags: mail.NewFlags(flags...)}, body)
}

func (e *env) deliverMsg(nm store.NewMessage, body string) mail.UID {
	e.t.Helper()
	body = crlf(body)
	ctx := context.Background()
	staged, err := e.st.Stage(ctx, strings.NewReader(body), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer staged.Discard()
	nm.Body = staged
	res, err := e.st.Append(ctx, e.acct.ID, e.inbox, []store.NewMessage{nm})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.UIDs[0]
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// messages returns the messages of a mailbox of the test account.
func (e *env) messages(mb store.MailboxID) []store.Message {
	e.t.Helper()
	var out []store.Message
	for m, err := range e.st.Messages(context.Background(), e.acct.ID, mb, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, *m)
	}
	return out
}

// message returns one INBOX message, or nil when it is not there.
func (e *env) message(uid mail.UID) *store.Message {
	e.t.Helper()
	for _, m := range e.messages(e.inbox) {
		if m.UID == uid {
			return &m
		}
	}
	return nil
}

func (e *env) mailbox(name string) *store.Mailbox {
	e.t.Helper()
	mb, err := e.st.Mailbox(context.Background(), e.acct.ID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return mb
}

func (e *env) setting(key, value string) {
	e.t.Helper()
	if err := e.st.SetAccountSetting(context.Background(), e.acct.ID, key, value); err != nil {
		e.t.Fatal(err)
	}
}

// client is a line-level POP3 client for transcripts.
type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (e *env) dial() *client {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return newClient(e.t, c)
}

func (e *env) dialTLS() *client {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return newClient(e.t, c)
}

func newClient(t testing.TB, c net.Conn) *client {
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	cl := &client{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
	cl.expect("+OK ")
	return cl
}

// login dials and logs in as user with the test password.
func (e *env) login(user string) *client {
	e.t.Helper()
	c := e.dial()
	c.cmd("USER "+user, "+OK")
	c.cmd("PASS "+testPassword, "+OK Logged in")
	return c
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads a line and checks its prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	l := c.line()
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want prefix %q", l, prefix)
	}
	return l
}

// cmd sends a command and checks the first line of the response.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line)
	return c.expect(prefix)
}

// multi reads the lines of a multi-line response up to "." and undoes
// byte-stuffing.
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		if strings.HasPrefix(l, ".") {
			l = l[1:]
		}
		out = append(out, l)
	}
}

// multiRaw reads a multi-line response up to the final "." and returns
// its body exactly as a client sees it after unstuffing, CRLFs included.
func (c *client) multiRaw() []byte {
	c.t.Helper()
	wire := c.multiWire()
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(wire[:len(wire)-len(".\r\n")], []byte("\n")) {
		out.Write(bytes.TrimPrefix(l, []byte(".")))
	}
	return out.Bytes()
}

// multiWire reads a multi-line response body as it is on the wire:
// stuffed, up to and with the terminating "." line.
func (c *client) multiWire() []byte {
	c.t.Helper()
	var out bytes.Buffer
	for {
		l, err := c.r.ReadBytes('\n')
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		out.Write(l)
		if string(l) == ".\r\n" {
			return out.Bytes()
		}
	}
}

// closed checks that the server closes the connection (at once or after
// what is already buffered).
func (c *client) closed() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(time.Minute))
	if l, err := c.r.ReadString('\n'); err == nil {
		c.t.Fatalf("connection still open, got %q", l)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// requireTool finds an outside program; with POSTFACH_REQUIRE_TOOLS=1 (as
// in CI) a missing one fails the test instead of skipping it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found and POSTFACH_REQUIRE_TOOLS=1: %v", name, err)
	}
	t.Skipf("%s not installed (set POSTFACH_REQUIRE_TOOLS=1 to make this a failure)", name)
	return ""
}

// failingStore makes chosen store calls fail.
type failingStore struct {
	Store
	mu   sync.Mutex
	fail map[string]error
}

func (f *failingStore) err(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[op]
}

func (f *failingStore) set(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	f.fail[op] = err
}

func (f *failingStore) Mailbox(ctx context.Context, acct store.AccountID, name string) (*store.Mailbox, error) {
	if err := f.err("Mailbox"); err != nil {
		return nil, err
	}
	return f.Store.Mailbox(ctx, acct, name)
}

func (f *failingStore) Expunge(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, onlyDeleted bool) (*store.ExpungeResult, error) {
	if err := f.err("Expunge"); err != nil {
		return nil, err
	}
	return f.Store.Expunge(ctx, acct, id, uids, onlyDeleted)
}

func (f *failingStore) OpenBody(ctx context.Context, blobID string) (store.Body, error) {
	if err := f.err("OpenBody"); err != nil {
		return nil, err
	}
	return f.Store.OpenBody(ctx, blobID)
}

// tlsClient upgrades a client after "+OK" to STLS.
func tlsClient(t testing.TB, c *client) *client {
	t.Helper()
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("tls handshake: %v", err)
	}
	return &client{t: t, c: tc, r: bufio.NewReaderSize(tc, 64<<10)}
}

func dialErr(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, 10*time.Second)
}
